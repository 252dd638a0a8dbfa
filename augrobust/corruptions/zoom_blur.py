"""zoom_blur: the mean of the image and centre crops of it zoomed back to full size.

Reference: ``imagecorruptions.corruptions.zoom_blur``. The image is taken as float32 ``x / 255``; for
each factor ``z`` of the severity's list, ``clipped_zoom`` crops the centre ``ceil(H / z) x ceil(W / z)``,
enlarges it with ``scipy.ndimage.zoom(order=1)`` (bilinear on corner-aligned grids, output
``round(n * z)`` per axis, computed in double and stored as float32) and keeps the top-left ``H x W``;
the layers are summed in float32 in list order and ``(x + sum) / (len(list) + 1)`` is clipped.

``reference="hendrycks"`` (the dataset scripts) trims the enlarged crop *centred* instead of top-left
(and, written for square images, crops ``ceil(H / z)`` on both axes; here each axis uses its own
size, which is the same thing for the square images the scripts handled).

The factor lists are NumPy float ``arange`` results, endpoints included where NumPy includes them
(``arange(1, 1.11, 0.01)`` has 12 values). Kept as NumPy's exact float64 values.

Fidelity and arithmetic: float64 input reproduces the reference's float32 arithmetic (layers
interpolated in float64 and rounded to float32, float32 sums) and returns ``float32(255 y) / 255`` in
float64, so that ``floor(255 * out)`` is the reference's ``np.uint8(float32(255 y))``: bit-identical.
float32 input interpolates in float32 (channels_last, about twice as fast), within one grey level.

The number of layers and the crop sizes depend on the severity, so in eager mode on the CPU the batch is
grouped by severity after one host read (``bincount(...).tolist()``); a batch of one severity is processed
whole. On other devices and under ``torch.compile`` every factor of the lists' union runs on the whole
batch, masked per sample (no sync, same values, about 2.5x the work of one list).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from augrobust.corruptions._spec import CorruptionSpec, register
from augrobust.functional.precision import autocast_exempt
from augrobust.functional.sync import host_reads_ok

__all__ = ["TABLES", "clipped_zoom", "zoom_blur", "zoom_blur_factors"]


def _lists(*specs: tuple[float, float, float]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(z) for z in np.arange(*spec)) for spec in specs)


#: Zoom factors per severity, per preset (imagenet_c.md 3.8, 4.2-4.4): NumPy ``arange`` values.
TABLES: dict[str, tuple[tuple[float, ...], ...]] = {
    "imagenet": _lists((1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)),
    "cifar": _lists((1, 1.06, 0.01), (1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.01), (1, 1.26, 0.01)),
}
TABLES["inception"] = TABLES["imagenet"]
TABLES["tinyimagenet"] = TABLES["cifar"]


def zoom_blur_factors(severity: int, preset: str = "imagenet") -> tuple[float, ...]:
    """The zoom factors of one severity.

    Example:
        >>> f = zoom_blur_factors(1)
        >>> len(f), f[0], round(f[-1], 2)
        (12, 1.0, 1.11)
    """
    return TABLES.get(preset, TABLES["imagenet"])[severity - 1]


def clipped_zoom(x: torch.Tensor, zoom: float, *, centred: bool = False) -> torch.Tensor:
    """Centre crop ``ceil(n / zoom)`` per axis, bilinear (corner-aligned) zoom, keep ``H x W``.

    Equals ``scipy.ndimage.zoom(crop, (zoom, zoom, 1), order=1)`` (computed in ``x``'s dtype) followed
    by the top-left (``centred=False``, imagecorruptions) or centred (original scripts) ``H x W`` window.

    Example:
        >>> clipped_zoom(torch.rand(2, 3, 32, 48), 1.2).shape
        torch.Size([2, 3, 32, 48])
    """
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    oh, ow = int(round(ch * zoom)), int(round(cw * zoom))
    crop = x[..., top : top + ch, left : left + cw]
    zoomed = F.interpolate(crop, size=(oh, ow), mode="bilinear", align_corners=True)
    # SciPy's zoom uses mode='constant': a last output row/column whose coordinate
    # (out - 1) * ((n - 1) / (out - 1)) rounds to just above n - 1 is outside the input and gets 0
    # (e.g. 160 px wide, z = 1.27). Reproduce the quirk: it is in every reference output.
    if (oh - 1) * ((ch - 1) / (oh - 1)) > ch - 1:
        zoomed[..., oh - 1, :] = 0
    if (ow - 1) * ((cw - 1) / (ow - 1)) > cw - 1:
        zoomed[..., :, ow - 1] = 0
    t0, t1 = ((oh - h) // 2, (ow - w) // 2) if centred else (0, 0)
    return zoomed[..., t0 : t0 + h, t1 : t1 + w]


def _zoom_float32_into(x: torch.Tensor, zoom: float, centred: bool, buffers: dict) -> torch.Tensor:
    """:func:`clipped_zoom` of a channels_last float32 batch, interpolated into a reused buffer.

    ``upsample_bilinear2d(..., out=)`` writes into memory that is already mapped: ~1.5x faster than
    ``F.interpolate`` allocating a fresh batch-sized tensor per factor. Same values as clipped_zoom.
    """
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    oh, ow = int(round(ch * zoom)), int(round(cw * zoom))
    if (oh, ow) not in buffers:
        buffers[oh, ow] = torch.empty(
            (*x.shape[:2], oh, ow), dtype=x.dtype, device=x.device
        ).contiguous(memory_format=torch.channels_last)
    zoomed = buffers[oh, ow]
    crop = x[..., top : top + ch, left : left + cw]
    torch._C._nn.upsample_bilinear2d(crop, [oh, ow], True, None, None, out=zoomed)
    if (oh - 1) * ((ch - 1) / (oh - 1)) > ch - 1:  # SciPy's mode='constant' quirk, see clipped_zoom
        zoomed[..., oh - 1, :] = 0
    if (ow - 1) * ((cw - 1) / (ow - 1)) > cw - 1:
        zoomed[..., :, ow - 1] = 0
    t0, t1 = ((oh - h) // 2, (ow - w) // 2) if centred else (0, 0)
    return zoomed[..., t0 : t0 + h, t1 : t1 + w]


def _zoom_blur_one_list(x: torch.Tensor, factors: tuple[float, ...], centred: bool) -> torch.Tensor:
    exact = x.dtype == torch.float64
    graph = torch.is_grad_enabled() and x.requires_grad
    x32 = x.to(torch.float32)  # the reference's float32 image
    if not exact:
        # float32: everything channels_last (bilinear interpolate is ~2x faster so, and the sums run
        # on one layout), layers interpolated into reused buffers.
        x32 = x32.contiguous(memory_format=torch.channels_last)
        buffers: dict[tuple[int, int], torch.Tensor] = {}
    # float64: channels_last source (upsample_bilinear2d's NCHW float64 path repacks its input and output to
    # channels_last on every call, 2/3 of its time at 224 px; the values are the same), each layer cast back
    # to a contiguous float32 in the one copy the rounding needs anyway.
    src64 = x32.double().contiguous(memory_format=torch.channels_last) if exact else None
    acc = torch.zeros_like(x32)
    for z in factors:  # float32 sums in list order, as the reference accumulates
        if z == 1.0:
            # The full-size crop zoomed by 1 is the image itself: align-corners bilinear at scale 1
            # reads each pixel with weight 1 and its neighbour with weight 0 (exact in any dtype).
            acc += x32
        elif exact:
            # float64: interpolate the float32 values in double like SciPy, round, then add in float32.
            acc += clipped_zoom(src64, z, centred=centred).to(torch.float32, memory_format=torch.contiguous_format)
        elif graph:  # autograd cannot record ``out=``: the same interpolation into a fresh tensor
            acc += clipped_zoom(x32, z, centred=centred)
        else:
            acc += _zoom_float32_into(x32, z, centred, buffers)
    y = acc.add_(x32).div_(len(factors) + 1).clamp_(0.0, 1.0)  # x + sum == sum + x (one IEEE add)
    if exact:
        return (y * 255).double() / 255  # floor(255 * out) == np.uint8(float32(255 * y))
    return y.to(x.dtype).contiguous(memory_format=torch.contiguous_format)


def _zoom_blur_all_lists(
    x: torch.Tensor, lists: tuple[tuple[float, ...], ...], severity: torch.Tensor, centred: bool
) -> torch.Tensor:
    """The sync-free form: every factor of the union of the lists on the whole batch, masked per sample.

    Each list is ascending, so a sample meets its own factors in list order among the union's; a factor not
    in its list adds an exact 0. Same values as :func:`_zoom_blur_one_list` per group (float32 sums in list
    order), at the cost of ``len(union)`` (imagenet: 38) layers instead of one list's 11 to 16.
    """
    exact = x.dtype == torch.float64
    union = sorted({z for factors in lists for z in factors})
    sev = severity.to(x.device).long() - 1
    member = torch.tensor([[z in factors for z in union] for factors in lists], device=x.device)[sev]  # (B, U)
    count = torch.tensor([float(len(f) + 1) for f in lists], device=x.device, dtype=torch.float32)[sev]
    x32 = x.to(torch.float32)
    src = x32.double() if exact else x32
    acc = torch.zeros_like(x32)
    zero = torch.zeros((), dtype=torch.float32, device=x.device)
    for i, z in enumerate(union):
        layer = x32 if z == 1.0 else clipped_zoom(src, z, centred=centred).to(torch.float32)
        acc = acc + torch.where(member[:, i].view(-1, 1, 1, 1), layer, zero)
    y = ((acc + x32) / count.view(-1, 1, 1, 1)).clamp(0.0, 1.0)
    if exact:
        return (y * 255).double() / 255  # floor(255 * out) == np.uint8(float32(255 * y))
    return y.to(x.dtype)


@autocast_exempt
def zoom_blur(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Zoom-blur each image with its severity's factor list.

    Args:
        x: ``(B, C, H, W)`` float batch in [0, 1] (any ``C``; channels are independent).
        severity: ``(B,)`` long tensor in 1..5.
        params: unused (deterministic corruption).
        preset: severity table (``"imagenet"``/``"inception"`` or ``"cifar"``/``"tinyimagenet"`` lists).
        reference: ``"imagecorruptions"`` (top-left window) or ``"hendrycks"`` (centred window).

    Returns:
        The blurred batch, same shape and dtype.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 32, 32)
        >>> zoom_blur(x, torch.tensor([1, 5]), {}, preset="imagenet", reference="imagecorruptions").shape
        torch.Size([2, 3, 32, 32])
    """
    lists = TABLES.get(preset, TABLES["imagenet"])
    centred = reference == "hendrycks"
    if x.shape[0] == 0:
        return x.clone()
    if not host_reads_ok(x.device):
        return _zoom_blur_all_lists(x, lists, severity, centred)
    counts = torch.bincount(severity, minlength=6).tolist()  # the one host sync (see module docstring)
    present = [s for s in range(1, 6) if counts[s]]
    if len(present) == 1:
        return _zoom_blur_one_list(x, lists[present[0] - 1], centred)
    order = torch.argsort(severity, stable=True)
    out = torch.empty_like(x)
    for s, idx in zip(present, order.split([counts[s] for s in present]), strict=True):
        out.index_copy_(0, idx, _zoom_blur_one_list(x.index_select(0, idx), lists[s - 1], centred))
    return out


SPEC = register(CorruptionSpec(name="zoom_blur", apply=zoom_blur, per_channel=True))
