"""translate (test): ``affine(img, translate=(i - k, 0))`` with nearest sampling and black fill, then crop."""

from __future__ import annotations

import torch

from augrobust.perturbations.spec import PerturbationSpec, register

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
    w = u.shape[-1]
    out = torch.zeros((u.shape[0], frames, *u.shape[1:]), dtype=u.dtype, device=u.device)
    for i in range(frames):  # frames, not images
        # torchvision's matrix for an integer translate t is [1, 0, -t, 0, 1, 0] exactly, and Pillow's nearest
        # sampling then reads column x - t: a plain shift with black fill (pil_affine gives the same frames)
        t = i - k
        if abs(t) < w:
            out[:, i, ..., max(t, 0) : w + min(t, 0)] = u[..., max(-t, 0) : w - max(t, 0)]
    return out

SPEC = register(PerturbationSpec("translate", "test", {v: f for v, (f, _) in OFFSETS.items()}, apply, geometric=True))
