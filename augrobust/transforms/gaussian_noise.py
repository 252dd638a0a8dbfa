"""GaussianNoise: calibrated Gaussian noise for GNT (Rusak et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from augrobust._checks import check_bool, check_number, reject_unknown_kwargs
from augrobust.errors import AugrobustValueError
from augrobust.functional.noise import apply_gaussian_noise, parse_strength, sample_gaussian_noise
from augrobust.transforms.base import RobustAugmentation

__all__ = ["GaussianNoise"]


class GaussianNoise(RobustAugmentation):
    """Additive Gaussian noise in ``[0, 1]`` image space, then clip: ``clip(x + sigma * n, 0, 1)``.

    ``n ~ N(0, I)`` independently per pixel and channel; ``sigma`` per image. In L2 mode (``eps=``) the
    Gaussian direction is rescaled per image so that the perturbation *after clipping* has exactly the L2
    norm ``eps`` (clipping-aware rescaling; :func:`augrobust.functional.calibrate_l2`).

    Args:
        sigma: a float (GNT: ``0.5``), a list of values drawn uniformly per image (GNT-mult:
            ``[0.08, 0.12, 0.18, 0.26, 0.38]``, see ``augrobust.functional.GNT_SIGMAS``) or a ``(min, max)``
            tuple drawn uniformly per image. Default ``0.5``; not allowed together with ``eps``.
        eps: L2 budget per image (float, list or range), e.g. ``135.0`` for 3x224x224 images, which matches
            sigma 0.5 (:func:`augrobust.functional.eps_for_sigma` gives it for any shape).
        mean: mean of the noise, added to every pixel (torchvision's ``v2.GaussianNoise`` argument; sigma mode).
        clip: clip the output to ``[0, 1]`` (torchvision's argument; ``False`` needs float input, sigma mode).
        p: probability that a sample is noised (GNT keeps half of each batch clean: ``p=0.5``).
        same_on_batch: one noise field and strength for the whole batch.
        keepdim: keep the input's rank (default ``True``).
        seed: ``None`` (torch's global RNG) or an int for a private reproducible stream.

    Convention:
        Input ``(C, H, W)`` or ``(B, C, H, W)``, any number of channels; float in ``[0, 1]`` or ``uint8``
        (computed in float32, floored back). The output is always clipped to the valid range. Parameters
        (the noise field, per-sample sigma or eps) are drawn per sample on the input's device and stored in
        ``_params`` for replay with ``aug(x, params=aug._params)``; masks and boxes pass through unchanged.

    Example:
        >>> import torch, augrobust
        >>> aug = augrobust.GaussianNoise(sigma=0.5, p=0.5, seed=0)
        >>> x = torch.rand(8, 3, 32, 32)
        >>> y = aug(x)
        >>> torch.equal(aug(x, params=aug._params), y)
        True
    """

    def __init__(
        self,
        sigma: float | Sequence[float] | None = None,
        *,
        eps: float | Sequence[float] | None = None,
        mean: float = 0.0,
        clip: bool = True,
        p: float = 1.0,
        same_on_batch: bool = False,
        keepdim: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        reject_unknown_kwargs(type(self).__name__, kwargs, self._valid_kwargs())
        if sigma is not None and eps is not None:
            raise AugrobustValueError(
                f"pass either sigma (noise level) or eps (L2 budget), not both; got sigma={sigma!r}, eps={eps!r}."
            )
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim, seed=seed)
        self.eps = None if eps is None else parse_strength(eps, "eps", positive=True)
        self.sigma = None if self.eps is not None else parse_strength(0.5 if sigma is None else sigma, "sigma")
        self.mean = check_number(mean, "mean")
        self.clip = check_bool(clip, "clip")
        if self.eps is not None and (self.mean != 0.0 or not self.clip):
            raise AugrobustValueError(
                f"eps (L2 mode) calibrates the clipped perturbation itself; it takes neither mean nor clip=False, "
                f"got mean={mean!r}, clip={clip!r}. Use sigma= for a shifted or unclipped noise."
            )

    def sample_params(
        self, shape: torch.Size, *, generator: torch.Generator | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        return sample_gaussian_noise(
            shape, self.sigma if self.sigma is not None else 0.0, eps=self.eps, same_on_batch=self.same_on_batch,
            generator=generator, device=device,
        )  # fmt: skip

    def apply_params(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.mean == 0.0 and self.clip:
            return apply_gaussian_noise(x, params)
        if "sigma" not in params or "noise" not in params:
            raise AugrobustValueError(f"params must contain 'noise' and 'sigma'; got keys {sorted(params)}.")
        sigma = params["sigma"].to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.ndim - 1)))
        out = x + sigma * params["noise"].to(device=x.device, dtype=x.dtype) + self.mean
        return out.clamp(0.0, 1.0) if self.clip else out

    def extra_repr_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"eps": str(self.eps)} if self.eps is not None else {"sigma": str(self.sigma)}
        if self.mean != 0.0 or not self.clip:
            args.update(mean=self.mean, clip=self.clip)
        return args
