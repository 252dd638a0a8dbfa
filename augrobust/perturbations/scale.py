"""scale (test): ``affine(img, scale=s_i)`` with bilinear sampling and black fill, then crop."""

from __future__ import annotations

import torch

from augrobust.perturbations.spec import PerturbationSpec, old_torchvision_affine_matrix, pil_affine, register

__all__ = ["apply", "factors"]

FRAMES = 31


def factors(variant: str) -> list[float]:
    """The zoom factor of each frame: ``(2.5 i + 40) / 100`` (ImageNet, Tiny) or ``(2 i + 70) / 100`` (CIFAR).

    Example:
        >>> factors("imagenet")[0], factors("cifar")[30]
        (0.4, 1.3)
    """
    if variant == "cifar":
        return [(i * 2 + 70) / 100.0 for i in range(FRAMES)]
    return [(i * 2.5 + 40) / 100.0 for i in range(FRAMES)]


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The 31 frames of an uncropped ``(B, C, H, W)`` uint8 batch.

    Example:
        >>> apply(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 1, "cifar", {}).shape
        torch.Size([1, 31, 3, 8, 8])
    """
    h, w = u.shape[-2:]
    return pil_affine(
        u, [old_torchvision_affine_matrix(w, h, 0.0, (0, 0), s, 0.0) for s in factors(variant)], bilinear=True
    )


SPEC = register(
    PerturbationSpec(
        "scale", "test", dict.fromkeys(("imagenet", "tinyimagenet", "cifar"), FRAMES), apply, geometric=True
    )
)
