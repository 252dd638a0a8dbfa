"""The registry of transforms: what the contract test suite, the demo and the benchmarks iterate over.

Every transform class is registered here with example arguments; adding a transform means adding an
entry, and the contract suite then tests it like every other one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from augrobust.corruptions import registered_names
from augrobust.functional.adversarial_noise import NoiseGenerator
from augrobust.functional.noise import eps_for_sigma
from augrobust.transforms.adversarial_noise import AdversarialNoise
from augrobust.transforms.base import RobustAugmentation
from augrobust.transforms.corruption import Corruption, RandomCorruption
from augrobust.transforms.dfmx import DFMX, example_dfms
from augrobust.transforms.fourier_noise import FourierNoise
from augrobust.transforms.gaussian_noise import GaussianNoise
from augrobust.transforms.speckle_noise import SpeckleNoise

__all__ = ["TransformEntry", "transform_registry"]


@dataclass(frozen=True)
class TransformEntry:
    """A transform class with the arguments that show it off (used by tests, demo and benchmarks)."""

    label: str
    cls: type[RobustAugmentation]
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: Arguments that depend on the image shape ``(C, H, W)`` (an L2 budget, per-resolution maps); ``kwargs``
    #: hold their values for the contract suite's 32x32 RGB images.
    at_shape: Callable[[tuple[int, int, int]], dict[str, Any]] | None = None

    def arguments(self, shape: Sequence[int] | None = None, **overrides: Any) -> dict[str, Any]:
        sized = self.at_shape(tuple(shape[-3:])) if shape is not None and self.at_shape is not None else {}
        return {**self.kwargs, **sized, **overrides}

    def build(self, shape: Sequence[int] | None = None, **overrides: Any) -> RobustAugmentation:
        """The kornia form; ``shape`` (the images' ``(..., C, H, W)``) adapts the shape-dependent arguments."""
        return self.cls(**self.arguments(shape, **overrides))

    def v2(self, shape: Sequence[int] | None = None, **overrides: Any) -> Any:
        from augrobust import v2

        return getattr(v2, self.cls.__name__)(**self.arguments(shape, **overrides))


def _snapshots(channels: int) -> list[NoiseGenerator]:
    """Three 1x1 generator snapshots (an ANT history) for ``channels``-channel images."""
    return [NoiseGenerator(channels, kernel_size=1, seed=s, init_std=0.2) for s in (1, 2, 3)]


def _gnt_budget(shape: tuple[int, int, int]) -> dict[str, Any]:
    return {"eps": round(eps_for_sigma(0.5, shape), 1)}  # the budget that matches GNT's sigma 0.5


_FIXED: list[Callable[[], TransformEntry]] = [
    lambda: TransformEntry("GaussianNoise", GaussianNoise, {"sigma": 0.5}),
    lambda: TransformEntry("GaussianNoise[mult]", GaussianNoise, {"sigma": [0.08, 0.12, 0.18, 0.26, 0.38]}),
    lambda: TransformEntry("GaussianNoise[eps]", GaussianNoise, {"eps": 10.0}, _gnt_budget),
    lambda: TransformEntry("SpeckleNoise", SpeckleNoise, {}),
    lambda: TransformEntry(
        "AdversarialNoise", AdversarialNoise, {"generators": NoiseGenerator(3, seed=0), "eps": 5.0},
        lambda shape: {**_gnt_budget(shape), "generators": NoiseGenerator(shape[0], seed=0)},
    ),
    lambda: TransformEntry(
        "AdversarialNoise[history]", AdversarialNoise, {"generators": _snapshots(3), "eps": (2.0, 8.0)},
        lambda shape: {"generators": _snapshots(shape[0])},
    ),
    lambda: TransformEntry("FourierNoise", FourierNoise, {"mean_strength": 10.0}),
    lambda: TransformEntry(
        "DFMX", DFMX, {"dfms": example_dfms(10, 32), "p": 0.5}, lambda shape: {"dfms": example_dfms(10, shape[-2:])}
    ),
    lambda: TransformEntry("RandomCorruption", RandomCorruption, {"names": "all", "severity": (1, 5)}),
]


def transform_registry() -> dict[str, TransformEntry]:
    """All registered transforms, including one ``Corruption`` entry per available corruption."""
    entries = [make() for make in _FIXED]
    entries += [
        TransformEntry(f"Corruption[{name}]", Corruption, {"name": name, "severity": (1, 5)})
        for name in registered_names()
    ]
    return {e.label: e for e in entries}
