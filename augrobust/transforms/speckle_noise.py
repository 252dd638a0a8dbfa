"""SpeckleNoise: multiplicative Gaussian noise, ``clip(x + x * sigma * n, 0, 1)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from augrobust._checks import reject_unknown_kwargs
from augrobust.functional.noise import SPECKLE_SIGMAS, apply_speckle_noise, parse_strength, sample_speckle_noise
from augrobust.transforms.base import RobustAugmentation

__all__ = ["SpeckleNoise"]


class SpeckleNoise(RobustAugmentation):
    """Speckle noise as in ImageNet-C and the GNT paper's speckle baseline: noise proportional to intensity.

    Args:
        sigma: a float, a list drawn per image (default: the five ImageNet-C speckle levels
            ``[0.15, 0.2, 0.35, 0.45, 0.6]``) or a ``(min, max)`` range.
        p: probability that a sample is noised.
        same_on_batch: one draw for the whole batch.
        keepdim: keep the input's rank (default ``True``).
        seed: ``None`` (torch's global RNG) or an int for a private reproducible stream.

    Convention:
        As :class:`augrobust.GaussianNoise`: any channel count, float in ``[0, 1]`` or ``uint8``, output
        clipped, per-sample draws on the input's device, replayable with ``params=``.

    Example:
        >>> import torch, augrobust
        >>> aug = augrobust.SpeckleNoise(seed=0)
        >>> aug(torch.zeros(3, 16, 16)).abs().max().item()  # black stays black
        0.0
    """

    def __init__(
        self,
        sigma: float | Sequence[float] = list(SPECKLE_SIGMAS),
        *,
        p: float = 1.0,
        same_on_batch: bool = False,
        keepdim: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        reject_unknown_kwargs(type(self).__name__, kwargs, self._valid_kwargs())
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim, seed=seed)
        self.sigma = parse_strength(sigma, "sigma")

    def sample_params(
        self, shape: torch.Size, *, generator: torch.Generator | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        return sample_speckle_noise(
            shape, self.sigma, same_on_batch=self.same_on_batch, generator=generator, device=device
        )

    def apply_params(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return apply_speckle_noise(x, params)

    def extra_repr_args(self) -> dict[str, Any]:
        return {"sigma": str(self.sigma)}
