"""AdversarialNoise: noise from trained ANT generators (Rusak et al. 2020) as an augmentation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from augrobust._checks import reject_unknown_kwargs
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.adversarial_noise import (
    NoiseGenerator,
    apply_adversarial_noise,
    sample_adversarial_noise,
)
from augrobust.functional.noise import parse_strength
from augrobust.transforms.base import RobustAugmentation

__all__ = ["AdversarialNoise"]


class AdversarialNoise(RobustAugmentation):
    """Noise from one or several (frozen) ANT noise generators, projected onto an L2 budget per image.

    For each sample: draw a Gaussian latent (and, with several generators, one of them uniformly), run the
    generator to get a noise direction, and rescale it so that ``||clip(x + s * direction, 0, 1) - x||_2 = eps``
    (:func:`augrobust.functional.project_l2`). The latent, ``eps`` and the generator index are the sampled
    parameters, so ``aug(x, params=aug._params)`` replays the output exactly; the generator's forward is part
    of the deterministic apply step.

    The generators are submodules: ``aug.to(device)`` moves them with the transform (the input's device is
    used for the draw). They are run on detached weights, so a classifier's loss never sends gradients into
    them through this transform; pass ``generator_grad=True`` to keep a single generator in the graph (the
    ``ant`` training method updates its generator itself and does not need this).

    Args:
        generators: a :class:`augrobust.functional.NoiseGenerator` or a list of them (e.g. the snapshots an
            ANT run keeps), all of one architecture and channel count.
        eps: the L2 budget per image in ``[0, 1]`` units: a float, a list drawn uniformly per image or a
            ``(min, max)`` range. The reference uses 135 at 3x224x224, which matches Gaussian noise of sigma 0.5
            (``augrobust.functional.eps_for_sigma(0.5, (C, H, W))`` gives the value for other shapes).
        p: probability that a sample is noised.
        same_on_batch: one latent, eps and generator for the whole batch.
        generator_grad: keep a single generator's parameters in the autograd graph.
        keepdim: keep the input's rank (default ``True``).
        seed: ``None`` (torch's global RNG) or an int for a private reproducible stream.

    Convention:
        Input ``(C, H, W)`` or ``(B, C, H, W)`` with the generators' channel count, any size; float in ``[0, 1]``
        (the generator runs in float32, or float64 for float64 input) or ``uint8`` (computed in float32,
        floored back). Masks and boxes pass through unchanged.

    Example:
        >>> import torch, augrobust
        >>> from augrobust.functional import NoiseGenerator
        >>> aug = augrobust.AdversarialNoise(NoiseGenerator(3, seed=0), eps=5.0, seed=0)
        >>> x = torch.rand(4, 3, 32, 32)
        >>> y = aug(x)
        >>> torch.allclose((y - x).flatten(1).norm(dim=1), torch.tensor(5.0), rtol=1e-4)
        True
        >>> torch.equal(aug(x, params=aug._params), y)
        True
    """

    def __init__(
        self,
        generators: NoiseGenerator | Sequence[NoiseGenerator],
        *,
        eps: float | Sequence[float],
        p: float = 1.0,
        same_on_batch: bool = False,
        generator_grad: bool = False,
        keepdim: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        reject_unknown_kwargs(type(self).__name__, kwargs, self._valid_kwargs())
        gens = [generators] if isinstance(generators, NoiseGenerator) else generators
        if isinstance(gens, (str, bytes)) or not isinstance(gens, (Sequence, nn.ModuleList)):
            raise AugrobustTypeError(
                f"generators must be a NoiseGenerator or a list of them, got {type(generators).__name__}."
            )
        gens = list(gens)
        if not gens:
            raise AugrobustValueError("generators must not be empty: pass at least one NoiseGenerator.")
        for g in gens:
            if not isinstance(g, NoiseGenerator):
                raise AugrobustTypeError(
                    f"generators must be NoiseGenerator instances (augrobust.functional.NoiseGenerator), got "
                    f"{type(g).__name__}."
                )
            if (g.channels, g.kernel_size, g.hidden) != (gens[0].channels, gens[0].kernel_size, gens[0].hidden):
                raise AugrobustValueError(
                    "all generators must share channels, kernel_size and hidden; got "
                    f"{[(x.channels, x.kernel_size, x.hidden) for x in gens]}."
                )
        if generator_grad and len(gens) > 1:
            raise AugrobustValueError("generator_grad=True needs a single generator, got a list of {len(gens)}.")
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim, seed=seed)
        self.generators = nn.ModuleList(gens)
        self.eps = parse_strength(eps, "eps", positive=True)
        self.generator_grad = bool(generator_grad)
        self.channels = (gens[0].channels,)  # the input must have the generators' channel count

    def sample_params(
        self, shape: torch.Size, *, generator: torch.Generator | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        return sample_adversarial_noise(
            shape, list(self.generators), self.eps, same_on_batch=self.same_on_batch, generator=generator,
            device=device,
        )  # fmt: skip

    def apply_params(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        weight_device = next(self.generators[0].parameters()).device
        if weight_device != x.device:
            raise AugrobustValueError(
                f"AdversarialNoise's generators are on {weight_device} but the images on {x.device}; move the "
                f"transform with aug.to({str(x.device)!r}) (its generators are submodules)."
            )
        if x.dtype == torch.float64:  # the latent is drawn in float32 (path-independent); run float64 input in float64
            params = {**params, "latent": params["latent"].to(torch.float64)}
        return apply_adversarial_noise(x, params, list(self.generators), detach=not self.generator_grad)

    def extra_repr_args(self) -> dict[str, Any]:
        g = self.generators[0]
        return {"generators": f"<{len(self.generators)} x {g.kernel_size}x{g.kernel_size}>", "eps": str(self.eps)}
