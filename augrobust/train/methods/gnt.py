"""The ``gnt`` training method: Gaussian noise training (Rusak et al., ECCV 2020)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from augrobust.train.methods.base import Method
from augrobust.transforms import GaussianNoise

__all__ = ["GNT"]


class GNT(Method):
    """Gaussian noise training: ``augrobust.GaussianNoise(sigma, p)`` on the device batch.

    Each image independently gets additive N(0, sigma^2) noise (then clipped to [0, 1]) with probability
    ``p`` and stays clean otherwise, in image space before the model's Normalize layer.

    Args:
        sigma: noise standard deviation in [0, 1] image units (0.5 in the paper).
        p: probability that an image is noised (0.5: half clean, half noisy).
        augmentation: the module to apply instead of ``augrobust.GaussianNoise(sigma=sigma, p=p)``.

    Example:
        >>> gnt = GNT(augmentation=lambda x: (x + 0.5 * torch.randn_like(x)).clamp(0, 1))
        >>> gnt(None, torch.rand(2, 3, 4, 4), None).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(
        self, sigma: float = 0.5, p: float = 0.5, augmentation: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        self.sigma, self.p = sigma, p  # GaussianNoise checks them
        self.augmentation = augmentation if augmentation is not None else GaussianNoise(sigma=sigma, p=p)

    def augment(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if isinstance(self.augmentation, nn.Module):
            self.augmentation.to(x.device)
        return self.augmentation(x)

    def __repr__(self) -> str:
        return f"GNT(sigma={self.sigma}, p={self.p})"
