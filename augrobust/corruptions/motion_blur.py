"""motion_blur: a one-sided half-Gaussian streak along a random direction, with edge replication.

Reference: ``imagecorruptions.corruptions.motion_blur`` / ``_motion_blur`` (imagenet_c.md 3.7), a NumPy
re-implementation of ImageMagick's ``MotionBlurImage``. With ``width = 2 * radius + 1``:

* weights ``k_i = exp(-i^2 / (2 sigma^2)) / (sqrt(2 pi) sigma)`` for ``i = 0..width-1``, normalised by
  their (NumPy pairwise) sum;
* tap ``i`` reads the pixel ``(y + sy_i, x + sx_i)`` with ``sy_i = ceil(i * p0 / |p| - 0.5)``,
  ``sx_i = ceil(i * p1 / |p| - 0.5)``, ``p = width * (sin a, cos a)``, coordinates clamped to the image
  (edge replication);
* ``out = (((0 + k_0 * s_0) + k_1 * s_1) + ...)`` in float64, in tap order; the loop stops at the first
  tap whose shift reaches the image size (``|dy| >= H`` or ``|dx| >= W``) without renormalising;
* the angle ``a ~ U(-45, 45)`` degrees, one per image; the result is clipped to ``[0, 255]``.

The reference works on the ``[0, 255]`` scale: the kernel multiplies by 255 first so that the products
``k_i * v`` are the reference's own, accumulates in the same order (a separate multiply and add per
tap, no FMA), and divides by 255 at the end, which reproduces the reference bit for bit in float64.

``reference="hendrycks"``: the original scripts blur through Wand / ImageMagick and read an 8-bit PNG
back, i.e. the same blur **rounded** to the nearest grey level, where imagecorruptions keeps the float
(and ``corrupt`` floors). imagenet_c.md 3.7 measured the NumPy blur within 1 grey level of ImageMagick
6.9.11 Q16; this port implements exactly that description: ``round(clip(blur, 0, 255))``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from augrobust._tensor import cache_chunk, unit_scale_keeping_floor
from augrobust.corruptions._spec import CorruptionSpec, register
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.filters import fft_size
from augrobust.functional.precision import autocast_exempt
from augrobust.functional.sync import constant_table, host_reads_ok

__all__ = [
    "TABLES",
    "motion_blur",
    "motion_blur_batch",
    "motion_blur_fft",
    "motion_blur_kernels",
    "motion_blur_shifts",
    "motion_blur_taps",
    "sample_motion_blur_angle",
    "unit_scale_keeping_floor",
]

#: (radius, sigma) per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES: dict[str, tuple[tuple[int, float], ...]] = {
    "imagenet": ((10, 3.0), (15, 5.0), (15, 8.0), (15, 12.0), (20, 15.0)),
    "inception": ((12, 4.0), (17, 6.0), (17, 9.0), (17, 13.0), (22, 16.0)),
    "tinyimagenet": ((10, 1.0), (10, 1.5), (10, 2.0), (10, 2.5), (12, 3.0)),
    "cifar": ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5)),
}

# Elements per chunk of the batch: the 2r+1 passes over a chunk stay in cache (measured ~5x faster
# than whole-batch passes at 64x3x224x224); the chunking depends on the shape only, no host sync.
_CHUNK_ELEMENTS = 1 << 20

# Rows per band of the eager CPU path: one band's accumulator, tap buffer and source rows stay in L2 (measured at
# 224 px float64: 64-row bands ~2x faster than whole images, ~4x faster than the batched gathers).
_BAND_ROWS = 64

# Below this many pixels per image the gathers are as fast as the FFT (measured at 32 px, where the
# FFT pads a 32 px image to 94 px), so the float32 FFT path starts here.
_FFT_MIN_PIXELS = 64 * 64


@functools.lru_cache(maxsize=64)
def _kernel_numpy(radius: int, sigma: float) -> np.ndarray:
    # The reference's expressions with NumPy's own exp and pairwise sum: torch.exp differs from
    # NumPy's SIMD exp in the last bit for most of these arguments.
    width = 2 * radius + 1
    x = np.arange(width)
    k = np.exp(-(x**2) / (2 * (sigma**2))) / (np.sqrt(2 * np.pi) * sigma)
    return k / np.sum(k)


def _check_radius_sigma(radius: object, sigma: object) -> tuple[int, float]:
    r, s = int(radius), float(sigma)  # type: ignore[call-overload, arg-type]
    if r != radius or r < 0:
        raise AugrobustValueError(f"motion blur radius must be an integer >= 0, got {radius!r}.")
    if not math.isfinite(s) or s <= 0.0:
        raise AugrobustValueError(f"motion blur sigma must be a finite number > 0, got {sigma!r}.")
    return r, s


def motion_blur_kernels(pairs: Sequence[tuple[int, float]], taps: int | None = None) -> torch.Tensor:
    """The reference's normalised half-Gaussian kernels, one row per ``(radius, sigma)``, zero-padded.

    Computed with NumPy exactly as ``imagecorruptions.corruptions.getMotionBlurKernel`` does (bit for
    bit), so a table built once can be gathered per sample without a host sync.

    Args:
        pairs: ``(radius, sigma)`` pairs; row ``j`` has ``2 * radius_j + 1`` non-zero taps.
        taps: common row length (default: the longest kernel).

    Returns:
        A float64 CPU tensor of shape ``(len(pairs), taps)``.

    Example:
        >>> k = motion_blur_kernels([(1, 1.0), (2, 3.0)])
        >>> k.shape, [round(float(s), 12) for s in k.sum(1)]
        (torch.Size([2, 5]), [1.0, 1.0])
    """
    kernels = [_kernel_numpy(*_check_radius_sigma(r, s)) for r, s in pairs]
    longest = max((len(k) for k in kernels), default=1)
    taps = longest if taps is None else int(taps)
    if taps < longest:
        raise AugrobustValueError(f"taps={taps} is shorter than the longest kernel ({longest} taps).")
    table = np.zeros((len(kernels), taps))
    for j, k in enumerate(kernels):
        table[j, : len(k)] = k
    return torch.from_numpy(table)


def motion_blur_shifts(
    angle: torch.Tensor, width: torch.Tensor, taps: int, height: int, width_px: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-tap source offsets of the reference's motion blur, and which taps it keeps.

    Args:
        angle: ``(B,)`` angles in degrees.
        width: ``(B,)`` kernel widths ``2 * radius + 1`` (the reference scales its direction vector by it).
        taps: number of taps to compute (at least the largest width).
        height, width_px: image size; taps from the first one whose shift reaches it are dropped.

    Returns:
        ``(sy, sx, keep)``, each ``(B, taps)``: tap ``i`` reads pixel ``(y + sy, x + sx)`` (clamped
        to the image); ``keep`` is False from the reference's ``break`` onwards (and beyond ``width``).

    Example:
        >>> sy, sx, keep = motion_blur_shifts(torch.tensor([0.0]), torch.tensor([5]), 5, 32, 32)
        >>> sy.tolist(), sx.tolist(), keep.all().item()
        ([[0, 0, 0, 0, 0]], [[0, 1, 2, 3, 4]], True)
    """
    f64 = torch.float64 if angle.device.type != "mps" else torch.float32
    rad = torch.deg2rad(angle.to(f64))
    w = width.to(f64)
    p0, p1 = w * torch.sin(rad), w * torch.cos(rad)
    hyp = torch.hypot(p0, p1)
    i = torch.arange(taps, dtype=f64, device=angle.device)
    # Same expression order as the reference: (i * p) / hypot - 0.5, then ceil; its dy, dx are the
    # negatives of these source offsets.
    sy = torch.ceil(i * p0[:, None] / hyp[:, None] - 0.5).long()
    sx = torch.ceil(i * p1[:, None] / hyp[:, None] - 0.5).long()
    inside = (sy.abs() < height) & (sx.abs() < width_px) & (i < w[:, None])
    keep = torch.cummin(inside.to(torch.uint8), dim=1).values.bool()  # the loop breaks, never resumes
    return sy, sx, keep


