"""brightness (test): frame i adds ``c_i`` to the HSV value (scikit-image HSV, float64), ``uint8`` truncation."""

from __future__ import annotations

import torch

from augrobust.functional.color import adjust_hsv
from augrobust.perturbations.spec import PerturbationSpec, register, to_uint8_trunc

__all__ = ["STEPS", "apply", "shifts"]

#: ``c_i = (i - 15) * step / 100`` for i = 0..30 (one difficulty; the test script strides it).
STEPS = {"imagenet": 2, "tinyimagenet": 2, "cifar": 1.5}
FRAMES = 31


def shifts(variant: str) -> list[float]:
    """The 31 value shifts, evaluated as the script writes them.

    Example:
        >>> shifts("imagenet")[0], shifts("cifar")[30]
        (-0.3, 0.225)
    """
    return [(i - 15) * STEPS[variant] / 100.0 for i in range(FRAMES)]


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The 31 frames of a ``(B, 3, H, W)`` uint8 batch.

    Example:
        >>> apply(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), 1, "imagenet", {}).shape
        torch.Size([2, 31, 3, 4, 4])
    """
    b = u.shape[0]
    x = (u.double() / 255.0).unsqueeze(1).expand(b, FRAMES, *u.shape[1:]).reshape(b * FRAMES, *u.shape[1:])
    shift = torch.tensor(shifts(variant), dtype=torch.float64, device=u.device).repeat(b)
    return to_uint8_trunc(adjust_hsv(x, value_shift=shift)).view(b, FRAMES, *u.shape[1:])


SPEC = register(
    PerturbationSpec("brightness", "test", dict.fromkeys(("imagenet", "tinyimagenet", "cifar"), FRAMES), apply)
)
