"""jpeg_compression: a real JPEG encode/decode round trip at a low quality.

Reference: ``imagecorruptions.corruptions.jpeg_compression`` (same in ``hendrycks/robustness``, with
per-dataset quality tables): ``PIL.Image.save(buf, 'JPEG', quality=q)`` then decode. Deterministic.

The float image is quantised with ``round(255 x)`` first (the reference receives uint8 images; ``k / 255``
round-trips exactly) and coded with Pillow, the reference's own codec (bit-identical; the choice of codec
and its measurements are in :mod:`augrobust.functional.jpeg`). The codec is host code: one host sync reads
the qualities.

Not differentiable: a JPEG round trip is a quantiser, and no honest gradient w.r.t. the input exists (a
straight-through estimate would be a made-up one). The result is a new tensor that carries no autograd
graph, with ``requires_grad=False``, even when the input requires grad; it runs on such inputs without
error. A loss that reaches the input only through this corruption therefore cannot be back-propagated
(torch says so at ``backward()``). ``differentiable=True`` swaps in kornia's differentiable approximation
instead (not the reference's output; for adversarial / gradient use only).
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

    Returns:
        The decoded batch in ``x``'s dtype and device. With the real codec it carries no autograd graph
        (``requires_grad=False``), whatever ``x`` requires.

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
