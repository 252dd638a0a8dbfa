"""brightness: add a constant to the HSV value channel (scikit-image HSV), then back to RGB.

Reference: ``imagecorruptions.corruptions.brightness`` (and the identical function of every
``hendrycks/robustness`` dataset script): ``rgb2hsv``, ``V = clip(V + c, 0, 1)``, ``hsv2rgb``, clip.
Deterministic; float64 input is bit-identical to the reference (see :mod:`augrobust.functional.color`).
"""

from __future__ import annotations

import torch

from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.functional.color import adjust_hsv
from augrobust.functional.precision import autocast_exempt

__all__ = ["TABLES", "brightness"]

#: Amount added to V per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": (0.1, 0.2, 0.3, 0.4, 0.5),
    "inception": (0.1, 0.2, 0.3, 0.4, 0.5),
    "tinyimagenet": (0.1, 0.2, 0.3, 0.4, 0.5),
    "cifar": (0.05, 0.1, 0.15, 0.2, 0.3),
}


@autocast_exempt
def brightness(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Brighten a ``(B, 3, H, W)`` batch in HSV space by the severity's amount.

    Example:
        >>> import torch
        >>> x = torch.full((1, 3, 4, 4), 0.5, dtype=torch.float64)
        >>> brightness(x, torch.tensor([3]), {}, preset="imagenet", reference="imagecorruptions")[0, 0, 0, 0].item()
        0.8
    """
    shift = severity_table(TABLES, preset, severity, dtype=x.dtype)
    return adjust_hsv(x, value_shift=shift)


SPEC = register(CorruptionSpec(name="brightness", apply=brightness))
