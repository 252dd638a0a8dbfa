"""snow: a zoomed, thresholded, motion-blurred noise layer of flakes over a whitened image.

Reference: ``imagecorruptions.corruptions.snow`` (imagenet_c.md 3.9):

1. ``layer = N(loc, scale)`` of size ``H x W`` (float64);
2. ``clipped_zoom``: the centre crop of ``ceil(n / zoom)`` pixels per axis is enlarged with
   ``scipy.ndimage.zoom(order=1)`` to ``round(crop * zoom)`` pixels (corner-aligned bilinear, and
   SciPy's own arithmetic: weights ``1 - t`` and ``1 - (1 - t)``, ``value * w_row * w_col`` summed in
   corner order, a coordinate rounded past the last pixel reads the constant 0). imagecorruptions does
   *not* trim the result back to ``H x W`` before the blur;
3. values ``< threshold`` set to 0, clip to ``[0, 1]``;
4. motion blur (the ImageMagick-like kernel of :mod:`augrobust.corruptions.motion_blur`) with the
   severity's radius and sigma at an angle ``U(-135, -45)``, on the zoomed layer's own size;
5. ``round(layer * 255) / 255`` and a top-left crop to ``H x W``;
6. ``x' = blend * x + (1 - blend) * max(x, gray * 1.5 + 0.5)`` in float32 with OpenCV's
   ``RGB2GRAY`` (``fma(B, 0.114, fma(R, 0.299, G * 0.587))`` in float32, as OpenCV 5 computes it);
7. ``out = clip(x' + layer + rot180(layer), 0, 1)`` (float64).

``reference="hendrycks"`` (imagenet_c.md 3.9, 4.6): the zoomed layer is trimmed centred to ``H x W``
before the blur, truncated to uint8, blurred by ImageMagick and read back as 8-bit, i.e. the same blur on
the ``[0, 255]`` scale **rounded** to the nearest level (``round(clip(blur(trunc(255 L)), 0, 255))``);
the rest is identical.

The zoomed size depends on the severity, so the layer is built per severity group: the kernel reads the
``(B,)`` severities back once (one host sync) and loops over at most five groups; within a group all
work is batched.

Params: ``snow_noise`` ``(B, H, W)`` standard normals (float64; the kernel computes ``loc + scale * z``
as NumPy's ``normal`` does) and ``angle`` ``(B,)`` in degrees (float64).
"""

from __future__ import annotations

import math

import torch

from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.corruptions.motion_blur import motion_blur_kernels, motion_blur_taps
from augrobust.errors import AugrobustValueError
from augrobust.functional.precision import autocast_exempt
from augrobust.functional.sync import constant_table, host_reads_ok

__all__ = ["TABLES", "sample_snow_params", "scipy_zoom_bilinear", "snow"]

#: (loc, scale, zoom, threshold, blur radius, blur sigma, blend) per severity, per preset
#: (imagenet_c.md 3.1, 4.2-4.4; inception uses the 224 table).
TABLES = {
    "imagenet": (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    "inception": (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    "tinyimagenet": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.8), (0.1, 0.2, 1, 0.5, 10, 4, 0.8), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6),
    ),
    "cifar": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
}  # fmt: skip

# cv2.COLOR_RGB2GRAY float weights (float32 values of 0.299, 0.587, 0.114)
_GRAY = (0.299, 0.587, 0.114)


