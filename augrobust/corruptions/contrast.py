"""contrast: pull every pixel towards its channel's spatial mean.

Reference: ``imagecorruptions.corruptions.contrast`` (same in ``hendrycks/robustness``):
``m = mean(x, axis=(H, W))`` per channel, ``clip((x - m) * c + m, 0, 1)``. This is not torchvision's
``adjust_contrast``, which blends towards the mean *luminance*. Deterministic.
"""

from __future__ import annotations

import torch

from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.functional.precision import autocast_exempt

__all__ = ["TABLES", "contrast"]

#: Contrast factor per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": (0.4, 0.3, 0.2, 0.1, 0.05),
    "inception": (0.4, 0.3, 0.2, 0.1, 0.05),
    "tinyimagenet": (0.4, 0.3, 0.2, 0.1, 0.05),
    "cifar": (0.75, 0.5, 0.4, 0.3, 0.15),
}


@autocast_exempt
def contrast(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Reduce the contrast of each channel of a ``(B, C, H, W)`` batch around its own mean.

    Example:
        >>> import torch
        >>> x = torch.tensor([0.0, 1.0], dtype=torch.float64).view(1, 1, 1, 2)
        >>> contrast(x, torch.tensor([1]), {}, preset="imagenet", reference="imagecorruptions").flatten().tolist()
        [0.3, 0.7]
    """
    factor = severity_table(TABLES, preset, severity, dtype=x.dtype).view(-1, 1, 1, 1)
    means = x.mean(dim=(-2, -1), keepdim=True)
    return ((x - means) * factor + means).clamp_(0.0, 1.0)


SPEC = register(CorruptionSpec(name="contrast", apply=contrast, per_channel=True))
