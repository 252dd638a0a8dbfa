"""The kornia-side contract shared by every augrobust transform.

A transform is an ``IntensityAugmentationBase2D`` whose randomness lives entirely in
:meth:`RobustAugmentation.sample_params` and whose work is the deterministic
:meth:`RobustAugmentation.apply_params`. On top of kornia's machinery (``AugmentationSequential``,
replay with ``params=``, masks and boxes passed through) the base adds:

* ``uint8`` input (converted to float32 in ``[0, 1]`` and floored back, the imagecorruptions rule);
* the input's rank is kept by default (``keepdim=True``): ``(C, H, W)`` in, ``(C, H, W)`` out;
* ``seed=`` (a private ``torch.Generator`` per device, worker-aware) or ``generator=`` per call; all draws,
  including the per-sample gate ``p``, happen on the input's device;
* clear errors for unknown keyword arguments, bad ranks, dtypes and mismatched replay parameters;
* one public draw-and-gate route, :meth:`RobustAugmentation.draw` and :meth:`RobustAugmentation.apply_drawn`,
  that the torchvision-v2 forms reuse. The per-sample gate has one encoding everywhere: ``params["batch_prob"]``,
  a ``(B,)`` float tensor, a sample is transformed where it is ``> 0.5`` (kornia's key and meaning).

Draws never depend on the input's dtype: noise fields are drawn in float32 and cast by the kernel, so a
float64 batch gets the same noise whether the transform is called directly or inside a kornia container
(which draws before it sees the input).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from kornia.augmentation import IntensityAugmentationBase2D

from augrobust._checks import check_probability, reject_unknown_kwargs
from augrobust._random import SeededRandomness, check_generator
from augrobust._tensor import GATE_KEY, check_image, from_float, to_float
from augrobust.errors import AugrobustValueError

__all__ = ["GATE_KEY", "RobustAugmentation"]

# Params entries that describe the call, not a sample (kornia adds them; containers add the video batch size).
_METADATA = frozenset({GATE_KEY, "forward_input_shape", "video_batch_size"})


class RobustAugmentation(IntensityAugmentationBase2D, SeededRandomness):
    """Base class: subclasses implement :meth:`sample_params` and :meth:`apply_params`.

    Args:
        p: probability that a sample is transformed (drawn per sample; one coin with ``same_on_batch``).
        same_on_batch: one draw for the whole batch, the coin included.
        keepdim: keep the input's rank (default ``True``; kornia's default is ``False``).
        seed: ``None`` draws from torch's global RNG (DataLoader workers seed it apart); an int gives the
            transform its own reproducible stream (in DataLoader workers it also depends on the worker and
            the epoch, see :mod:`augrobust._random`).
    """

    #: Channel counts the transform accepts (``None``: any).
    channels: ClassVar[tuple[int, ...] | None] = None
    #: Smallest height and width the transform accepts.
    min_size: ClassVar[int] = 1
    #: Whether the output is differentiable w.r.t. the input with the draw held fixed (gradcheck passes).
    differentiable: ClassVar[bool] = True
    _call_kwargs: ClassVar[frozenset[str]] = frozenset({"data_keys", "save_kwargs"})

    def __init__(self, *, p: float, same_on_batch: bool = False, keepdim: bool = True, seed: int | None = None):
        super().__init__(p=check_probability(p), same_on_batch=bool(same_on_batch), keepdim=bool(keepdim))
        self._init_randomness(seed)
        self._draw_device: torch.device | None = None
        self._draw_generator: torch.Generator | None = None

    @classmethod
    def _valid_kwargs(cls) -> list[str]:
        return [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "kwargs")]

    # -- what a subclass provides --------------------------------------------------------------------
    def sample_params(
        self, shape: torch.Size, *, generator: torch.Generator | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        """All the randomness for a batch of ``shape`` (``(B, C, H, W)``), one row per sample.

        Noise fields are drawn in float32 whatever the input's dtype (the kernel casts them).
        """
        raise NotImplementedError

    def apply_params(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Deterministic work on a float batch in ``[0, 1]`` (``params`` without the gate)."""
        raise NotImplementedError

    def check_params(self, params: dict[str, torch.Tensor], batch: int) -> None:
        """Raise a clear error when replayed ``params`` were drawn for another batch size than ``batch``.

        By default every per-sample tensor (leading dimension = batch) must have ``batch`` rows.
        """
        for key, value in params.items():
            if key in _METADATA or not isinstance(value, torch.Tensor) or value.ndim == 0:
                continue
            if value.shape[0] != batch:
                raise AugrobustValueError(_mismatch(type(self).__name__, key, value.shape[0], batch))

    def _rows(self, params: dict[str, torch.Tensor]) -> int | None:
        """The batch size the per-sample params were drawn for (``None`` if there is no per-sample tensor)."""
        for value in params.values():
            if isinstance(value, torch.Tensor) and value.ndim:
                return int(value.shape[0])
        return None

    def narrow_params(self, params: dict[str, torch.Tensor], keep: torch.Tensor) -> dict[str, torch.Tensor]:
        """The params of the samples where the ``(B,)`` bool ``keep`` is set (per-sample rows selected)."""
        batch = keep.shape[0]
        keep = keep.to(torch.bool)
        return {
            k: v[keep.to(v.device)] if isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == batch else v
            for k, v in params.items()
        }

    def select_params(self, params: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        """The parameters of sample ``index`` alone, as for a batch of one (for per-sample replay)."""
        gate = params[GATE_KEY] > 0.5 if GATE_KEY in params else None
        batch = int(gate.shape[0]) if gate is not None else None
        # kornia 0.8 draws parameters for the gated samples only: there, sample ``index`` is row ``position``
        # of those (and has no row when it was not gated). A replay helper, so the host syncs are fine.
        gated = int(gate.sum()) if gate is not None else None
        position = int(gate[:index].sum()) if gate is not None else index
        rows = slice(position, position + 1) if gate is None or bool(gate[index]) else slice(position, position)
        out = {}
        for key, value in params.items():
            if key in ("forward_input_shape", "video_batch_size"):
                out[key] = value
            elif value.ndim and (batch is None or value.shape[0] == batch):
                out[key] = value[index : index + 1]
            elif value.ndim and value.shape[0] == gated:
                out[key] = value[rows]
            else:
                out[key] = value
        return out

    # -- the public draw-and-gate route ------------------------------------------------------------------
    def draw_gate(self, batch: int, *, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """The per-sample gate ``batch_prob``: ``(B,)`` float32 of 0/1 (no draw when ``p`` is 0 or 1)."""
        if self.p >= 1.0 or batch == 0:
            return torch.ones(batch, device=device, dtype=torch.float32)
        if self.p <= 0.0:
            return torch.zeros(batch, device=device, dtype=torch.float32)
        draws = torch.rand((1 if self.same_on_batch else batch,), generator=generator, device=device)
        return (draws < self.p).to(torch.float32).expand(batch).contiguous()

    def draw(
        self,
        batch: torch.Tensor | Sequence[int],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw everything random for a batch, the per-sample gate ``"batch_prob"`` included.

        The same route as a kornia call (the gate first, then :meth:`sample_params`, from the same stream),
        so a seeded transform draws the same whether it runs as the kornia or the torchvision-v2 form.

        Args:
            batch: the float or ``uint8`` batch ``(B, C, H, W)`` (checked), or its shape.
            generator: optional ``torch.Generator`` on the batch's device (default: the transform's stream).
            device: where to draw when ``batch`` is a shape (default: CPU).

        Returns:
            The parameters; pass them to :meth:`apply_drawn` (or as ``params=`` to a call) to apply them.

        Example:
            >>> import torch, augrobust
            >>> aug = augrobust.GaussianNoise(sigma=0.1, p=0.5, seed=0)
            >>> x = torch.rand(4, 3, 8, 8)
            >>> params = aug.draw(x)
            >>> params["batch_prob"].shape, torch.equal(aug.apply_drawn(x, params), aug(x, params=params))
            (torch.Size([4]), True)
        """
        if isinstance(batch, torch.Tensor):
            check_image(batch, name=f"{type(self).__name__} input", channels=self.channels, min_size=self.min_size)
            if batch.ndim != 4:
                raise AugrobustValueError(f"draw expects a (B, C, H, W) batch, got shape {tuple(batch.shape)}.")
            shape, where = batch.shape, batch.device
        else:
            shape = torch.Size(int(s) for s in batch)
            if len(shape) != 4:
                raise AugrobustValueError(f"draw expects a (B, C, H, W) shape, got {tuple(shape)}.")
            where = torch.device("cpu") if device is None else torch.device(device)
        gen = check_generator(generator, where)
        gen = gen if gen is not None else self.generator_for(where)
        gate = self.draw_gate(shape[0], generator=gen, device=where)
        params = self.sample_params(shape, generator=gen, device=where)
        params[GATE_KEY] = gate
        return params

    def apply_drawn(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply :meth:`draw`'s parameters to a float batch ``x`` in ``[0, 1]``, gate included (deterministic).

        Raises a clear error when the parameters were drawn for another batch size.
        """
        batch = x.shape[0]
        gate = params.get(GATE_KEY)
        if gate is not None and gate.ndim and gate.shape[0] != batch:
            raise AugrobustValueError(_mismatch(type(self).__name__, GATE_KEY, gate.shape[0], batch))
        work = {k: v for k, v in params.items() if k not in _METADATA}
        self.check_params(work, batch)
        out = self.apply_params(x, work)
        if gate is not None and self.p < 1.0:
            out = torch.where((gate.to(x.device) > 0.5).view(-1, *([1] * (x.ndim - 1))), out, x)
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
        return self.draw_gate(batch_shape[0], generator=self._current_generator(device), device=device)

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        """kornia's parameter hook: :meth:`sample_params` for ``batch_shape`` on the current input's device."""
        device = self._current_device()
        return self.sample_params(torch.Size(batch_shape), generator=self._current_generator(device), device=device)

    def apply_transform(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # kornia blends by the gate itself. kornia 0.8 passes only the gated rows here: full-batch params
        # (from draw(), or replayed from kornia >= 0.9) are narrowed to those rows.
        work = {k: v for k, v in params.items() if k not in _METADATA}
        gate = params.get(GATE_KEY)
        if isinstance(gate, torch.Tensor) and gate.ndim and gate.shape[0] != input.shape[0]:
            keep = gate > 0.5
            if int(keep.sum()) == input.shape[0] and self._rows(work) == gate.shape[0]:
                work = self.narrow_params(work, keep)
        self.check_params(work, input.shape[0])
        return self.apply_params(input, work)

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
        if params is not None:
            gate = params.get(GATE_KEY)
            batch = input.shape[0] if input.ndim == 4 else 1
            if isinstance(gate, torch.Tensor) and gate.ndim and gate.shape[0] != batch:
                raise AugrobustValueError(_mismatch(type(self).__name__, GATE_KEY, gate.shape[0], batch))
        x = to_float(input)
        self._draw_device = input.device
        self._draw_generator = check_generator(generator, input.device)
        try:
            out = super().forward(x, params, **kwargs)
        finally:
            self._draw_device, self._draw_generator = None, None
        return from_float(out, input) if input.dtype == torch.uint8 else out

    def __repr__(self) -> str:
        extra = self.extra_repr_args()
        args = ", ".join([*(f"{k}={v}" for k, v in extra.items()), f"p={self.p}", f"seed={self.seed}"])
        return f"{type(self).__name__}({args})"

    def extra_repr_args(self) -> dict[str, Any]:
        """The arguments shown in the transform's ``repr`` (name -> value), besides kornia's ``p`` and flags."""
        return {}


def _mismatch(name: str, key: str, rows: int, batch: int) -> str:
    return (
        f"{name}: params[{key!r}] has {rows} rows but the input batch has {batch} images; replayed params must "
        f"come from a call on a batch of the same size (draw new ones, or select rows with select_params)."
    )