def sample_snow_params(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """A standard-normal ``H x W`` field and an angle ``U(-135, -45)`` degrees per image (float64).

    Example:
        >>> import torch
        >>> p = sample_snow_params((2, 3, 32, 32), torch.tensor([1, 5]), preset="imagenet",
        ...                        reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> p["snow_noise"].shape, bool(((p["angle"] >= -135) & (p["angle"] < -45)).all())
        (torch.Size([2, 32, 32]), True)
    """
    b, _, h, w = shape
    noise = torch.randn((b, h, w), generator=generator, device=device, dtype=torch.float64)
    u = torch.rand((b,), generator=generator, device=device, dtype=torch.float64)
    return {"snow_noise": noise, "angle": -135.0 + 90.0 * u}  # NumPy's uniform: low + (high - low) * u


def _zoom_axis(n_in: int, n_out: int, device: torch.device):
    """SciPy order-1 zoom taps along one axis: indices, weights and validity (float64, exact)."""
    step = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    coord = torch.arange(n_out, dtype=torch.float64, device=device) * step
    i0 = coord.floor()
    w0 = 1.0 - (coord - i0)
    w1 = 1.0 - w0  # SciPy: the last weight is 1 minus the others
    valid = coord <= n_in - 1  # a coordinate rounded past the last pixel reads cval = 0 (mode 'constant')
    i0 = i0.long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    return i0, i1, w0, w1, valid


def scipy_zoom_bilinear(layer: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """``scipy.ndimage.zoom(layer, (out_h / h, out_w / w), order=1)`` per image of a ``(B, h, w)`` batch.

    Bit-identical to SciPy in float64 (same coordinates, weights and summation order).

    Example:
        >>> import torch
        >>> scipy_zoom_bilinear(torch.tensor([[[0.0, 1.0], [2.0, 3.0]]]), 3, 3)[0, 1].tolist()
        [1.0, 1.5, 2.0]
    """
    _, h, w = layer.shape
    y0, y1, wy0, wy1, vy = _zoom_axis(h, out_h, layer.device)
    x0, x1, wx0, wx1, vx = _zoom_axis(w, out_w, layer.device)
    wy0, wy1 = wy0.to(layer.dtype).view(1, -1, 1), wy1.to(layer.dtype).view(1, -1, 1)
    wx0, wx1 = wx0.to(layer.dtype).view(1, 1, -1), wx1.to(layer.dtype).view(1, 1, -1)
    top, bottom = layer[:, y0], layer[:, y1]
    out = top[:, :, x0] * wy0 * wx0
    out = out + top[:, :, x1] * wy0 * wx1
    out = out + bottom[:, :, x0] * wy1 * wx0
    out = out + bottom[:, :, x1] * wy1 * wx1
    valid = (vy.view(-1, 1) & vx.view(1, -1)).unsqueeze(0)
    return torch.where(valid, out, torch.zeros((), dtype=out.dtype, device=out.device))


def _flake_layer(
    noise: torch.Tensor, row: tuple, angle: torch.Tensor, kernel: torch.Tensor, h: int, w: int, reference: str
) -> torch.Tensor:
    """The ``(G, H, W)`` float64 flake layer of one severity group (steps 1-5 of the module docstring)."""
    loc, scale, zoom, threshold, radius, _, _ = row
    layer = loc + scale * noise
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    zh, zw = round(ch * zoom), round(cw * zoom)
    layer = scipy_zoom_bilinear(layer[:, top : top + ch, left : left + cw], zh, zw)
    if reference == "hendrycks":  # the original trims the zoomed layer centred before the blur
        th, tw = (zh - h) // 2, (zw - w) // 2
        layer = layer[:, th : th + h, tw : tw + w]
    layer = torch.where(layer < threshold, 0.0, layer).clamp_(0.0, 1.0)
    g = layer.shape[0]
    width = torch.full((g,), 2 * int(radius) + 1, device=layer.device)
    kernels = kernel.to(layer.device).expand(g, -1)
    if reference == "hendrycks":
        layer8 = (layer * 255).floor_()  # PNG of uint8(clip(L) * 255)
        blurred = motion_blur_taps(layer8.unsqueeze(1), kernels, width, angle).squeeze(1)
        layer = blurred.clamp_(0.0, 255.0).round_() / 255  # ImageMagick writes 8-bit, rounded
    else:
        blurred = motion_blur_taps(layer.unsqueeze(1), kernels, width, angle).squeeze(1)
        layer = torch.round(blurred * 255) / 255  # np.round: half to even, as torch.round
    return layer[:, :h, :w]


def _fma32(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """float32 ``a * b + c`` with one rounding, via float64 (the product of two floats is exact there)."""
    return (a.double() * b.double() + c.double()).float()


def _whiten(x: torch.Tensor, blend: torch.Tensor) -> torch.Tensor:
    """``blend * x + (1 - blend) * max(x, gray * 1.5 + 0.5)`` in float32, gray as OpenCV's RGB2GRAY."""
    x32 = x.to(torch.float32)
    r, g, b = x32[:, 0:1], x32[:, 1:2], x32[:, 2:3]
    cr, cg, cb = (torch.tensor(v, dtype=torch.float32, device=x.device) for v in _GRAY)
    if x.dtype == torch.float64:  # reproduce OpenCV's fused multiply-adds exactly
        gray = _fma32(b, cb, _fma32(r, cr, g * cg))
    else:
        gray = torch.addcmul(torch.addcmul(g * cg, r, cr), b, cb)
    bright = torch.maximum(x32, gray * 1.5 + 0.5)
    blend32 = blend.to(torch.float32).view(-1, 1, 1, 1)
    rest32 = (1.0 - blend).to(torch.float32).view(-1, 1, 1, 1)  # NumPy: (1 - c) in double, then float32
    return blend32 * x32 + rest32 * bright


@constant_table(8)
def _flake_kernels(preset: str) -> torch.Tensor:
    """The five severities' motion-blur kernels (a graph constant under ``torch.compile``)."""
    return motion_blur_kernels([(int(r[4]), float(r[5])) for r in TABLES.get(preset, TABLES["imagenet"])])


@autocast_exempt
def snow(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Falling snow (see the module docstring); eager on the CPU, groups the batch by severity (one host read).

    Example:
        >>> import torch, augrobust
        >>> augrobust.corrupt(torch.rand(3, 3, 32, 32), "snow", torch.tensor([1, 3, 5])).shape
        torch.Size([3, 3, 32, 32])
    """
    b, _, h, w = x.shape
    noise, angle = params["snow_noise"], params["angle"]
    if noise.shape != (b, h, w) or angle.shape != (b,):
        raise AugrobustValueError(
            f"snow params must be snow_noise ({b}, {h}, {w}) and angle ({b},), got "
            f"{tuple(noise.shape)} and {tuple(angle.shape)}."
        )
    noise = noise.to(device=x.device, dtype=torch.float64)
    angle = angle.to(device=x.device, dtype=torch.float64)
    rows = TABLES.get(preset, TABLES["imagenet"])
    kernels = _flake_kernels(preset)
    if host_reads_ok(x.device):
        layer = torch.empty((b, h, w), dtype=torch.float64, device=x.device)
        levels = severity.tolist()  # the one host read: the zoomed size depends on the severity
        for level in sorted(set(levels)):
            idx = torch.tensor([i for i, s in enumerate(levels) if s == level], device=x.device)
            layer[idx] = _flake_layer(
                noise[idx], rows[level - 1], angle[idx], kernels[level - 1 : level], h, w, reference
            )
    else:  # sync-free (accelerators, torch.compile): every level on the whole batch, kept per sample (5x work)
        sev = severity.to(x.device).long().view(-1, 1, 1)
        layer = torch.zeros((b, h, w), dtype=torch.float64, device=x.device)
        for level in range(1, len(rows) + 1):
            flakes_l = _flake_layer(noise, rows[level - 1], angle, kernels[level - 1 : level], h, w, reference)
            layer = torch.where(sev == level, flakes_l, layer)
    blend = severity_table(TABLES, preset, severity)[:, 6]
    whitened = _whiten(x, blend).to(x.dtype)
    flakes = layer.to(x.dtype).unsqueeze(1)
    return (whitened + flakes + flakes.flip(-1, -2)).clamp_(0.0, 1.0)


SPEC = register(CorruptionSpec(name="snow", apply=snow, sample_params=sample_snow_params, per_channel=False))