def motion_blur_taps(x: torch.Tensor, kernel: torch.Tensor, width: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Motion-blur a batch with given per-sample kernels (no host sync).

    Computes ``out = sum_i kernel[b, i] * x[b, :, clamp(y + sy_i), clamp(x + sx_i)]`` accumulated in
    tap order with a separate multiply and add (the reference's rounding), in ``x``'s dtype, on any
    value scale (the operation is linear; the reference's own scale is ``[0, 255]``). Each tap is one
    gather over the flattened, edge-padded image; the batch is processed in cache-sized chunks.

    Args:
        x: ``(B, C, H, W)`` float tensor.
        kernel: ``(B, T)`` weights (rows of :func:`motion_blur_kernels`), zero beyond each width.
        width: ``(B,)`` kernel widths ``2 * radius + 1`` (they set the reference's shift rounding).
        angle: ``(B,)`` angles in degrees.

    Returns:
        The blurred batch, same shape and dtype (not clipped).

    Example:
        >>> x = torch.zeros(1, 1, 8, 8); x[0, 0, 4, 4] = 1.0
        >>> k = motion_blur_kernels([(1, 1.0)])
        >>> y = motion_blur_taps(x, k, torch.tensor([3]), torch.tensor([0.0]))
        >>> [round(v, 4) for v in y[0, 0, 4, 2:6].tolist()]  # the streak trails to the left
        [0.0777, 0.3482, 0.5741, 0.0]
    """
    b, c, h, w = x.shape
    taps = kernel.shape[1]
    sy, sx, keep = motion_blur_shifts(angle.to(x.device), width.to(x.device), taps, h, w)
    weights = torch.where(keep, kernel.to(device=x.device, dtype=x.dtype), 0.0)
    # Pad by the longest shift the reference can take (< H, < W); dropped taps are clamped into the
    # padding and weighted 0, which adds exactly 0.0.
    py, px = min(taps - 1, h - 1), min(taps - 1, w - 1)
    hp, wp = h + 2 * py, w + 2 * px
    offset = sy.clamp(-py, py) * wp + sx.clamp(-px, px)  # (B, T) flat offsets in the padded image
    ys = torch.arange(py, py + h, device=x.device).view(h, 1)
    xs = torch.arange(px, px + w, device=x.device).view(1, w)
    base = (ys * wp + xs).view(1, h * w)
    if torch.is_grad_enabled() and (x.requires_grad or kernel.requires_grad):
        # Autograd cannot record ``out=``: the same taps in the same order, out of place, whole batch.
        flat = F.pad(x, (px, px, py, py), mode="replicate").reshape(b, c, hp * wp)
        acc = torch.zeros(b, c, h * w, dtype=x.dtype, device=x.device)
        for i in range(taps):
            index = (base + offset[:, i : i + 1]).unsqueeze(1).expand(b, c, h * w)
            acc = acc + flat.gather(2, index) * weights[:, i].view(b, 1, 1)
        return acc.view(b, c, h, w)
    if host_reads_ok(x.device):
        return _motion_blur_slices(x, weights, sy.clamp(-py, py), sx.clamp(-px, px), py, px)
    chunk = cache_chunk(x.device, _CHUNK_ELEMENTS, c * h * w)
    out = torch.empty(b, c, h * w, dtype=x.dtype, device=x.device)
    for start in range(0, b, chunk):  # fixed by the shape: no sync
        stop = min(b, start + chunk)
        n = stop - start
        flat = F.pad(x[start:stop], (px, px, py, py), mode="replicate").reshape(n, c, hp * wp)
        acc = out[start:stop]
        acc.zero_()
        index = torch.empty(n, h * w, dtype=torch.long, device=x.device)
        tap = torch.empty(n, c, h * w, dtype=x.dtype, device=x.device)
        for i in range(taps):
            torch.add(base, offset[start:stop, i : i + 1], out=index)
            torch.gather(flat, 2, index.unsqueeze(1).expand(n, c, h * w), out=tap)
            acc.add_(tap.mul_(weights[start:stop, i].view(n, 1, 1)))  # mul, then add: no FMA
    return out.view(b, c, h, w)


def _motion_blur_slices(
    x: torch.Tensor, weights: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor, py: int, px: int
) -> torch.Tensor:
    """Eager CPU form of :func:`motion_blur_taps`: per image, each tap is a slice of the padded image, as the reference.

    The same products and the same tap-order sums (bit-identical to the gathers), without gathers: the shifts and
    weights are read on the host (no device sync on the CPU), and taps of weight 0 (beyond the kernel's width or
    after the reference's ``break``) are skipped: the reference never adds them, the gathers add an exact 0.
    """
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    weight_rows, sy_rows, sx_rows = weights.tolist(), sy.tolist(), sx.tolist()
    tap = torch.empty(c, min(_BAND_ROWS, h), w, dtype=x.dtype)
    for j in range(b):
        taps = [(wt, py + dy, px + dx) for wt, dy, dx in zip(weight_rows[j], sy_rows[j], sx_rows[j]) if wt != 0.0]
        padded = F.pad(x[j : j + 1], (px, px, py, py), mode="replicate")[0]
        for r0 in range(0, h, _BAND_ROWS):
            rows = min(h, r0 + _BAND_ROWS) - r0
            acc, buf = out[j, :, r0 : r0 + rows], tap[:, :rows]
            acc.zero_()
            for wt, top, left in taps:
                acc.add_(torch.mul(padded[:, top + r0 : top + r0 + rows, left : left + w], wt, out=buf))
    return out


def motion_blur_fft(x: torch.Tensor, kernel: torch.Tensor, width: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """The same blur as :func:`motion_blur_taps`, computed by FFT (the fast float32 formulation).

    Exact in maths, not in rounding: the kept taps of each sample are scattered into one sparse 2-D
    kernel (taps that share a shift add up), and the edge-replicated image is correlated with it by
    ``rfft2`` / ``irfft2``. The cost no longer grows with the tap count: one forward transform per
    image and per kernel, one inverse per image, in cache-sized chunks of the batch, no host sync.
    In float32 the result is within ~1e-6 (relative to the value range) of the tap-order sum.

    Args:
        x: ``(B, C, H, W)`` float tensor.
        kernel: ``(B, T)`` weights (rows of :func:`motion_blur_kernels`), zero beyond each width.
        width: ``(B,)`` kernel widths ``2 * radius + 1``.
        angle: ``(B,)`` angles in degrees.

    Returns:
        The blurred batch, same shape and dtype (not clipped).

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> k = motion_blur_kernels([(3, 1.0), (3, 1.0)])
        >>> args = (k, torch.tensor([7, 7]), torch.tensor([10.0, -40.0]))
        >>> torch.allclose(motion_blur_fft(x, *args), motion_blur_taps(x, *args), atol=1e-5)
        True
    """

    b, c, h, w = x.shape
    taps = kernel.shape[1]
    sy, sx, keep = motion_blur_shifts(angle.to(x.device), width.to(x.device), taps, h, w)
    weights = torch.where(keep, kernel.to(device=x.device, dtype=x.dtype), 0.0)
    py, px = min(taps - 1, h - 1), min(taps - 1, w - 1)  # the longest shift kept (see motion_blur_taps)
    kh, kw = 2 * py + 1, 2 * px + 1
    fh, fw = fft_size(h + 2 * py), fft_size(w + 2 * px)
    # Convolving with the flipped kernel is the correlation: tap (sy, sx) sits at (py - sy, px - sx).
    where = (py - sy.clamp(-py, py)) * kw + (px - sx.clamp(-px, px))
    sparse = torch.zeros(b, kh * kw, dtype=x.dtype, device=x.device).scatter_add_(1, where, weights)
    sparse = sparse.view(b, 1, kh, kw)
    out = torch.empty(b, c, h, w, dtype=x.dtype, device=x.device)
    chunk = cache_chunk(x.device, _CHUNK_ELEMENTS, (c + 1) * fh * fw)
    for start in range(0, b, chunk):  # fixed by the shape: no sync
        stop = min(b, start + chunk)
        padded = F.pad(x[start:stop], (px, px, py, py), mode="replicate")
        spectrum = torch.fft.rfft2(padded, s=(fh, fw))
        spectrum.mul_(torch.fft.rfft2(sparse[start:stop], s=(fh, fw)))
        full = torch.fft.irfft2(spectrum, s=(fh, fw))
        out[start:stop] = full[..., kh - 1 : kh - 1 + h, kw - 1 : kw - 1 + w]
    return out


def motion_blur_batch(
    x: torch.Tensor, radius: torch.Tensor, sigma: torch.Tensor, angle: torch.Tensor
) -> torch.Tensor:
    """imagecorruptions' ``_motion_blur`` on a batch, one ``(radius, sigma, angle)`` per sample.

    Bit-identical to the reference in float64 (on the reference's ``[0, 255]`` scale, or any scale:
    the blur is linear and computed in ``x``'s dtype and scale; not clipped). The kernels are built
    with NumPy on the host from the ``(B,)`` radii and sigmas (one host sync, like
    :func:`augrobust.functional.filters.gaussian_blur_nearest`); callers with a fixed table use
    :func:`motion_blur_kernels` once and :func:`motion_blur_taps`, without any sync.

    Args:
        x: ``(B, C, H, W)`` float tensor (a single-channel layer works too).
        radius: ``(B,)`` integer radii (``2 * radius + 1`` taps).
        sigma: ``(B,)`` standard deviations of the half-Gaussian, in taps.
        angle: ``(B,)`` angles in degrees (imagecorruptions' convention).

    Returns:
        The blurred batch, same shape and dtype as ``x``.

    Example:
        >>> x = torch.rand(2, 3, 32, 32) * 255
        >>> y = motion_blur_batch(x, torch.tensor([10, 15]), torch.tensor([3.0, 5.0]), torch.tensor([0.0, 30.0]))
        >>> y.shape
        torch.Size([2, 3, 32, 32])
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.dtype.is_floating_point:
        raise AugrobustTypeError(
            f"x must be a floating-point (B, C, H, W) tensor, got {getattr(x, 'dtype', type(x).__name__)} "
            f"with shape {tuple(getattr(x, 'shape', ()))}."
        )
    b = x.shape[0]
    values = []
    for name, t in (("radius", radius), ("sigma", sigma), ("angle", angle)):
        t = torch.as_tensor(t).reshape(-1)
        if t.numel() == 1:
            t = t.expand(b)
        if t.numel() != b:
            raise AugrobustValueError(f"{name} must have shape ({b},) (one per sample), got {tuple(t.shape)}.")
        values.append(t)
    radius_t, sigma_t, angle_t = values
    pairs = list(zip(radius_t.tolist(), sigma_t.tolist(), strict=True))  # the one host sync
    unique = sorted(set(pairs))
    table = motion_blur_kernels(unique)
    kernel = table[torch.tensor([unique.index(p) for p in pairs], dtype=torch.long)]
    width = torch.tensor([2 * int(r) + 1 for r, _ in pairs], device=x.device)
    return motion_blur_taps(x, kernel.to(x.device), width, angle_t.to(x.device))


@constant_table(16)
def _preset_kernels(preset: str) -> torch.Tensor:
    return motion_blur_kernels(TABLES[preset])


def sample_motion_blur_angle(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """One angle per image, uniform on ``[-45, 45)`` degrees (``np.random.uniform(-45, 45)``).

    Example:
        >>> p = sample_motion_blur_angle((4, 3, 32, 32), torch.tensor([1, 2, 3, 5]), preset="imagenet",
        ...                              reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> p["angle"].shape, bool(((p["angle"] >= -45) & (p["angle"] < 45)).all())
        (torch.Size([4]), True)
    """
    dtype = torch.float64 if torch.device(device).type != "mps" else torch.float32
    u = torch.rand(shape[0], generator=generator, device=device, dtype=dtype)
    return {"angle": u * 90.0 - 45.0}  # NumPy's uniform(low, high) = low + (high - low) * u


@autocast_exempt
def motion_blur(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """The motion_blur kernel: ``x`` in ``[0, 1]``, one angle per image in ``params["angle"]``.

    Structural parameter: the tap count is vectorised over the preset table's longest kernel (taps
    beyond a sample's ``2 * radius + 1`` have weight 0), so a batch may mix severities without a sync.

    Differentiable w.r.t. ``x`` (a linear blur and a clip) for ``reference="imagecorruptions"``. The
    ``"hendrycks"`` variant writes the blur back as 8-bit (piecewise constant): its result has no graph.

    Example:
        >>> import augrobust
        >>> x = torch.rand(2, 3, 32, 32)
        >>> augrobust.corrupt(x, "motion_blur", severity=torch.tensor([1, 5])).shape
        torch.Size([2, 3, 32, 32])
    """
    table = _preset_kernels(preset if preset in TABLES else "imagenet")
    rows = TABLES.get(preset, TABLES["imagenet"])
    sev = severity.long() - 1
    kernel = table.to(x.device)[sev]
    width = torch.tensor([2 * r + 1 for r, _ in rows], device=x.device)[sev]
    angle = params["angle"].to(x.device)
    if reference == "hendrycks":
        x = x.detach()  # rounded to 8 bits below: no graph rather than zero gradients
    if x.dtype != torch.float64 and x.shape[-2] * x.shape[-1] >= _FFT_MIN_PIXELS:
        # float32 (and lower): the FFT formulation, one transform per image whatever the tap count
        # (~3x faster than the 41 gathers at 224 px); within 1 grey level of the reference (tests
        # assert it). float64 keeps the exact tap order; small images keep the (as fast) gathers.
        blurred = motion_blur_fft(x, kernel, width, angle).clamp_(0.0, 1.0)
        if reference == "hendrycks":
            blurred = blurred.mul_(255.0).round_().div_(255.0)
        return blurred
    blurred = motion_blur_taps(x * 255.0, kernel, width, angle).clamp_(0.0, 255.0)
    if reference == "hendrycks":
        blurred = blurred.round_()  # ImageMagick writes the blur back as 8-bit (nearest grey level)
    return unit_scale_keeping_floor(blurred)


SPEC = register(
    CorruptionSpec(
        name="motion_blur", apply=motion_blur, sample_params=sample_motion_blur_angle, per_channel=True
    )
)
