"""translate (test): ``affine(img, translate=(i - k, 0))`` with nearest sampling and black fill, then crop."""

from __future__ import annotations

import torch

from augrobust.perturbations.spec import PerturbationSpec, old_torchvision_affine_matrix, pil_affine, register

__all__ = ["OFFSETS", "apply"]

#: (frames, k): frame i shifts by ``i - k`` pixels to the right.
OFFSETS = {"imagenet": (41, 20), "tinyimagenet": (31, 15), "cifar": (16, 7)}


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The frames of an uncropped ``(B, C, H, W)`` uint8 batch (crop them afterwards, as the script does).

    Example:
        >>> apply(torch.ones(1, 3, 8, 8, dtype=torch.uint8), 1, "cifar", {})[0, 0, 0, 0].tolist()
        [1, 0, 0, 0, 0, 0, 0, 0]
    """
    frames, k = OFFSETS[variant]
    h, w = u.shape[-2:]
    coef = [old_torchvision_affine_matrix(w, h, 0.0, (i - k, 0), 1.0, 0.0) for i in range(frames)]
    return pil_affine(u, coef, bilinear=False)


SPEC = register(PerturbationSpec("translate", "test", {v: f for v, (f, _) in OFFSETS.items()}, apply, geometric=True))
