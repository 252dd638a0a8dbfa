"""The kornia-side contract shared by every augrobust transform.

A transform is an ``IntensityAugmentationBase2D`` whose randomness lives entirely in
:meth:`RobustAugmentation.sample_params` and whose work is the deterministic
:meth:`RobustAugmentation.apply_params`. On top of kornia's machinery (``AugmentationSequential``,
replay with ``params=``, masks and boxes passed through) the base adds:

* ``uint8`` input (converted to float32 in ``[0, 1]`` and floored back, the imagecorruptions rule);
* the input's rank is kept by default (``keepdim=True``): ``(C, H, W)`` in, ``(C, H, W)`` out;
* ``seed=`` (a private ``torch.Generator`` per device, worker-aware) or ``generator=`` per call; all draws,
  including the per-sample gate ``p``, happen on the input's device;
* clear errors for unknown keyword arguments, bad ranks, dtypes and mismatched replay parameters.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from kornia.augmentation import IntensityAugmentationBase2D

from augrobust._checks import check_probability, reject_unknown_kwargs
from augrobust._random import SeededRandomness, check_generator
from augrobust._tensor import check_image, from_float, to_float

__all__ = ["RobustAugmentation"]



class RobustAugmentation(IntensityAugmentationBase2D, SeededRandomness):
    """Base class: subclasses implement :meth:`sample_params` and :meth:`apply_params`.

    Args:
        p: probability that a sample is transformed (drawn per sample).
        same_on_batch: one draw for the whole batch.
        keepdim: keep the input's rank (default ``True``; kornia's default is ``False``).
        seed: ``None`` draws from torch's global RNG (DataLoader workers seed it apart); an int gives the
            transform its own reproducible stream (workers fold their id in).
    """

    #: Channel counts the transform accepts (``None``: any).
    channels: ClassVar[tuple[int, ...] | None] = None
    #: Smallest height and width the transform accepts.
    min_size: ClassVar[int] = 1
    _call_kwargs: ClassVar[frozenset[str]] = frozenset({"data_keys", "save_kwargs"})

    def __init__(self, *, p: float, same_on_batch: bool = False, keepdim: bool = True, seed: int | None = None):
        super().__init__(p=check_probability(p), same_on_batch=bool(same_on_batch), keepdim=bool(keepdim))
        self._init_randomness(seed)
        self._draw_device: torch.device | None = None
        self._draw_generator: torch.Generator | None = None
        self._draw_dtype = torch.float32

    @classmethod
    def _valid_kwargs(cls) -> list[str]:
        return [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "kwargs")]

    # -- what a subclass provides --------------------------------------------------------------------
    def sample_params(
        self, shape: torch.Size, *, generator: torch.Generator | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        """All the randomness for a batch of ``shape`` (``(B, C, H, W)``), one row per sample."""
        raise NotImplementedError

    def apply_params(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Deterministic work on a float batch in ``[0, 1]``."""
        raise NotImplementedError

    def select_params(self, params: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        """The parameters of sample ``index`` alone, as for a batch of one (for per-sample replay)."""
        gate = params["batch_prob"].bool() if "batch_prob" in params else None
        batch = int(gate.shape[0]) if gate is not None else None
        # kornia 0.8 draws parameters for the gated samples only: there, sample ``index`` is row ``position``
        # of those (and has no row when it was not gated). A replay helper, so the host syncs are fine.
        gated = int(gate.sum()) if gate is not None else None
        position = int(gate[:index].sum()) if gate is not None else index
        rows = slice(position, position + 1) if gate is None or bool(gate[index]) else slice(position, position)
        out = {}
        for key, value in params.items():
            if key == "forward_input_shape":
                out[key] = value
            elif value.ndim and (batch is None or value.shape[0] == batch):
                out[key] = value[index : index + 1]
            elif value.ndim and value.shape[0] == gated:
                out[key] = value[rows]
            else:
                out[key] = value
        return out

    # -- kornia hooks ----------------------------------------------------------------------------------
    def _current_device(self) -> torch.device:
        return self._draw_device if self._draw_device is not None else torch.device(self.device)

    def _current_generator(self, device: torch.device) -> torch.Generator | None:
        return self._draw_generator if self._draw_generator is not None else self.generator_for(device)

    def __batch_prob_generator__(
        self, batch_shape: tuple[int, ...], p: float, p_batch: float, same_on_batch: bool
    ) -> torch.Tensor:
        # kornia draws the gate from the global RNG on its RNG device; draw it from ours, on the input's.
        device = self._current_device()
        batch = batch_shape[0]
        if p >= 1.0 or batch == 0:
            return torch.ones(batch, device=device, dtype=torch.float32)
        if p <= 0.0:
            return torch.zeros(batch, device=device, dtype=torch.float32)
        gen = self._current_generator(device)
        draws = torch.rand((1 if same_on_batch else batch,), generator=gen, device=device)
        return (draws < p).to(torch.float32).expand(batch).contiguous()

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        device = self._current_device()
        return self.sample_params(torch.Size(batch_shape), generator=self._current_generator(device), device=device)

    def apply_transform(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.apply_params(input, params)

    # -- the public call -------------------------------------------------------------------------------
    def forward(  # type: ignore[override]
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor] | None = None,
        *,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Transform ``input`` ((C, H, W) or (B, C, H, W), uint8 or float); replay with ``params=``."""
        unknown = {k: v for k, v in kwargs.items() if k not in self._call_kwargs and k not in (params or {})}
        reject_unknown_kwargs(f"{type(self).__name__}.forward", unknown, ["params", "generator", *self._call_kwargs])
        check_image(input, name="input", channels=self.channels, min_size=self.min_size)
        x = to_float(input)
        self._draw_device, self._draw_dtype = input.device, x.dtype
        self._draw_generator = check_generator(generator, input.device)
        try:
            out = super().forward(x, params, **kwargs)
        finally:
            self._draw_device, self._draw_generator, self._draw_dtype = None, None, torch.float32
        return from_float(out, input) if input.dtype == torch.uint8 else out

    def __repr__(self) -> str:
        extra = self.extra_repr_args()
        args = ", ".join([*(f"{k}={v}" for k, v in extra.items()), f"p={self.p}", f"seed={self.seed}"])
        return f"{type(self).__name__}({args})"

    def extra_repr_args(self) -> dict[str, Any]:
        return {}
