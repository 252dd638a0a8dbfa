"""shear (validation): ``affine(img, shear=i - 15)`` (x shear, degrees) with bilinear sampling, then crop."""

from __future__ import annotations

import torch

from augrobust.perturbations.spec import PerturbationSpec, old_torchvision_affine_matrix, pil_affine, register

__all__ = ["apply"]

FRAMES = 31


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The 31 frames of an uncropped ``(B, C, H, W)`` uint8 batch.

    Example:
        >>> apply(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 1, "cifar", {}).shape
        torch.Size([1, 31, 3, 8, 8])
    """
    h, w = u.shape[-2:]
    coef = [old_torchvision_affine_matrix(w, h, 0.0, (0, 0), 1.0, float(i - 15)) for i in range(FRAMES)]
    return pil_affine(u, coef, bilinear=True)


SPEC = register(
    PerturbationSpec(
        "shear", "validation", dict.fromkeys(("imagenet", "tinyimagenet", "cifar"), FRAMES), apply, geometric=True
    )
)
