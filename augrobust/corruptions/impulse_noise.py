"""impulse_noise: salt-and-pepper noise per pixel *and channel*, then clip.

Reference: ``imagecorruptions.corruptions.impulse_noise`` calls
``skimage.util.random_noise(x, mode='s&p', amount=a)``. In scikit-image (0.19 to 0.26) that draws, from its
own ``np.random.default_rng()`` (not seeded by ``np.random.seed``), two uniform HWC fields in this order:
``flipped = rng.random(shape) <= a`` and ``salted = rng.random(shape) <= 0.5``; flipped-and-salted
elements become 1, flipped-and-not-salted become 0. Each channel is drawn independently, so an affected
pixel may get colour impulses (kornia and albumentations share one mask across channels instead).

``params`` holds the same two uniform fields (``flip_uniform``, ``salt_uniform``), so the kernel applies
exactly the comparisons above and a replayed scikit-image draw gives bit-identical output.
"""

from __future__ import annotations

import torch

from augrobust.corruptions._spec import CorruptionSpec, register, severity_table

__all__ = ["TABLES", "impulse_noise", "sample_impulse_uniforms"]

#: s&p ``amount`` (probability that an element is replaced) per severity, per preset (imagenet_c.md 3.1, 4.x).
TABLES = {
    "imagenet": (0.03, 0.06, 0.09, 0.17, 0.27),
    "inception": (0.04, 0.07, 0.10, 0.18, 0.28),
    "tinyimagenet": (0.01, 0.02, 0.05, 0.08, 0.14),
    "cifar": (0.01, 0.02, 0.03, 0.05, 0.07),
}

#: scikit-image's default ``salt_vs_pepper``.
SALT_VS_PEPPER = 0.5


def sample_impulse_uniforms(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Two independent U[0, 1) fields per image: which elements flip, and salt versus pepper.

    Example:
        >>> import torch
        >>> p = sample_impulse_uniforms((2, 3, 8, 8), torch.tensor([1, 5]), preset="imagenet",
        ...                             reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> sorted(p), tuple(p["flip_uniform"].shape)
        (['flip_uniform', 'salt_uniform'], (2, 3, 8, 8))
    """
    u = torch.rand((2, *shape), generator=generator, device=device)
    return {"flip_uniform": u[0], "salt_uniform": u[1]}


def impulse_noise(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Replace element ``i`` by 1 (salt) or 0 (pepper) where ``flip_uniform[i] <= amount``.

    Example:
        >>> import torch
        >>> x = torch.full((1, 1, 1, 3), 0.5)
        >>> p = {"flip_uniform": torch.tensor([0.01, 0.01, 0.9]).view(1, 1, 1, 3),
        ...      "salt_uniform": torch.tensor([0.2, 0.7, 0.2]).view(1, 1, 1, 3)}
        >>> impulse_noise(x, torch.tensor([1]), p, preset="imagenet", reference="imagecorruptions").flatten().tolist()
        [1.0, 0.0, 0.5]
    """
    # Compare in the uniforms' dtype: float64 for a replayed scikit-image draw (exact), float32 for the
    # sampler's own draws (the amount then rounds to float32, a change of at most 1e-9 in probability).
    flip_uniform = params["flip_uniform"]
    amount = severity_table(TABLES, preset, severity, dtype=flip_uniform.dtype).view(-1, 1, 1, 1)
    flipped = flip_uniform <= amount
    salt = (params["salt_uniform"] <= SALT_VS_PEPPER).to(x.dtype)
    return torch.where(flipped, salt, x)


SPEC = register(
    CorruptionSpec(name="impulse_noise", apply=impulse_noise, sample_params=sample_impulse_uniforms, per_channel=True)
)
