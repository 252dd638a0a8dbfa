"""motion_blur (test): ImageMagick's motion blur at a sweeping angle, read back as 8-bit.

The scripts blur each frame's crop with Wand (``MotionBlurImage``) and decode the PNG ImageMagick writes. The
kernel here is the NumPy re-implementation of that blur that imagecorruptions ships (reproduced bit for bit by
:func:`augrobust.corruptions.motion_blur.motion_blur_taps` on the ``[0, 255]`` scale, edge replication), rounded
to the nearest grey level as the 8-bit PNG is. Stated bound: ImageMagick itself is not installable here; the
NumPy blur was measured within 1 grey level of ImageMagick 6.9.11 Q16 (imagenet_c.md 3.7), so frames are within
1 grey level of the script's.
"""

from __future__ import annotations

import torch

from augrobust.corruptions.motion_blur import motion_blur_kernels, motion_blur_taps
from augrobust.perturbations.spec import PerturbationSpec, register

__all__ = ["TABLES", "angles", "apply"]

#: (radius, sigma, frames, angle of frame i as (i - offset) * step) per variant.
TABLES = {"imagenet": (10, 3.0, 31, 30, 4), "tinyimagenet": (14, 3.0, 31, 30, 5), "cifar": (6, 1.8, 21, 20, 9)}


def angles(variant: str) -> list[float]:
    """The blur angle of each frame, in degrees.

    Example:
        >>> angles("cifar")[:3]
        [-180.0, -171.0, -162.0]
    """
    _, _, frames, offset, step = TABLES[variant]
    return [float((i - offset) * step) for i in range(frames)]


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The frames of a cropped ``(B, C, H, W)`` uint8 batch.

    Example:
        >>> apply(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), 1, "cifar", {}).shape
        torch.Size([2, 21, 3, 32, 32])
    """
    radius, sigma, frames = TABLES[variant][:3]
    b = u.shape[0]
    x = u.double()
    kernel = motion_blur_kernels([(radius, sigma)]).to(u.device).expand(b, -1)
    width = torch.full((b,), 2 * radius + 1, device=u.device)
    out = torch.empty((b, frames, *u.shape[1:]), dtype=torch.uint8, device=u.device)
    for t, a in enumerate(angles(variant)):  # frames, not images
        angle = torch.full((b,), a, dtype=torch.float64, device=u.device)
        out[:, t] = motion_blur_taps(x, kernel, width, angle).clamp_(0.0, 255.0).round_().to(torch.uint8)
    return out


SPEC = register(PerturbationSpec("motion_blur", "test", {v: r[2] for v, r in TABLES.items()}, apply))
