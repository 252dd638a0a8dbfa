"""shot_noise (test): frame 0 clean, frames 1-30 ``uint8(255 * clip(poisson(x * lam) / lam, 0, 1))``, float64."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from augrobust.perturbations.spec import PerturbationSpec, register, to_uint8_trunc

__all__ = ["RATES", "apply", "sample"]

#: Poisson scale per difficulty 1-3.
RATES = {"imagenet": (300, 120, 60), "tinyimagenet": (500, 250, 125), "cifar": (700, 400, 200)}
FRAMES = 31


def sample(
    u: torch.Tensor, difficulty: int, variant: str, generators: Sequence[torch.Generator | None]
) -> dict[str, torch.Tensor]:
    """Poisson counts ``(B, 30, C, H, W)`` float64 of ``x * lam`` (the draw depends on the image).

    Example:
        >>> sample(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), 1, "cifar", [None])["counts"].sum().item()
        0.0
    """
    rate = (u.double() / 255.0) * RATES[variant][difficulty - 1]
    counts = [torch.poisson(r.expand(FRAMES - 1, *r.shape), generator=g) for r, g in zip(rate, generators)]
    return {"counts": torch.stack(counts)}


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The frames given the Poisson counts.

    Example:
        >>> u = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
        >>> apply(u, 3, "imagenet", {"counts": torch.full((1, 30, 3, 2, 2), 60.0)})[0, -1, 0, 0, 0].item()
        255
    """
    lam = RATES[variant][difficulty - 1]
    noisy = to_uint8_trunc(torch.clip(params["counts"].double() / lam, 0, 1))
    return torch.cat([u.unsqueeze(1), noisy], dim=1)


SPEC = register(
    PerturbationSpec("shot_noise", "test", dict.fromkeys(("imagenet", "tinyimagenet", "cifar"), FRAMES), apply, sample)
)
