"""gaussian_noise: additive N(0, sigma^2) per pixel and channel, then clip to [0, 1].

Reference: ``imagecorruptions.corruptions.gaussian_noise``: ``clip(x + normal(scale=c), 0, 1)`` with
``normal(size=x.shape)`` drawn from NumPy's global RNG in HWC order. NumPy computes the normal as
``0 + c * z``, so the kernel evaluates ``x + sigma * z``, which is the same float64 result bit for bit.
"""

from __future__ import annotations

import torch

from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.functional.precision import autocast_exempt

__all__ = ["TABLES", "gaussian_noise", "sample_gaussian_noise_field"]

#: sigma in [0, 1] units per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": (0.08, 0.12, 0.18, 0.26, 0.38),
    "inception": (0.09, 0.13, 0.19, 0.27, 0.40),
    "tinyimagenet": (0.04, 0.08, 0.12, 0.15, 0.18),
    "cifar": (0.04, 0.06, 0.08, 0.09, 0.10),
}


def sample_gaussian_noise_field(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """A standard-normal field per image; the kernel scales it by the severity's sigma.

    Example:
        >>> import torch
        >>> p = sample_gaussian_noise_field((2, 3, 8, 8), torch.tensor([1, 5]), preset="imagenet",
        ...                                 reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> tuple(p["noise"].shape)
        (2, 3, 8, 8)
    """
    return {"noise": torch.randn(shape, generator=generator, device=device)}


@autocast_exempt
def gaussian_noise(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """``clip(x + sigma * noise, 0, 1)``.

    Example:
        >>> import torch
        >>> x = torch.full((1, 3, 2, 2), 0.5)
        >>> p = {"noise": torch.ones(1, 3, 2, 2)}
        >>> gaussian_noise(x, torch.tensor([1]), p, preset="imagenet", reference="imagecorruptions")[0, 0, 0, 0].item()
        0.5799999833106995
    """
    sigma = severity_table(TABLES, preset, severity, dtype=x.dtype).view(-1, 1, 1, 1)
    return (x + sigma * params["noise"].to(x.dtype)).clamp_(0.0, 1.0)


SPEC = register(
    CorruptionSpec(
        name="gaussian_noise", apply=gaussian_noise, sample_params=sample_gaussian_noise_field, per_channel=True
    )
)
