"""zoom_blur (test): running float32 mean of the zooms ``1 + 0.004 i`` (bilinear affine), ``ToPILImage`` cast.

Frame 0 is the clean crop; frame i is ``byte(255 * (sum_{k<=i} ToTensor(zoom_k)) / (i + 1))`` with the sum
accumulated frame by frame in float32, as the script's ``avg += ...``.
"""

from __future__ import annotations

import torch

from augrobust.perturbations.spec import (
    PerturbationSpec,
    old_torchvision_affine_matrix,
    pil_affine,
    register,
    to_tensor,
    to_uint8_trunc,
)

__all__ = ["apply"]

FRAMES = 31


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The 31 frames of an uncropped ``(B, C, H, W)`` uint8 batch (cropping commutes with the mean).

    Example:
        >>> apply(torch.full((1, 3, 8, 8), 9, dtype=torch.uint8), 1, "cifar", {})[0, :, 0, 4, 4].unique().tolist()
        [9]
    """
    h, w = u.shape[-2:]
    coef = [old_torchvision_affine_matrix(w, h, 0.0, (0, 0), 1 + 0.004 * i, 0.0) for i in range(1, FRAMES)]
    zooms = pil_affine(u, coef, bilinear=True)
    out = torch.empty((u.shape[0], FRAMES, *u.shape[1:]), dtype=torch.uint8, device=u.device)
    out[:, 0] = u
    avg = to_tensor(u)
    for i in range(1, FRAMES):  # sequential float32 sums, as the script accumulates them
        avg += to_tensor(zooms[:, i - 1])
        out[:, i] = to_uint8_trunc(avg / (i + 1))
    return out


SPEC = register(
    PerturbationSpec(
        "zoom_blur", "test", dict.fromkeys(("imagenet", "tinyimagenet", "cifar"), FRAMES), apply, geometric=True
    )
)
