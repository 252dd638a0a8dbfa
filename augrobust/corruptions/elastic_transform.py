"""elastic_transform: smoothed random displacement fields, resampled bilinearly (two reference algorithms).

``reference="imagecorruptions"`` (``imagecorruptions.corruptions.elastic_transform``): two uniform fields
``U(-0.005 H, 0.005 H)`` of shape ``(H, W)`` (dx first, then dy), each smoothed with
``skimage.filters.gaussian(sigma=(0.01 H, 0.01 W), mode='reflect', truncate=3)`` (SciPy's
``gaussian_filter``: ``'reflect'`` repeats the edge pixel, d c b a | a b c d), scaled by ``alpha`` and cast
to float32; the image (float32) is sampled at ``(y + dy, x + dx)`` with
``map_coordinates(order=1, mode='reflect')``.

``reference="hendrycks"`` (the ``hendrycks/robustness`` dataset scripts, imagenet_c.md 3.13): first a
random affine warp, three points around the centre at distance ``min(H, W) // 3`` jittered by
``U(-a, a)`` (a ``(3, 2)`` draw) and applied with ``cv2.warpAffine`` (bilinear, ``BORDER_REFLECT_101``;
OpenCV quantises source positions to 1/32 pixel, reproduced here); then fields ``U(-1, 1)`` smoothed with
``sigma`` (both axes), times ``alpha``, and the same ``map_coordinates`` step. The per-preset tables are
fractions of 244 (ImageNet, "244 should have been 224"), 32 (CIFAR), 64 (Tiny ImageNet), 360 (Inception).

Smoothing is two matmuls with banded ``(n, n)`` Gaussian matrices that fold the reflection in, so huge
sigmas (170 px at hendrycks severity 1) cost the same as small ones. Mixed severities: the smoothing
matrices are built for the five severities and gathered per sample.

Precision: float64 input follows the reference's arithmetic (float64 smoothing, float32 fields, float64
coordinates; bit-identical after the uint8 floor). Float32 input on the imagecorruptions algorithm takes
a fast path: float32 smoothing matmuls and ``grid_sample`` (reflection about the image edges, the same
interpolant as SciPy's ``'reflect'``), in cache-sized chunks; values within ~1.5e-5 of the float64 path
(at most 1 grey level on ~0.15 % of values after the floor, tested).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from augrobust._tensor import cache_chunk
from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.functional.precision import autocast_exempt
from augrobust.functional.sync import constant_table, host_reads_ok

__all__ = ["HENDRYCKS_TABLES", "TABLES", "elastic_transform", "gaussian_reflect_matrix", "sample_elastic_fields"]

#: imagecorruptions: alpha per severity (sigma = 0.01 (H, W), noise amplitude 0.005 H at every preset).
TABLES = {"imagenet": (12.5, 16.25, 21.25, 25.0, 30.0)}

_IMAGENET_FRACTIONS = ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))

#: hendrycks: (alpha, sigma, affine jitter) in pixels per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
HENDRYCKS_TABLES = {
    "imagenet": tuple(tuple(244 * f for f in row) for row in _IMAGENET_FRACTIONS),
    "inception": tuple(tuple(360 * f for f in row) for row in _IMAGENET_FRACTIONS),
    "cifar": tuple(
        tuple(32 * f for f in row)
        for row in ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))
    ),
    "tinyimagenet": tuple(
        tuple(64 * f for f in row)
        for row in ((0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02))
    ),
}


def _reflect(index: np.ndarray, n: int) -> np.ndarray:
    """SciPy ``'reflect'`` (half-sample symmetric) index folding, any distance."""
    period = 2 * n
    index = np.mod(index, period)
    return np.where(index >= n, period - 1 - index, index)


@functools.lru_cache(maxsize=64)
def gaussian_reflect_matrix(n: int, sigma: float, truncate: float = 3.0) -> np.ndarray:
    """``(n, n)`` matrix ``G`` with ``G @ v`` = SciPy ``gaussian_filter1d(v, sigma, mode='reflect')``.

    Radius ``int(truncate * sigma + 0.5)`` and weights ``exp(-x^2 / (2 sigma^2))`` normalised to sum 1,
    as SciPy builds them; sigma 0 is the identity (SciPy's single-tap kernel).

    Example:
        >>> gaussian_reflect_matrix(3, 0.0).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    radius = int(truncate * float(sigma) + 0.5)
    taps = np.arange(-radius, radius + 1)
    if sigma > 0:
        weights = np.exp(-0.5 / (float(sigma) ** 2) * taps.astype(np.float64) ** 2)
        weights /= weights.sum()
    else:
        weights = np.ones(1)
    matrix = np.zeros((n, n))
    rows = np.arange(n)[:, None]
    np.add.at(matrix, (np.broadcast_to(rows, (n, taps.size)), _reflect(rows + taps[None, :], n)), weights)
    return matrix


def _smoothing_numpy(n: int, sigmas: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack([gaussian_reflect_matrix(n, s) for s in sigmas])).to(device, dtype)


@constant_table(64)
def _smoothing_pack(
    h: int, w: int, sig_h: tuple[float, ...], sig_w: tuple[float, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    # One builder call per graph: torch.compile stores one constant per builder (see constant_table).
    matrices = (_smoothing_numpy(h, sig_h, dtype, device), _smoothing_numpy(w, sig_w, dtype, device))
    return torch.cat([m.flatten() for m in matrices])


def _smoothing_hw(
    h: int, w: int, sig_h: tuple[float, ...], sig_w: tuple[float, ...], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(S, H, H)`` and ``(S, W, W)`` reflect-mode Gaussian smoothing matrices of ``sig_h`` and ``sig_w``."""
    pack = _smoothing_pack(h, w, sig_h, sig_w, dtype, device)
    split = len(sig_h) * h * h
    return pack[:split].view(len(sig_h), h, h), pack[split:].view(len(sig_w), w, w)


def sample_elastic_fields(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Raw displacement noise (and, for hendrycks, the affine jitter), in the reference's units.

    ``noise_x``, ``noise_y``: ``(B, H, W)`` float64; imagecorruptions draws ``U(-0.005 H, 0.005 H)``,
    hendrycks ``U(-1, 1)``. ``affine`` (hendrycks only): ``(B, 3, 2)`` ``U(-a, a)`` jitter of the three
    anchor points, cast to float32 as the reference does.
    """
    b, _, h, w = shape

    def uniform(size: tuple[int, ...], bound: torch.Tensor) -> torch.Tensor:
        u = torch.rand(size, generator=generator, device=device, dtype=torch.float64)
        bound = bound.view(-1, *([1] * (len(size) - 1)))
        return u * (2 * bound) - bound

    if reference == "hendrycks":
        jitter = severity_table(HENDRYCKS_TABLES, preset, severity)[:, 2]
        affine = uniform((b, 3, 2), jitter).float()
        one = torch.ones(b, dtype=torch.float64, device=device)
        return {"affine": affine, "noise_x": uniform((b, h, w), one), "noise_y": uniform((b, h, w), one)}
    bound = torch.full((b,), 0.005 * h, dtype=torch.float64, device=device)
    return {"noise_x": uniform((b, h, w), bound), "noise_y": uniform((b, h, w), bound)}


def _reflect_index(i: torch.Tensor, n: int) -> torch.Tensor:
    period = 2 * n
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - 1 - i, i)


def _bilinear(image: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, reflect101: bool) -> torch.Tensor:
    """Sample ``(B, C, H, W)`` at ``(B, H, W)`` coordinates, bilinear, with reflecting borders."""
    b, c, h, w = image.shape
    y0, x0 = torch.floor(cy), torch.floor(cx)
    ty, tx = (cy - y0).to(image.dtype), (cx - x0).to(image.dtype)
    y0, x0 = y0.long(), x0.long()
    fold = _reflect101_index if reflect101 else _reflect_index
    ys, xs = (fold(y0, h), fold(y0 + 1, h)), (fold(x0, w), fold(x0 + 1, w))
    flat = image.reshape(b, c, h * w)
    # Eager CPU without a graph: one 2-D gather per channel into a reused buffer (~1.7x faster than the gather
    # with an index expanded over the channels); the same values and the same products and sums.
    per_channel = host_reads_ok(image.device) and not (torch.is_grad_enabled() and image.requires_grad)
    taps = torch.empty(b, c, h * w, dtype=image.dtype, device=image.device) if per_channel else None
    out = None
    for yi, wy in ((ys[0], 1 - ty), (ys[1], ty)):
        for xi, wx in ((xs[0], 1 - tx), (xs[1], tx)):
            if taps is not None:
                idx = (yi * w + xi).view(b, h * w)
                for k in range(c):  # channels, not the batch
                    torch.gather(flat[:, k], 1, idx, out=taps[:, k])
                term = taps.view(b, c, h, w) * (wy * wx).unsqueeze(1)
            else:
                idx = (yi * w + xi).view(b, 1, h * w).expand(b, c, h * w)
                term = flat.gather(2, idx).view(b, c, h, w) * (wy * wx).unsqueeze(1)
            out = term if out is None else out.add_(term)
    return out


def _reflect101_index(i: torch.Tensor, n: int) -> torch.Tensor:
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * n - 2
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


def _affine_warp(x: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """hendrycks' random affine (cv2.getAffineTransform + warpAffine, bilinear, BORDER_REFLECT_101)."""
    b, _, h, w = x.shape
    centre = np.float32([h, w]) // 2  # the reference builds the points from (H, W) order
    size = min(h, w) // 3
    src = np.float32([centre + size, [centre[0] + size, centre[1] - size], centre - size])
    src_t = torch.from_numpy(src.astype(np.float64)).to(x.device)
    dst = (torch.from_numpy(src).to(x.device) + jitter.to(x.device, torch.float32)).double()
    # Forward affine src -> dst solved exactly (as getAffineTransform), then inverted (warpAffine maps
    # each destination pixel back to its source).
    ones = torch.ones(3, 1, dtype=torch.float64, device=x.device)
    a = torch.cat([src_t, ones], 1)  # (3, 3)
    forward = torch.linalg.solve(a.expand(b, 3, 3), dst).transpose(1, 2)  # (B, 2, 3)
    lin, shift = forward[:, :, :2], forward[:, :, 2:]
    inv_lin = torch.linalg.inv(lin)
    inv_shift = -inv_lin @ shift
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64, device=x.device),
        torch.arange(w, dtype=torch.float64, device=x.device),
        indexing="ij",
    )
    sx = inv_lin[:, 0, 0, None, None] * xs + inv_lin[:, 0, 1, None, None] * ys + inv_shift[:, 0, 0, None, None]
    sy = inv_lin[:, 1, 0, None, None] * xs + inv_lin[:, 1, 1, None, None] * ys + inv_shift[:, 1, 0, None, None]
    # OpenCV rounds source positions to 1/32 pixel (INTER_BITS = 5) before interpolating.
    sx, sy = torch.round(sx * 32) / 32, torch.round(sy * 32) / 32
    return _bilinear(x, sy, sx, reflect101=True)


#: Image elements per chunk of the float32 path (temporaries stay in cache).
_CHUNK_ELEMENTS = 1 << 20


def _elastic_float32(
    image: torch.Tensor,
    noise_x: torch.Tensor,
    noise_y: torch.Tensor,
    g_h: torch.Tensor,
    g_w: torch.Tensor,
    alpha: torch.Tensor,
) -> torch.Tensor:
    """Float32 imagecorruptions path: smoothing by two float32 matmuls, then ``grid_sample``.

    ``grid_sample(padding_mode='reflection', align_corners=False)`` reflects the continuous coordinate
    about the image edges (``-1/2``, ``n - 1/2``) and clips it: the same piecewise-linear interpolant
    as SciPy's ``'reflect'`` (half-sample symmetric) extension, up to float32 rounding.
    """
    b, c, h, w = image.shape
    out = torch.empty_like(image)
    # Pixel centres in grid_sample's normalised coordinates, and the scale of one pixel times alpha.
    base_x = torch.arange(w, dtype=torch.float32, device=image.device).mul_(2.0).add_(1.0).div_(w).sub_(1.0)
    base_y = torch.arange(h, dtype=torch.float32, device=image.device).mul_(2.0).add_(1.0).div_(h).sub_(1.0)
    step = cache_chunk(image.device, _CHUNK_ELEMENTS, c * h * w)
    for start in range(0, b, step):
        k = min(step, b - start)
        fields = torch.empty(2, k, h, w, dtype=torch.float32, device=image.device)
        fields[0].copy_(noise_x[start : start + k])
        fields[1].copy_(noise_y[start : start + k])
        smooth = torch.matmul(g_h, torch.mm(fields.view(2 * k * h, w), g_w.t()).view(2 * k, h, w))
        # The reference casts alpha * smooth to float32; here everything is float32.
        smooth = smooth.view(2, k, h, w).mul_(alpha[start : start + k].view(1, k, 1, 1))
        if torch.compiler.is_compiling():  # the compiler rejects ``out=`` into a strided view: same adds, stacked
            grid = torch.stack(
                [torch.add(base_x, smooth[0], alpha=2.0 / w), torch.add(base_y.view(h, 1), smooth[1], alpha=2.0 / h)],
                dim=-1,
            )
        else:
            grid = torch.empty(k, h, w, 2, dtype=torch.float32, device=image.device)
            torch.add(base_x, smooth[0], alpha=2.0 / w, out=grid[..., 0])
            torch.add(base_y.view(h, 1), smooth[1], alpha=2.0 / h, out=grid[..., 1])
        sampled = torch.nn.functional.grid_sample(
            image[start : start + k], grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )
        out[start : start + k] = sampled.clamp_(0.0, 1.0)
    return out


@autocast_exempt
def elastic_transform(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Elastically deform a ``(B, C, H, W)`` batch with the displacement noise in ``params``.

    Example:
        >>> import torch, augrobust
        >>> x = torch.rand(2, 3, 32, 32)
        >>> p = augrobust.sample_corruption_params("elastic_transform", x.shape, 3)
        >>> elastic_transform(x, torch.tensor([3, 3]), p, preset="imagenet", reference="imagecorruptions").shape
        torch.Size([2, 3, 32, 32])
    """
    b, _, h, w = x.shape
    row = severity.long() - 1
    if x.dtype != torch.float64 and reference != "hendrycks":
        alpha32 = severity_table(TABLES, "imagenet", severity, dtype=torch.float32)
        g_h32, g_w32 = (g[0] for g in _smoothing_hw(h, w, (0.01 * h,), (0.01 * w,), torch.float32, x.device))
        noise_x, noise_y = params["noise_x"].to(x.device), params["noise_y"].to(x.device)
        return _elastic_float32(x.to(torch.float32), noise_x, noise_y, g_h32, g_w32, alpha32).to(x.dtype)
    # The reference computes in float32 (the image) with float64 fields; float64 input stays float64.
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    image = x.float().to(work)  # the reference's image is float32
    if reference == "hendrycks":
        table = HENDRYCKS_TABLES.get(preset, HENDRYCKS_TABLES["imagenet"])
        image = _affine_warp(image, params["affine"])
        sig = tuple(r[1] for r in table)
        g_h, g_w = (g[row] for g in _smoothing_hw(h, w, sig, sig, work, x.device))
        alpha = severity_table(HENDRYCKS_TABLES, preset, severity, dtype=work)[:, 0]
    else:
        g_h, g_w = _smoothing_hw(h, w, (0.01 * h,), (0.01 * w,), work, x.device)
        g_h, g_w = g_h.expand(b, h, h), g_w.expand(b, w, w)
        alpha = severity_table(TABLES, "imagenet", severity, dtype=work)
    alpha = alpha.view(b, 1, 1)
    fields = []
    for key in ("noise_x", "noise_y"):
        smooth = g_h @ params[key].to(x.device, work) @ g_w.transpose(1, 2)
        # The reference casts the scaled field to float32.
        fields.append((smooth * alpha).float().double())
    ys = torch.arange(h, dtype=torch.float64, device=x.device).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float64, device=x.device).view(1, 1, w)
    out = _bilinear(image, ys + fields[1], xs + fields[0], reflect101=False)
    # map_coordinates writes float32 (the image's dtype).
    return out.float().clamp_(0.0, 1.0).to(x.dtype)


SPEC = register(
    CorruptionSpec(
        name="elastic_transform", apply=elastic_transform, sample_params=sample_elastic_fields, per_channel=True
    )
)
