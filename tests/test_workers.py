"""Worker-safe randomness: every registered transform, both forms, in real DataLoader workers.

A seeded transform's stream depends on (its seed, the worker id, the loader's per-epoch base seed): over two
epochs of two workers, the epochs differ and the workers differ, and two runs from the same
``torch.manual_seed`` are identical, whether or not the transform was used in the main process before the
loader started, with persistent workers or not, fork or spawn. ``seed=None`` uses torch's global RNG, which
the loader seeds per worker and epoch. Each worker returns 8 samples per epoch and every comparison is over
all 8 (DFMX draws 1 of 10 maps behind a coin: one sample alone coincides by chance).
"""

from __future__ import annotations

import multiprocessing

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from augrobust.transforms.registry import transform_registry

REGISTRY = transform_registry()
NAMES = [f"{label}|{form}" for label in sorted(REGISTRY) for form in ("kornia", "v2")]
PER_WORKER = 8


def _image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 32, 32, generator=g)


def _build(seed: int | None) -> dict[str, object]:
    out = {}
    for label, entry in REGISTRY.items():
        out[f"{label}|kornia"] = entry.build(seed=seed)
        out[f"{label}|v2"] = entry.v2(seed=seed)
    return out


class _EveryTransform(Dataset):
    """Item i: the same image through every transform (the randomness is all that differs)."""

    def __init__(self, transforms: dict[str, object]) -> None:
        self.transforms = transforms
        self.image = _image()

    def __len__(self) -> int:
        return 2 * PER_WORKER

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: t(self.image) for name, t in self.transforms.items()}


def _run(seed: int | None, *, warm: bool = False, persistent: bool = False, context: str = "fork") -> list:
    """Two epochs of two workers: ``result[epoch][worker][name]`` is a ``(PER_WORKER, 3, 32, 32)`` batch."""
    torch.manual_seed(1234)
    transforms = _build(seed)
    if warm:  # used once in the main process before the loader starts (its generators exist, then fork)
        for t in transforms.values():
            t(_image())
    loader = DataLoader(
        _EveryTransform(transforms), batch_size=PER_WORKER, num_workers=2, shuffle=False,
        persistent_workers=persistent, multiprocessing_context=multiprocessing.get_context(context),
    )  # fmt: skip
    return [list(loader) for _ in range(2)]  # batch k comes from worker k


_CACHE: dict[tuple, list] = {}


def run(seed: int | None, **kwargs) -> list:
    key = (seed, *sorted(kwargs.items()))
    if key not in _CACHE:
        _CACHE[key] = _run(seed, **kwargs)
    return _CACHE[key]


CASES = [
    pytest.param(11, {}, id="seed-fork"),
    pytest.param(11, {"warm": True}, id="seed-used-before-fork"),
    pytest.param(11, {"persistent": True}, id="seed-persistent"),
    pytest.param(None, {}, id="global-rng"),
]


@pytest.mark.slow
@pytest.mark.parametrize("seed, kwargs", CASES)
@pytest.mark.parametrize("name", NAMES)
def test_epochs_and_workers_draw_apart(name, seed, kwargs):
    epochs = run(seed, **kwargs)
    (w0, w1), (v0, v1) = epochs
    assert not torch.equal(w0[name], w1[name]), "the two workers drew the same noise"
    assert not torch.equal(w0[name], v0[name]), "worker 0 repeated its draws in the second epoch"
    assert not torch.equal(w1[name], v1[name]), "worker 1 repeated its draws in the second epoch"
    rows = w0[name].flatten(1)
    assert len({tuple(r.tolist()) for r in rows}) > 1, "one worker's samples all drew alike"


@pytest.mark.slow
@pytest.mark.parametrize("seed, kwargs", CASES)
def test_a_run_is_reproducible_from_the_main_process_seed(seed, kwargs):
    again = _run(seed, **kwargs)
    first = run(seed, **kwargs)
    for epoch_a, epoch_b in zip(first, again):
        for batch_a, batch_b in zip(epoch_a, epoch_b):
            different = [n for n in NAMES if not torch.equal(batch_a[n], batch_b[n])]
            assert not different, f"not reproducible: {different}"


@pytest.mark.slow
def test_spawned_workers_draw_what_forked_workers_draw():
    """The stream is a function of (seed, worker, epoch seed), not of how the worker process was made."""
    spawned = _run(11, context="spawn", persistent=True)
    forked = run(11, persistent=True)
    for epoch_a, epoch_b in zip(forked, spawned):
        for batch_a, batch_b in zip(epoch_a, epoch_b):
            different = [n for n in NAMES if not torch.equal(batch_a[n], batch_b[n])]
            assert not different, f"spawn and fork differ: {different}"
