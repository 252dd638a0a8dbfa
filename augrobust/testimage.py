"""A built-in test image, drawn by the library itself (no downloaded data).

Four quadrants, each aimed at a family of bugs: a smooth hue/brightness gradient (colour and clipping),
saturated colour patches (HSV and channel order), a zone plate of rising frequency (blur, aliasing,
resampling) and checkerboards, sharp edges and a grey ramp (edge handling, rounding).
"""

from __future__ import annotations

import math

import torch

__all__ = ["test_image"]

_PATCHES = (
    (0.45, 0.32, 0.26), (0.76, 0.58, 0.50), (0.38, 0.48, 0.61), (0.34, 0.42, 0.26), (0.52, 0.50, 0.69),
    (0.40, 0.74, 0.67), (0.84, 0.48, 0.18), (0.29, 0.36, 0.65), (0.76, 0.33, 0.38), (0.37, 0.24, 0.42),
    (0.62, 0.74, 0.25), (0.89, 0.63, 0.18), (0.17, 0.24, 0.58), (0.27, 0.58, 0.29), (0.69, 0.19, 0.22),
    (0.93, 0.78, 0.12), (0.73, 0.33, 0.58), (0.00, 0.52, 0.65), (0.95, 0.95, 0.95), (0.78, 0.78, 0.78),
    (0.63, 0.63, 0.63), (0.48, 0.48, 0.48), (0.33, 0.33, 0.33), (0.20, 0.20, 0.20),
)  # fmt: skip


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6])
    return v - v * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def test_image(size: int | tuple[int, int] = 224) -> torch.Tensor:
    """The built-in test image as a ``uint8`` tensor of shape ``(3, H, W)``.

    Args:
        size: ``H = W = size`` or ``(H, W)``; any size from 8 px up.

    Example:
        >>> img = test_image(64)
        >>> img.shape, img.dtype
        (torch.Size([3, 64, 64]), torch.uint8)
    """
    h, w = (size, size) if isinstance(size, int) else size
    y = (torch.arange(h, dtype=torch.float64) + 0.5) / h
    x = (torch.arange(w, dtype=torch.float64) + 0.5) / w
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    top, left = yy < 0.5, xx < 0.5
    u, v = (xx % 0.5) * 2, (yy % 0.5) * 2  # coordinates inside each quadrant, in [0, 1)

    # Top left: hue across, brightness down, with a saturation dip in the middle.
    gradient = _hsv_to_rgb(u, 0.35 + 0.65 * (2 * u - 1).abs(), 1.0 - 0.85 * v)
    # Top right: a 4x6 chart of colour patches with thin dark borders.
    col, row = (u * 6).floor().clamp(max=5), (v * 4).floor().clamp(max=3)
    colours = torch.tensor(_PATCHES, dtype=torch.float64)[(row * 6 + col).long()].permute(2, 0, 1)
    border = (((u * 6) % 1) < 0.06) | (((v * 4) % 1) < 0.06)
    patches = torch.where(border, torch.full_like(colours, 0.08), colours)
    # Bottom left: a zone plate, fine texture whose frequency rises towards the corners.
    r2 = (u - 0.5) ** 2 + (v - 0.5) ** 2
    zone = 0.5 + 0.5 * torch.cos(math.pi * r2 * min(h, w) * 1.2)
    zone_rgb = torch.stack([zone, 0.85 * zone + 0.1, 0.6 * zone + 0.3])
    # Bottom right: checkerboards of three scales, a grey ramp and a disc with a hard edge.
    fine = (((u * 32).floor() + (v * 32).floor()) % 2).to(torch.float64)
    coarse = (((u * 8).floor() + (v * 8).floor()) % 2).to(torch.float64)
    checks = torch.where(v < 0.5, torch.where(u < 0.5, fine, coarse), u)  # ramp in the lower right
    disc = ((u - 0.7) ** 2 + (v - 0.28) ** 2) < 0.03
    geometry = torch.stack([checks, checks, checks])
    geometry = torch.where(disc, torch.tensor([0.9, 0.15, 0.1], dtype=torch.float64).view(3, 1, 1), geometry)

    image = torch.where(top, torch.where(left, gradient, patches), torch.where(left, zone_rgb, geometry))
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)
