"""snow (test): one flake layer per image, motion-blurred at a sweeping angle ``4 i - 150`` over 31 frames.

Script (per image): ``L = N(loc, scale)`` of the crop's size, the script's ``clipped_zoom`` (SciPy order-1 zoom
of the centre ``ceil(n / zoom)`` square, trimmed centred), ``L[L < 0.5] = 0``, ``uint8(clip(L) * 255)`` as a PNG;
per frame ImageMagick blurs that PNG (here: the NumPy re-implementation, rounded to 8 bits, as
:mod:`augrobust.perturbations.motion_blur`; same 1-grey-level bound on the layer), then
``z = 0.85 x + 0.15 max(x, 1.5 gray + 0.5)`` (x float64, gray OpenCV's float32 RGB2GRAY) and
``uint8(clip(z + L_i + rot180(L_i), 0, 1) * 255)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from augrobust.corruptions.motion_blur import motion_blur_kernels, motion_blur_taps
from augrobust.corruptions.snow import scipy_zoom_bilinear
from augrobust.errors import AugrobustValueError
from augrobust.perturbations.spec import PerturbationSpec, register, to_uint8_trunc

__all__ = ["TABLES", "apply", "opencv_gray_float32", "sample"]

#: (loc, scale, zoom, blur radius, blur sigma) per variant; threshold 0.5, blend 0.85, 31 frames everywhere.
TABLES = {
    "imagenet": (0.05, 0.3, 3, 14, 4.0),
    "tinyimagenet": (0.05, 0.28, 2, 10, 2.5),
    "cifar": (0.05, 0.3, 2, 10, 2.0),
}
FRAMES = 31
_GRAY = (0.299, 0.587, 0.114)


def sample(
    u: torch.Tensor, difficulty: int, variant: str, generators: Sequence[torch.Generator | None]
) -> dict[str, torch.Tensor]:
    """Standard normals ``(B, H, W)`` float64 (``np.random.normal(loc, scale)`` is ``loc + scale * z``).

    Example:
        >>> sample(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), 1, "cifar", [None, None])["snow_noise"].shape
        torch.Size([2, 32, 32])
    """
    shape = u.shape[-2:]
    return {
        "snow_noise": torch.stack(
            [torch.randn(shape, generator=g, device=u.device, dtype=torch.float64) for g in generators]
        )
    }


def _fma32(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    # one float32 rounding of a * b + c: the product of two float32 values is exact in float64
    return (a.double() * b.double() + c.double()).float()


def opencv_gray_float32(x: torch.Tensor) -> torch.Tensor:
    """``cv2.cvtColor(float32 RGB, COLOR_RGB2GRAY)`` as OpenCV 5 computes it (fused multiply-adds).

    Example:
        >>> opencv_gray_float32(torch.ones(1, 3, 2, 2)).shape
        torch.Size([1, 1, 2, 2])
    """
    x32 = x.float()
    r, g, b = x32[:, 0:1], x32[:, 1:2], x32[:, 2:3]
    cr, cg, cb = (torch.tensor(v, dtype=torch.float32, device=x.device) for v in _GRAY)
    return _fma32(b, cb, _fma32(r, cr, g * cg))


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The 31 frames of a cropped square ``(B, 3, N, N)`` uint8 batch given the normal draws.

    Example:
        >>> u = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
        >>> apply(u, 1, "cifar", {"snow_noise": torch.zeros(1, 32, 32, dtype=torch.float64)}).shape
        torch.Size([1, 31, 3, 32, 32])
    """
    b, _, h, w = u.shape
    if h != w:
        raise AugrobustValueError(f"snow's reference zooms a square layer; got {h}x{w} frames, crop them square.")
    loc, scale, zoom, radius, sigma = TABLES[variant]
    layer = loc + scale * params["snow_noise"].to(device=u.device, dtype=torch.float64)
    ch = math.ceil(h / zoom)
    top = (h - ch) // 2
    zoomed = scipy_zoom_bilinear(layer[:, top : top + ch, top : top + ch], round(ch * zoom), round(ch * zoom))
    trim = (zoomed.shape[-1] - h) // 2
    layer = zoomed[:, trim : trim + h, trim : trim + h]
    layer = torch.where(layer < 0.5, 0.0, layer)
    layer8 = to_uint8_trunc(layer.clamp(0, 1)).double().unsqueeze(1)  # the PNG ImageMagick reads
    x = u.double() / 255.0
    bright = torch.maximum(x, (opencv_gray_float32(x) * 1.5 + 0.5).double())
    base = 0.85 * x + (1 - 0.85) * bright
    kernel = motion_blur_kernels([(radius, sigma)]).to(u.device).expand(b, -1)
    width = torch.full((b,), 2 * radius + 1, device=u.device)
    out = torch.empty((b, FRAMES, *u.shape[1:]), dtype=torch.uint8, device=u.device)
    for i in range(FRAMES):  # frames, not images
        angle = torch.full((b,), float(i * 4 - 150), dtype=torch.float64, device=u.device)
        flakes = motion_blur_taps(layer8, kernel, width, angle).clamp_(0.0, 255.0).round_() / 255.0
        out[:, i] = to_uint8_trunc(torch.clip(base + flakes + flakes.flip(-1, -2), 0, 1))
    return out


SPEC = register(PerturbationSpec("snow", "test", dict.fromkeys(TABLES, FRAMES), apply, sample))
