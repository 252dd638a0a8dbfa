"""rotate (test): ``affine(img, angle=i - 15)`` with bilinear sampling and black fill, then crop."""

from __future__ import annotations

import torch

from augrobust.perturbations.spec import PerturbationSpec, old_torchvision_affine_matrix, pil_affine, register

__all__ = ["angles", "apply"]

FRAMES = 31


def angles(variant: str) -> list[float]:
    """Rotation in degrees of each frame (the same in every variant).

    Example:
        >>> angles("cifar")[:3]
        [-15, -14, -13]
    """
    return [i - 15 for i in range(FRAMES)]


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The 31 frames of an uncropped ``(B, C, H, W)`` uint8 batch.

    Example:
        >>> apply(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 1, "cifar", {}).shape
        torch.Size([1, 31, 3, 8, 8])
    """
    h, w = u.shape[-2:]
    return pil_affine(
        u, [old_torchvision_affine_matrix(w, h, a, (0, 0), 1.0, 0.0) for a in angles(variant)], bilinear=True
    )


SPEC = register(
    PerturbationSpec(
        "rotate", "test", dict.fromkeys(("imagenet", "tinyimagenet", "cifar"), FRAMES), apply, geometric=True
    )
)
