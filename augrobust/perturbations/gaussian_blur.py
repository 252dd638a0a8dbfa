"""gaussian_blur (validation): ``uint8(255 * skimage.gaussian(x, sigma_i, truncate))`` in float64, frame by frame."""

from __future__ import annotations

import torch

from augrobust.functional.filters import gaussian_blur_nearest
from augrobust.perturbations.spec import PerturbationSpec, register, to_uint8_trunc

__all__ = ["SIGMAS", "apply", "sigmas"]

#: ``sigma_i = base + step * i`` and the truncation, per variant.
SIGMAS = {"imagenet": (0.25, 0.035, 6.0), "tinyimagenet": (0.35, 0.014, 7.0), "cifar": (0.3, 0.015, 7.0)}
FRAMES = 31


def sigmas(variant: str) -> list[float]:
    """The 31 blur widths.

    Example:
        >>> round(sigmas("imagenet")[30], 6)
        1.3
    """
    base, step, _ = SIGMAS[variant]
    return [base + step * i for i in range(FRAMES)]


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The 31 frames of a ``(B, C, H, W)`` uint8 batch.

    Example:
        >>> apply(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 1, "cifar", {}).shape
        torch.Size([2, 31, 3, 8, 8])
    """
    x = u.double() / 255.0
    truncate = SIGMAS[variant][2]
    frames = [to_uint8_trunc(gaussian_blur_nearest(x, s, truncate=truncate)) for s in sigmas(variant)]
    return torch.stack(frames, dim=1)


SPEC = register(
    PerturbationSpec("gaussian_blur", "validation", dict.fromkeys(("imagenet", "tinyimagenet", "cifar"), FRAMES), apply)
)
