"""impulse_noise: salt-and-pepper noise per pixel *and channel*, then clip.

Reference: ``imagecorruptions.corruptions.impulse_noise`` calls
``skimage.util.random_noise(x, mode='s&p', amount=a)``. In scikit-image (0.19 to 0.26) that draws, from its
own ``np.random.default_rng()`` (not seeded by ``np.random.seed``), two uniform HWC fields in this order:
``flipped = rng.random(shape) <= a`` and ``salted = rng.random(shape) <= 0.5``; flipped-and-salted
elements become 1, flipped-and-not-salted become 0. Each channel is drawn independently, so an affected
pixel may get colour impulses (kornia and albumentations share one mask across channels instead).

The sampler draws ONE float32 uniform field ``u`` per element, which decides both events with the same
law: ``u < a / 2`` is salt, ``a / 2 <= u < a`` pepper, so an element flips with probability ``a`` and,
given a flip, is salt with probability 1/2 (each up to the ``2**-24`` resolution of float32 uniforms).
``params`` may instead hold scikit-image's two fields (``flip_uniform``, ``salt_uniform``); the kernel then
applies exactly the comparisons above, so a replayed scikit-image draw gives bit-identical output.
"""

from __future__ import annotations

import torch

from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.functional.precision import autocast_exempt

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
    """One U[0, 1) float32 field per image: ``u < a / 2`` salt, ``a / 2 <= u < a`` pepper.

    Example:
        >>> import torch
        >>> p = sample_impulse_uniforms((2, 3, 8, 8), torch.tensor([1, 5]), preset="imagenet",
        ...                             reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> sorted(p), tuple(p["u"].shape)
        (['u'], (2, 3, 8, 8))
    """
    return {"u": torch.rand(shape, generator=generator, device=device)}


@autocast_exempt
def impulse_noise(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Replace element ``i`` by 1 (salt) or 0 (pepper) with probability ``amount``, 50/50.

    ``params`` is either ``{"u"}`` (one field: ``u < a / 2`` salt, ``a / 2 <= u < a`` pepper) or
    scikit-image's ``{"flip_uniform", "salt_uniform"}`` (``flip <= a``, then salt where ``salt <= 0.5``).

    Example:
        >>> import torch
        >>> x = torch.full((1, 1, 1, 3), 0.5)
        >>> p = {"flip_uniform": torch.tensor([0.01, 0.01, 0.9]).view(1, 1, 1, 3),
        ...      "salt_uniform": torch.tensor([0.2, 0.7, 0.2]).view(1, 1, 1, 3)}
        >>> impulse_noise(x, torch.tensor([1]), p, preset="imagenet", reference="imagecorruptions").flatten().tolist()
        [1.0, 0.0, 0.5]
        >>> p = {"u": torch.tensor([0.01, 0.02, 0.9]).view(1, 1, 1, 3)}
        >>> impulse_noise(x, torch.tensor([1]), p, preset="imagenet", reference="imagecorruptions").flatten().tolist()
        [1.0, 0.0, 0.5]
    """
    if "u" in params:
        u = params["u"]
        amount = severity_table(TABLES, preset, severity, dtype=u.dtype).view(-1, 1, 1, 1)
        # Two in-place fills of a copy: cheaper than building the replacement values and a where. The copy
        # is clipped as the reference clips its result (a no-op in [0, 1]; +-inf become 1 and 0, NaN stays).
        out = x.clamp(0.0, 1.0)
        out.masked_fill_(u < amount, 0.0)
        return out.masked_fill_(u < amount * SALT_VS_PEPPER, 1.0)
    # Compare in the uniforms' dtype: float64 for a replayed scikit-image draw (exact).
    flip_uniform = params["flip_uniform"]
    amount = severity_table(TABLES, preset, severity, dtype=flip_uniform.dtype).view(-1, 1, 1, 1)
    flipped = flip_uniform <= amount
    salt = (params["salt_uniform"] <= SALT_VS_PEPPER).to(x.dtype)
    return torch.where(flipped, salt, x.clamp(0.0, 1.0))


SPEC = register(
    CorruptionSpec(name="impulse_noise", apply=impulse_noise, sample_params=sample_impulse_uniforms, per_channel=True)
)
