"""saturate: scale and offset the HSV saturation (scikit-image HSV), then back to RGB.

Reference: ``imagecorruptions.corruptions.saturate`` (same in ``hendrycks/robustness``): ``rgb2hsv``,
``S = clip(S * c0 + c1, 0, 1)``, ``hsv2rgb``, clip. Deterministic; float64 input is bit-identical to the
reference (see :mod:`augrobust.functional.color`).
"""

from __future__ import annotations

import torch

from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.functional.color import adjust_hsv
from augrobust.functional.precision import autocast_exempt

__all__ = ["TABLES", "saturate"]

#: (multiplier, offset) on S per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2)),
    "inception": ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2)),
    "tinyimagenet": ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (30.0, 0.2)),
    "cifar": ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2)),
}


@autocast_exempt
def saturate(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Change the saturation of a ``(B, 3, H, W)`` batch by the severity's (multiplier, offset).

    Example:
        >>> import torch
        >>> x = torch.tensor([1.0, 0.5, 0.5], dtype=torch.float64).view(1, 3, 1, 1)
        >>> saturate(x, torch.tensor([3]), {}, preset="imagenet", reference="imagecorruptions").flatten().tolist()
        [1.0, 0.0, 0.0]
    """
    row = severity_table(TABLES, preset, severity, dtype=x.dtype)
    return adjust_hsv(x, saturation_scale=row[:, 0], saturation_shift=row[:, 1])


SPEC = register(CorruptionSpec(name="saturate", apply=saturate))
