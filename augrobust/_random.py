"""Random number generators: an optional ``torch.Generator`` on the image's device.

Transforms take ``seed=None`` (use torch's global RNG, which DataLoader workers already seed apart) or an
integer seed. A seeded transform owns one generator per device, created lazily on first use, so that it
pickles cleanly into DataLoader workers.

Inside a DataLoader worker the stream depends on (the seed, the worker's id, the loader's per-epoch base
seed, ``get_worker_info().seed``): workers draw apart, every epoch of ordinary (non-persistent) workers draws
anew, and the whole run is reproducible from the main process's ``torch.manual_seed`` (the loader draws its
base seed from it). The generators are keyed by that worker context, so a generator created in the main
process (the transform was used before the loader started) and copied into a forked worker is never reused
there.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from augrobust.errors import AugrobustTypeError, AugrobustValueError

__all__ = ["SeededRandomness", "check_generator", "check_seed", "worker_context", "worker_seed"]


def check_seed(seed: object) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise AugrobustTypeError(f"seed must be an int or None, got {seed!r} ({type(seed).__name__}).")
    if seed < 0:
        raise AugrobustValueError(f"seed must be >= 0, got {seed}.")
    return seed


def worker_context() -> tuple[int, int] | None:
    """``(worker id, the worker's seed)`` inside a DataLoader worker, ``None`` in the main process.

    The worker's seed is the loader's base seed (drawn from the main process's RNG, anew every epoch for
    non-persistent workers) plus the worker id.
    """
    info = torch.utils.data.get_worker_info()
    return None if info is None else (int(info.id), int(info.seed))


def worker_seed(seed: int, context: tuple[int, int] | None = None) -> int:
    """The seed of a transform's stream in ``context`` (default: the current one; ``seed`` itself outside workers).

    Example:
        >>> worker_seed(7)
        7
        >>> worker_seed(7, (0, 1234)) != worker_seed(7, (1, 1235)) != worker_seed(7, (0, 99))
        True
    """
    if context is None:
        context = worker_context()
    if context is None:
        return seed
    # A hash, not a sum: (seed, id, base seed) triples that add up alike must not share a stream.
    digest = hashlib.blake2b(f"{seed}:{context[0]}:{context[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class SeededRandomness:
    """Mixin that gives a module ``self.seed`` and a lazily created generator per device."""

    seed: int | None

    def _init_randomness(self, seed: int | None) -> None:
        self.seed = check_seed(seed)
        self._generators: dict[tuple[str, tuple[int, int] | None], torch.Generator] = {}

    def generator_for(self, device: torch.device | str) -> torch.Generator | None:
        """The generator to draw with on ``device``: ``None`` means torch's global RNG.

        Keyed by device and worker context: a new worker (a new epoch of non-persistent workers, or a forked
        copy of a transform already used in the main process) starts its own stream.
        """
        if self.seed is None:
            return None
        context = worker_context()
        key = (str(torch.device(device)), context)
        gen = self._generators.get(key)
        if gen is None:
            # Drop the streams of other contexts (a forked parent's): they are never drawn from here again.
            self._generators = {k: g for k, g in self._generators.items() if k[1] == context}
            gen = torch.Generator(device=device)
            gen.manual_seed(worker_seed(self.seed, context))
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
