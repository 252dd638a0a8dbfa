"""gaussian_noise (test): frame 0 clean, frames 1-30 ``clamp(x + sigma * randn_like(x), 0, 1)`` in float32.

Script: ``ToTensor`` then ``ToPILImage`` (``mul(255).byte()``, truncation); CIFAR keeps the raw frame 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from augrobust.perturbations.spec import PerturbationSpec, register, to_tensor, to_uint8_trunc

__all__ = ["SIGMAS", "apply", "sample"]

#: Noise standard deviation per difficulty 1-3 (the ``gaussian_noise``, ``_2``, ``_3`` sets).
SIGMAS = {"imagenet": (0.03, 0.05, 0.08), "tinyimagenet": (0.025, 0.05, 0.075), "cifar": (0.02, 0.04, 0.06)}
FRAMES = 31


def sample(
    u: torch.Tensor, difficulty: int, variant: str, generators: Sequence[torch.Generator | None]
) -> dict[str, torch.Tensor]:
    """Standard normal draws ``(B, 30, C, H, W)`` float32, one block per image from its generator.

    Example:
        >>> sample(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 1, "cifar", [None, None])["noise"].shape
        torch.Size([2, 30, 3, 8, 8])
    """
    shape = (FRAMES - 1, *u.shape[1:])
    return {"noise": torch.stack([torch.randn(shape, generator=g, device=u.device) for g in generators])}


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The frames of ``(B, C, H, W)`` uint8 images given the normal draws.

    Example:
        >>> u = torch.full((1, 3, 4, 4), 128, dtype=torch.uint8)
        >>> apply(u, 1, "cifar", {"noise": torch.zeros(1, 30, 3, 4, 4)}).shape
        torch.Size([1, 31, 3, 4, 4])
    """
    x = to_tensor(u).unsqueeze(1)
    noisy = to_uint8_trunc(torch.clamp(x + SIGMAS[variant][difficulty - 1] * params["noise"], 0, 1))
    first = u.unsqueeze(1) if variant == "cifar" else to_uint8_trunc(x)
    return torch.cat([first, noisy], dim=1)


SPEC = register(
    PerturbationSpec(
        "gaussian_noise", "test", dict.fromkeys(("imagenet", "tinyimagenet", "cifar"), FRAMES), apply, sample
    )
)
