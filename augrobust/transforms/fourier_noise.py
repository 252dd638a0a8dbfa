"""FourierNoise: AFA's additive Fourier-basis noise (Vaish et al., CVPR 2024)."""

from __future__ import annotations

from typing import Any

import torch

from augrobust._checks import check_choice, check_number, reject_unknown_kwargs
from augrobust.errors import AugrobustValueError
from augrobust.functional.fourier_basis import AFA_GRANULARITY, apply_fourier_noise, sample_fourier_noise
from augrobust.transforms.base import RobustAugmentation

__all__ = ["FourierNoise"]

# The choices of augrobust.functional.sample_fourier_noise / apply_fourier_noise (checked again there).
FREQUENCY_CHOICES = ("reference", "nyquist")
GRID_CHOICES = ("reference", "pixel")


class FourierNoise(RobustAugmentation):
    """Add one random planar Fourier-basis wave per image and channel, then clip: AFA's augmentation.

    ``x' = clamp(x + sigma * W_{k, theta}, 0, 1)`` in ``[0, 1]`` pixel space, where per image and per channel
    ``k ~ U{1..S}`` (``S = max(H, W)``), ``theta = -pi t`` with ``t`` on a ``granularity``-step grid of
    ``[0, 1]``, ``sigma ~ Exponential(mean_strength) + min_strength``, and ``W`` is the L2-normalised wave
    scaled to a per-pixel RMS of ``1/32`` (see :mod:`augrobust.functional.fourier_basis`). Faithful to the
    authors' ``GeneralFourierOnline`` (``f_cut = phase_cut = 1``, as in all their configs) at square sizes,
    including its grid and the aliasing of ``k > S/2``; non-square images follow the documented rule.

    The default ``mean_strength=10`` is the value of the authors' published training configurations (the
    README's ImageNet runs, ResNet-50 and CCT, with ``min_str=0``); their constructor default is 5, and the
    CIFAR / TinyImageNet values are not in their repository. Since the noise has the same per-pixel RMS per
    unit strength at every image size, 10 means the same visual strength at 32 px as at 224 px. It is
    deliberately strong (mean peak ~0.44, ~10% of channels with a peak >= 1): AFA feeds these images through
    an auxiliary BatchNorm route (:class:`augrobust.train.AFA`). For a single-stream use ("AFA w/o aux"
    or inside a chain) a milder ``mean_strength=5`` is a reasonable choice.

    Args:
        mean_strength: mean of the exponential strength (>= 0; 10 in the paper's configs).
        min_strength: offset added to every strength (>= 0; 0 in the paper's configs).
        granularity: number of orientations on ``[-pi, 0]`` (448 in the paper's configs).
        frequencies: ``"reference"`` (``k`` in ``1..S``, aliasing above ``S/2`` as the reference) or
            ``"nyquist"`` (``k`` in ``1..S//2``, no aliased duplicates).
        grid: ``"reference"`` (the reference's ``linspace(-S/2, S/2, S)`` grid) or ``"pixel"`` (unit spacing).
        p: probability that an image is transformed (AFA applies it to every image: 1.0).
        same_on_batch: one draw for the whole batch.
        keepdim: keep the input's rank (default ``True``).
        seed: ``None`` (torch's global RNG) or an int for a private reproducible stream.

    Convention:
        Input ``(C, H, W)`` or ``(B, C, H, W)``, any channel count (each channel its own wave), float in
        ``[0, 1]`` or ``uint8`` (computed in float32, floored back); float16 / bfloat16 are computed in
        float32. Parameters (``frequency``, ``orientation``, ``strength``: ``(B, C)``) are drawn on the
        input's device and stored in ``_params`` for replay with ``aug(x, params=aug._params)``; masks and
        boxes pass through unchanged.

    Example:
        >>> import torch, augrobust
        >>> aug = augrobust.FourierNoise(seed=0)
        >>> x = torch.rand(8, 3, 32, 32)
        >>> y = aug(x)
        >>> torch.equal(aug(x, params=aug._params), y), tuple(aug._params["frequency"].shape)
        (True, (8, 3))
    """

    def __init__(
        self,
        mean_strength: float = 10.0,
        *,
        min_strength: float = 0.0,
        granularity: int = AFA_GRANULARITY,
        frequencies: str = "reference",
        grid: str = "reference",
        p: float = 1.0,
        same_on_batch: bool = False,
        keepdim: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        reject_unknown_kwargs(type(self).__name__, kwargs, self._valid_kwargs())
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim, seed=seed)
        self.mean_strength = check_number(mean_strength, "mean_strength", minimum=0.0)
        self.min_strength = check_number(min_strength, "min_strength", minimum=0.0)
        if isinstance(granularity, bool) or not isinstance(granularity, int) or granularity < 1:
            raise AugrobustValueError(
                f"granularity (the number of orientations in [-pi, 0]) must be an int >= 1, got {granularity!r}; "
                f"the paper uses {AFA_GRANULARITY}."
            )
        self.granularity = granularity
        self.frequencies = check_choice(frequencies, "frequencies", FREQUENCY_CHOICES)
        self.grid = check_choice(grid, "grid", GRID_CHOICES)

    def sample_params(
        self, shape: torch.Size, *, generator: torch.Generator | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        return sample_fourier_noise(
            shape, mean_strength=self.mean_strength, min_strength=self.min_strength, granularity=self.granularity,
            frequencies=self.frequencies, same_on_batch=self.same_on_batch, generator=generator, device=device,
        )  # fmt: skip

    def apply_params(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return apply_fourier_noise(x, params, grid=self.grid)

    def extra_repr_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "mean_strength": self.mean_strength,
            "min_strength": self.min_strength,
            "granularity": self.granularity,
        }
        if self.frequencies != "reference":
            args["frequencies"] = repr(self.frequencies)
        if self.grid != "reference":
            args["grid"] = repr(self.grid)
        return args
