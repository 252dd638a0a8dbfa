"""speckle_noise: multiplicative noise ``clip(x + x * N(0, sigma^2), 0, 1)`` per pixel and channel.

Reference: ``imagecorruptions.corruptions.speckle_noise``: ``x + x * np.random.normal(size=x.shape,
scale=c)`` with the normal field drawn from NumPy's global RNG in HWC order; NumPy computes the normal
as ``0 + c * z``, so the kernel evaluates ``x + x * (sigma * z)`` in that order to match it bit for bit.
"""

from __future__ import annotations

import torch

from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.corruptions.gaussian_noise import sample_gaussian_noise_field
from augrobust.functional.precision import autocast_exempt

__all__ = ["TABLES", "sample_speckle_noise_field", "speckle_noise"]

#: sigma per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": (0.15, 0.20, 0.35, 0.45, 0.60),
    "inception": (0.16, 0.21, 0.36, 0.46, 0.61),
    "tinyimagenet": (0.15, 0.20, 0.25, 0.30, 0.35),
    "cifar": (0.06, 0.10, 0.12, 0.16, 0.20),
}


# The same standard-normal field as gaussian_noise; the kernel scales it by the severity's sigma.
sample_speckle_noise_field = sample_gaussian_noise_field


@autocast_exempt
def speckle_noise(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """``clip(x + x * (sigma * noise), 0, 1)``.

    Example:
        >>> import torch
        >>> x = torch.full((1, 3, 2, 2), 0.5)
        >>> p = {"noise": torch.ones(1, 3, 2, 2)}
        >>> speckle_noise(x, torch.tensor([5]), p, preset="imagenet", reference="imagecorruptions")[0, 0, 0, 0].item()
        0.800000011920929
    """
    sigma = severity_table(TABLES, preset, severity, dtype=x.dtype).view(-1, 1, 1, 1)
    return torch.addcmul(x, x, sigma * params["noise"].to(x.dtype)).clamp_(0.0, 1.0)


SPEC = register(
    CorruptionSpec(
        name="speckle_noise", apply=speckle_noise, sample_params=sample_speckle_noise_field, per_channel=True
    )
)
