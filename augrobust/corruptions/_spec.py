"""The corruption registry: one :class:`CorruptionSpec` per ImageNet-C corruption.

Each corruption lives in its own module (``augrobust/corruptions/<name>.py``) with its severity tables,
its sampler and its kernel side by side, and registers itself with :func:`register` on import.

The two functions of a spec:

``sample_params(shape, severity, *, preset, reference, generator, device) -> dict[str, Tensor]``
    All the randomness of the corruption for a batch of ``shape = (B, C, H, W)``. ``severity`` is a
    ``(B,)`` long tensor in 1..5 on ``device``. Every returned tensor has a leading batch dimension ``B``
    and a shape that does not depend on the severity values (so a batch may mix severities). No host
    syncs. ``None`` for deterministic corruptions.

``apply(x, severity, params, *, preset, reference) -> Tensor``
    Deterministic given ``params``: ``x`` is a float ``(B, C, H, W)`` batch in ``[0, 1]`` (``C == 3``,
    or any ``C`` when ``per_channel``), the result has the same shape and dtype, in ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from augrobust._checks import PRESET_CHOICES, REFERENCE_CHOICES
from augrobust._corruption_names import CORRUPTION_ORDER, SUBSETS  # torch-free, for the command line's help
from augrobust.errors import AugrobustTypeError, AugrobustValueError

__all__ = [
    "CORRUPTION_ORDER",
    "PRESETS",
    "REFERENCES",
    "SUBSETS",
    "CorruptionSpec",
    "get_corruption_names",
    "get_spec",
    "register",
    "severity_table",
]

#: Severity-table presets and reference implementations (defined with their checks in ``augrobust._checks``).
PRESETS: tuple[str, ...] = PRESET_CHOICES
#: The reference implementations a ``reference=`` argument names: ``imagecorruptions`` and ``hendrycks``.
REFERENCES: tuple[str, ...] = REFERENCE_CHOICES

SampleFn = Callable[..., dict[str, torch.Tensor]]
ApplyFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class CorruptionSpec:
    """What the framework needs to know about one corruption.

    Attributes:
        name: the imagecorruptions name, e.g. ``"glass_blur"``.
        apply: the deterministic kernel (see the module docstring).
        sample_params: the sampler, or ``None`` for a deterministic corruption.
        per_channel: ``True`` if the kernel treats channels independently and accepts any ``C``; a
            grayscale image is then corrupted as one channel. ``False`` (colour corruptions): grayscale
            is replicated to RGB, corrupted, and converted back with ITU-R 601 luma.
        min_size: smallest height and width the kernel supports.
        options: extra keyword arguments the sampler and kernel accept (e.g. frost's ``frost_dir``); the
            framework passes each one only to the corruptions that declare it.
        differentiable: ``True`` if ``apply`` is differentiable w.r.t. ``x`` with the params held fixed
            (``torch.autograd.gradcheck`` passes in float64). ``False`` where the reference's maths is
            piecewise constant in ``x`` (Poisson sampling, uint8 quantisation, a codec): the kernel still
            runs on an input that requires grad and returns a tensor without a graph
            (``requires_grad=False``), so a backward pass fails loudly instead of giving zero gradients.
    """

    name: str
    apply: ApplyFn
    sample_params: SampleFn | None = None
    per_channel: bool = False
    min_size: int = 8
    options: tuple[str, ...] = ()
    differentiable: bool = True

    def options_for(self, options: dict[str, object] | None) -> dict[str, object]:
        """The subset of ``options`` this corruption declares (``None`` values dropped)."""
        if not options:
            return {}
        return {k: v for k, v in options.items() if k in self.options and v is not None}

    def sample(
        self,
        shape: Sequence[int],
        severity: torch.Tensor,
        *,
        preset: str,
        reference: str,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        options: dict[str, object] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw this corruption's random fields for a batch of ``shape = (B, C, H, W)``, any supported ``C``.

        The one sampling path: it owns the working shape (the kernel sees one channel for a grayscale image
        when ``per_channel``, three otherwise) and passes only the ``options`` this corruption declares.

        Args:
            shape: the images' batch shape ``(B, C, H, W)``.
            severity: ``(B,)`` long tensor in 1..5 on ``device``.
            preset, reference: as :func:`augrobust.corrupt`.
            generator: optional ``torch.Generator`` on ``device``.
            device: where to draw (default: CPU).
            options: extra options (e.g. ``{"frost_dir": ...}``); the undeclared ones are dropped.

        Returns:
            The fields, each with a leading batch dimension ``B`` (``{}`` for a deterministic corruption).

        Example:
            >>> import torch
            >>> spec = get_spec("gaussian_noise")
            >>> spec.sample((2, 1, 8, 8), torch.tensor([1, 5]), preset="imagenet", reference="imagecorruptions")[
            ...     "noise"].shape
            torch.Size([2, 1, 8, 8])
        """
        if self.sample_params is None:
            return {}
        b, c, h, w = (int(s) for s in shape)
        work = (b, 1 if c == 1 and self.per_channel else 3, h, w)
        device = torch.device("cpu") if device is None else torch.device(device)
        return self.sample_params(
            work, severity, preset=preset, reference=reference, generator=generator, device=device,
            **self.options_for(options),
        )  # fmt: skip


_REGISTRY: dict[str, CorruptionSpec] = {}


def register(spec: CorruptionSpec) -> CorruptionSpec:
    """Add a corruption to the registry (called by each corruption module on import)."""
    if spec.name not in CORRUPTION_ORDER:
        raise AugrobustValueError(f"{spec.name!r} is not an ImageNet-C corruption name: {list(CORRUPTION_ORDER)}")
    _REGISTRY[spec.name] = spec
    return spec


def registered_names() -> tuple[str, ...]:
    """Names of the corruptions implemented so far, in imagecorruptions order."""
    return tuple(n for n in CORRUPTION_ORDER if n in _REGISTRY)


def get_spec(name: object) -> CorruptionSpec:
    """Look a corruption up by name, with an error that lists the valid names."""
    if not isinstance(name, str):
        raise AugrobustTypeError(f"corruption name must be a str, got {type(name).__name__} ({name!r}).")
    spec = _REGISTRY.get(name)
    if spec is None:
        known = ", ".join(registered_names())
        if name in CORRUPTION_ORDER:
            raise AugrobustValueError(f"corruption {name!r} is not implemented yet; available: {known}.")
        raise AugrobustValueError(f"unknown corruption {name!r}; valid names: {known}.")
    return spec


def get_corruption_names(subset: str = "common") -> list[str]:
    """Corruption names of a subset, as in ``imagecorruptions.get_corruption_names``.

    Args:
        subset: ``"common"`` (the 15 benchmark corruptions), ``"validation"`` (the 4 hold-out ones),
            ``"all"``, or a family of the benchmark set: ``"noise"``, ``"blur"``, ``"weather"``,
            ``"digital"``.

    Example:
        >>> import augrobust
        >>> augrobust.get_corruption_names("noise")
        ['gaussian_noise', 'shot_noise', 'impulse_noise']
    """
    if subset not in SUBSETS:
        raise AugrobustValueError(f"unknown subset {subset!r}; valid subsets: {list(SUBSETS)}.")
    return list(SUBSETS[subset])



def severity_table(
    tables: dict[str, Sequence[Any]], preset: str, severity: torch.Tensor, *, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Gather one row of a severity table per sample.

    ``tables[preset]`` is a sequence of 5 scalars or 5 equal-length tuples; the result has shape ``(B,)``
    or ``(B, K)`` on ``severity``'s device. Presets missing from ``tables`` fall back to ``"imagenet"``.
    """
    rows = tables.get(preset, tables["imagenet"])
    table = torch.as_tensor(rows, dtype=dtype, device=severity.device)
    return table[severity.long() - 1]
