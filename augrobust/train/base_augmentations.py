"""Label-preserving augmentations the trainer applies to every batch on the device, before the method."""

from __future__ import annotations

from collections.abc import Callable

import torch

from augrobust._checks import check_count

__all__ = ["BASE_AUGMENTATIONS", "random_crop_flip"]


def random_crop_flip(x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """The standard CIFAR training augmentation on a device batch: zero-pad, random crop back, random h-flip.

    Per image an offset ``(dy, dx)`` uniform in ``0..2*padding`` and a flip with probability 0.5, like
    torchvision's ``RandomCrop(size, padding)`` + ``RandomHorizontalFlip()`` per sample, but one gather for
    the batch on its device.

    Example:
        >>> x = torch.rand(4, 3, 8, 8)
        >>> random_crop_flip(x, padding=2).shape
        torch.Size([4, 3, 8, 8])
    """
    padding = check_count(padding, "padding")
    b, c, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), device=x.device, generator=generator)
    flip = torch.rand(b, device=x.device, generator=generator) < 0.5
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    rows = offsets[:, :1] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # a flipped crop reads its columns backwards
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * padding))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


#: ``TrainConfig.base_augmentation`` name -> the augmentation.
BASE_AUGMENTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "crop_flip": random_crop_flip,
    "none": _identity,
}
