"""Random number generators: an optional ``torch.Generator`` on the image's device.

Transforms take ``seed=None`` (use torch's global RNG, which DataLoader workers already seed apart) or an
integer seed. A seeded transform owns one generator per device, created lazily on first use, so that it
pickles cleanly into DataLoader workers; inside a worker the worker id is folded into the seed, so workers
draw different but reproducible streams.
"""

from __future__ import annotations

from typing import Any

import torch

from augrobust.errors import AugrobustTypeError, AugrobustValueError

# A large odd constant keeps worker streams far apart in seed space.
_WORKER_STRIDE = 0x9E3779B1


def check_seed(seed: object) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise AugrobustTypeError(f"seed must be an int or None, got {seed!r} ({type(seed).__name__}).")
    if seed < 0:
        raise AugrobustValueError(f"seed must be >= 0, got {seed}.")
    return seed


def worker_seed(seed: int) -> int:
    """Fold the DataLoader worker id (if any) into ``seed``."""
    info = torch.utils.data.get_worker_info()
    if info is None:
        return seed
    return (seed + _WORKER_STRIDE * (info.id + 1)) % (2**63 - 1)


class SeededRandomness:
    """Mixin that gives a module ``self.seed`` and a lazily created generator per device."""

    seed: int | None

    def _init_randomness(self, seed: int | None) -> None:
        self.seed = check_seed(seed)
        self._generators: dict[str, torch.Generator] = {}

    def generator_for(self, device: torch.device | str) -> torch.Generator | None:
        """The generator to draw with on ``device``: ``None`` means torch's global RNG."""
        if self.seed is None:
            return None
        key = str(torch.device(device))
        gen = self._generators.get(key)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(worker_seed(self.seed))
            self._generators[key] = gen
        return gen

    def reseed(self, seed: int | None) -> None:
        """Restart the random stream from ``seed`` (``None``: global RNG)."""
        self._init_randomness(seed)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        state["_generators"] = {}
        return state


def check_generator(generator: object, device: torch.device) -> torch.Generator | None:
    """Validate a user-supplied generator against the device it must draw on."""
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise AugrobustTypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}.")
    if torch.device(generator.device).type != torch.device(device).type:
        raise AugrobustValueError(
            f"generator is on {generator.device} but the image is on {device}; "
            f"create it with torch.Generator(device={str(device)!r})."
        )
    return generator
