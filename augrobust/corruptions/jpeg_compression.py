"""jpeg_compression: a real JPEG encode/decode round trip at a low quality.

Reference: ``imagecorruptions.corruptions.jpeg_compression`` (same in ``hendrycks/robustness``, with
per-dataset quality tables): ``PIL.Image.save(buf, 'JPEG', quality=q)`` then decode. Deterministic.

The float image is quantised with ``round(255 x)`` first (the reference receives uint8 images; ``k / 255``
round-trips exactly) and coded with libjpeg-turbo through ``torchvision.io``, bit-identical to Pillow.
The codec is host code: one host sync reads the qualities. ``differentiable=True`` swaps in kornia's
differentiable approximation (not the reference's output; for adversarial / gradient use only).
"""

from __future__ import annotations

import torch

from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.functional.jpeg import jpeg_roundtrip_differentiable, jpeg_roundtrip_float

__all__ = ["TABLES", "jpeg_compression"]

#: PIL JPEG quality per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": (25, 18, 15, 10, 7),
    "inception": (23, 16, 13, 8, 5),
    "tinyimagenet": (65, 58, 50, 40, 25),
    "cifar": (80, 65, 58, 50, 40),
}


def jpeg_compression(
    x: torch.Tensor,
    severity: torch.Tensor,
    params: dict[str, torch.Tensor],
    *,
    preset: str,
    reference: str,
    differentiable: bool = False,
) -> torch.Tensor:
    """JPEG-compress a ``(B, 3, H, W)`` float batch at the severity's quality.

    Args:
        differentiable: use kornia's differentiable JPEG model instead of the real codec.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 32, 32)
        >>> y = jpeg_compression(x, torch.tensor([1, 5]), {}, preset="imagenet", reference="imagecorruptions")
        >>> y.shape, bool((y * 255 - (y * 255).round()).abs().max() < 1e-4)
        (torch.Size([2, 3, 32, 32]), True)
    """
    quality = severity_table(TABLES, preset, severity, dtype=torch.long)
    if differentiable:
        return jpeg_roundtrip_differentiable(x, quality)
    return jpeg_roundtrip_float(x, quality)


SPEC = register(CorruptionSpec(name="jpeg_compression", apply=jpeg_compression, differentiable=False))
