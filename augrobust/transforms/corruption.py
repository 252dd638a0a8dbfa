"""Corruption and RandomCorruption: the ImageNet-C corruptions as transforms."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from augrobust._checks import check_preset, check_reference, reject_unknown_kwargs
from augrobust.corruptions import apply_corruption, get_spec, registered_names
from augrobust.corruptions._spec import SUBSETS
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.transforms.base import GATE_KEY, RobustAugmentation

__all__ = ["Corruption", "RandomCorruption", "SeverityRange"]

SeverityRange = int | tuple[int, int] | Sequence[int]


def _parse_severity(severity: object) -> tuple[int, ...]:
    """An int, a ``(low, high)`` tuple (inclusive) or a list of severities -> the allowed values."""
    if isinstance(severity, bool):
        raise AugrobustTypeError(f"severity must be an int, a (low, high) tuple or a list, got {severity!r}.")
    if isinstance(severity, int):
        values: tuple[int, ...] = (severity,)
    elif isinstance(severity, tuple) and len(severity) == 2 and all(isinstance(v, int) for v in severity):
        lo, hi = severity
        if lo > hi:
            raise AugrobustValueError(f"severity range must satisfy low <= high, got {severity!r}.")
        values = tuple(range(lo, hi + 1))
    elif isinstance(severity, (list, tuple)) and severity and all(
        isinstance(v, int) and not isinstance(v, bool) for v in severity
    ):
        values = tuple(severity)
    else:
        raise AugrobustTypeError(
            f"severity must be an int in 1..5, a (low, high) tuple or a list of ints, got {severity!r}."
        )
    bad = [v for v in values if not 1 <= v <= 5]
    if bad:
        raise AugrobustValueError(f"severity must be in 1..5, got {severity!r}.")
    return values


def _draw_severity(
    values: tuple[int, ...], batch: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    if len(values) == 1:
        return torch.full((batch,), values[0], dtype=torch.long, device=device)
    table = torch.tensor(values, dtype=torch.long, device=device)
    return table[torch.randint(len(values), (batch,), generator=generator, device=device)]


class Corruption(RobustAugmentation):
    """One ImageNet-C corruption as a transform, with a fixed or random severity per sample.

    Args:
        name: an imagecorruptions name (see :func:`augrobust.get_corruption_names`).
        severity: an int in 1..5, a ``(low, high)`` tuple drawn uniformly per sample, or a list.
        preset: severity table: ``"imagenet"`` (default), ``"tinyimagenet"``, ``"cifar"``, ``"inception"``.
        reference: ``"imagecorruptions"`` (default) or ``"hendrycks"``.
        frost_dir: folder with the frost textures (frost only; default: ``AUGROBUST_FROST_DIR``, then an
            installed ``imagecorruptions``).
        p: probability that a sample is corrupted.
        same_on_batch: one draw for the whole batch.
        keepdim: keep the input's rank (default ``True``).
        seed: ``None`` (torch's global RNG) or an int for a private reproducible stream.

    Convention:
        Input ``(C, H, W)`` or ``(B, C, H, W)`` with 1, 3 or 4 channels (see :func:`augrobust.corrupt`),
        float in ``[0, 1]`` or ``uint8`` (floored back like imagecorruptions). Parameters (severity and the
        corruption's random fields) are drawn per sample on the input's device and replayable.

    Example:
        >>> import torch, augrobust
        >>> aug = augrobust.Corruption("gaussian_noise", severity=(1, 5), seed=0)
        >>> aug(torch.rand(4, 3, 32, 32)).shape
        torch.Size([4, 3, 32, 32])
    """

    channels = (1, 3, 4)

    def __init__(
        self,
        name: str,
        severity: SeverityRange = 3,
        *,
        preset: str = "imagenet",
        reference: str = "imagecorruptions",
        frost_dir: str | os.PathLike[str] | None = None,
        p: float = 1.0,
        same_on_batch: bool = False,
        keepdim: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        reject_unknown_kwargs(type(self).__name__, kwargs, self._valid_kwargs())
        self.spec = get_spec(name)
        self.options: dict[str, object] = {"frost_dir": None if frost_dir is None else str(frost_dir)}
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim, seed=seed)
        self.name = name
        self.severities = _parse_severity(severity)
        self.preset, self.reference = check_preset(preset), check_reference(reference)
        self.min_size = self.spec.min_size  # type: ignore[misc]
        # Differentiable w.r.t. the input with the draw fixed: the corruption's spec says (CorruptionSpec.differentiable).
        self.differentiable = self.spec.differentiable  # type: ignore[misc]

    def sample_params(
        self, shape: torch.Size, *, generator: torch.Generator | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        batch = 1 if self.same_on_batch else shape[0]
        sev = _draw_severity(self.severities, batch, generator, device)
        params: dict[str, torch.Tensor] = {"severity": sev}
        params.update(
            self.spec.sample(
                (batch, *shape[1:]), sev, preset=self.preset, reference=self.reference, generator=generator,
                device=device, options=self.options,
            )  # fmt: skip
        )
        if self.same_on_batch:
            params = {k: v.expand(shape[0], *v.shape[1:]) for k, v in params.items()}
        return params

    def apply_params(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        if "severity" not in params:
            raise AugrobustValueError(f"params must contain 'severity'; got keys {sorted(params)}.")
        sev = params["severity"].to(x.device)
        fields = {k: v for k, v in params.items() if k not in ("severity", GATE_KEY, "forward_input_shape")}
        return apply_corruption(
            self.spec, x, sev, fields, preset=self.preset, reference=self.reference, options=self.options
        )

    def extra_repr_args(self) -> dict[str, Any]:
        sev = self.severities[0] if len(self.severities) == 1 else list(self.severities)
        return {"name": repr(self.name), "severity": sev, "preset": repr(self.preset)}


class RandomCorruption(RobustAugmentation):
    """A random ImageNet-C corruption and severity per sample.

    Args:
        names: corruption names, or a subset name (``"common"``, ``"all"``, ``"noise"``, ...). Default: the
            15 benchmark corruptions (``"common"``) that are available.
        severity: an int, a ``(low, high)`` tuple (default ``(1, 5)``) or a list, drawn per sample.
        preset, reference, frost_dir, p, same_on_batch, keepdim, seed: as :class:`Corruption`.

    Convention:
        As :class:`Corruption`. Samples are grouped by corruption (a host sync to size the groups when
        drawing and when applying); each group is corrupted in one batched call. The parameters are
        ``"corruption"`` and ``"severity"`` (``(B,)``) and, for each corruption drawn, its random fields
        ``"<name>/<field>"`` with one row per sample of that corruption, in sample order. The grouping is
        derived from ``"corruption"`` alone, so repeating every row (kornia's ``VideoSequential`` with
        ``same_on_frame=True`` repeats each video's parameters per frame) keeps rows and samples matched.
        With ``same_on_batch=True`` every sample gets the identical draw: corruption, severity, fields, coin.

    Example:
        >>> import torch, augrobust
        >>> aug = augrobust.RandomCorruption(["gaussian_noise", "gaussian_blur"], seed=0)
        >>> aug(torch.rand(6, 3, 32, 32)).shape
        torch.Size([6, 3, 32, 32])
    """

    channels = (1, 3, 4)

    def __init__(
        self,
        names: str | Sequence[str] = "common",
        severity: SeverityRange = (1, 5),
        *,
        preset: str = "imagenet",
        reference: str = "imagecorruptions",
        frost_dir: str | os.PathLike[str] | None = None,
        p: float = 1.0,
        same_on_batch: bool = False,
        keepdim: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        reject_unknown_kwargs(type(self).__name__, kwargs, self._valid_kwargs())
        self.options: dict[str, object] = {"frost_dir": None if frost_dir is None else str(frost_dir)}
        if isinstance(names, str):
            if names in SUBSETS:
                names = [n for n in SUBSETS[names] if n in registered_names()]
            else:
                names = [names]
        names = list(names)
        if not names:
            raise AugrobustValueError("names must list at least one available corruption.")
        self.specs = [get_spec(n) for n in names]
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim, seed=seed)
        self.names = names
        self.severities = _parse_severity(severity)
        self.preset, self.reference = check_preset(preset), check_reference(reference)
        self.min_size = max(s.min_size for s in self.specs)  # type: ignore[misc]
        self.differentiable = all(s.differentiable for s in self.specs)  # type: ignore[misc]

    def sample_params(
        self, shape: torch.Size, *, generator: torch.Generator | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        batch = shape[0]
        draw = 1 if self.same_on_batch else batch
        choice = torch.randint(len(self.names), (draw,), generator=generator, device=device)
        sev = _draw_severity(self.severities, draw, generator, device)
        params: dict[str, torch.Tensor] = {"corruption": choice, "severity": sev}
        for spec, index in zip(self.specs, self._groups(choice)):
            if index.numel():
                fields = spec.sample(
                    (index.numel(), *shape[1:]), sev[index], preset=self.preset, reference=self.reference,
                    generator=generator, device=device, options=self.options,
                )  # fmt: skip
                params.update({f"{spec.name}/{key}": value for key, value in fields.items()})
        if self.same_on_batch:  # one sample's draw, every row the same
            params = {k: v.expand(batch, *v.shape[1:]) for k, v in params.items()}
        return params

    def _groups(self, choice: torch.Tensor) -> list[torch.Tensor]:
        """The sample indices of each corruption, in sample order (the one host sync: the group sizes)."""
        counts = torch.bincount(choice, minlength=len(self.specs)).tolist() if choice.numel() else [0] * len(self.specs)
        if len(counts) != len(self.specs):
            raise AugrobustValueError(
                f"params['corruption'] holds indices up to {len(counts) - 1} but this RandomCorruption has "
                f"{len(self.specs)} corruptions {self.names}; replay params drawn by this transform."
            )
        return list(torch.argsort(choice, stable=True).split(counts))

    def check_params(self, params: dict[str, torch.Tensor], batch: int) -> None:
        for key in ("corruption", "severity"):
            if key not in params:
                raise AugrobustValueError(f"params must contain {key!r}; got keys {sorted(params)}.")
        super().check_params({k: params[k] for k in ("corruption", "severity")}, batch)

    def _rows(self, params: dict[str, torch.Tensor]) -> int | None:
        return int(params["corruption"].shape[0]) if "corruption" in params else None

    def narrow_params(self, params: dict[str, torch.Tensor], keep: torch.Tensor) -> dict[str, torch.Tensor]:
        keep = keep.to(device=params["corruption"].device, dtype=torch.bool)
        choice = params["corruption"]
        out = {"corruption": choice[keep], "severity": params["severity"][keep]}
        for k, spec in enumerate(self.specs):
            prefix = f"{spec.name}/"
            in_group = keep[choice == k]  # which rows of this corruption's group are kept
            out.update({key: v[in_group.to(v.device)] for key, v in params.items() if key.startswith(prefix)})
        return out

    def select_params(self, params: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        out = {k: params[k][index : index + 1] for k in ("corruption", "severity", GATE_KEY) if k in params}
        for key in ("forward_input_shape", "video_batch_size"):
            if key in params:
                out[key] = params[key]
        k = int(params["corruption"][index])
        row = int((params["corruption"][:index] == k).sum())  # rank of the sample in its corruption's group
        prefix = f"{self.names[k]}/"
        for key, value in params.items():
            if key.startswith(prefix):
                out[key] = value[row : row + 1]
        return out

    def apply_params(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        self.check_params(params, x.shape[0])
        out = x.clone()
        sev = params["severity"].to(x.device)
        choice = params["corruption"].to(x.device)
        for spec, index in zip(self.specs, self._groups(choice)):
            if not index.numel():
                continue
            prefix = f"{spec.name}/"
            fields = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
            for key, value in fields.items():
                if value.ndim and value.shape[0] != index.numel():
                    raise AugrobustValueError(
                        f"RandomCorruption: params[{prefix + key!r}] has {value.shape[0]} rows but {index.numel()} "
                        f"samples of the batch drew {spec.name}; replay params drawn for this very batch."
                    )
            group = apply_corruption(
                spec, x.index_select(0, index), sev.index_select(0, index), fields,
                preset=self.preset, reference=self.reference, options=self.options,
            )  # fmt: skip
            out = out.index_copy(0, index, group)
        return out

    def extra_repr_args(self) -> dict[str, Any]:
        return {"names": self.names, "severity": list(self.severities), "preset": repr(self.preset)}
