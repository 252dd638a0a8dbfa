"""speckle_noise (validation): frame 0 clean, frames 1-30 ``uint8(255 * clip(x + x * N(0, s), 0, 1))``, float64."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from augrobust.perturbations.spec import PerturbationSpec, register, to_uint8_trunc

__all__ = ["SCALES", "apply", "sample"]

#: Multiplicative noise standard deviation per difficulty 1-3.
SCALES = {"imagenet": (0.05, 0.10, 0.15), "tinyimagenet": (0.05, 0.1, 0.15), "cifar": (0.05, 0.07, 0.1)}
FRAMES = 31


def sample(
    u: torch.Tensor, difficulty: int, variant: str, generators: Sequence[torch.Generator | None]
) -> dict[str, torch.Tensor]:
    """Standard normal draws ``(B, 30, C, H, W)`` float64 (``np.random.normal(scale=s)`` is ``s`` times one).

    Example:
        >>> sample(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), 1, "cifar", [None])["noise"].dtype
        torch.float64
    """
    shape = (FRAMES - 1, *u.shape[1:])
    return {
        "noise": torch.stack(
            [torch.randn(shape, generator=g, device=u.device, dtype=torch.float64) for g in generators]
        )
    }


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The frames given the standard normal draws.

    Example:
        >>> u = torch.full((1, 3, 2, 2), 100, dtype=torch.uint8)
        >>> apply(u, 1, "cifar", {"noise": torch.zeros(1, 30, 3, 2, 2, dtype=torch.float64)})[0, 5, 0, 0, 0].item()
        100
    """
    x = (u.double() / 255.0).unsqueeze(1)
    noisy = to_uint8_trunc(torch.clip(x + x * (SCALES[variant][difficulty - 1] * params["noise"].double()), 0, 1))
    return torch.cat([u.unsqueeze(1), noisy], dim=1)


SPEC = register(
    PerturbationSpec(
        "speckle_noise", "validation", dict.fromkeys(("imagenet", "tinyimagenet", "cifar"), FRAMES), apply, sample
    )
)
