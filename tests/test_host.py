"""Host code over a batch (augrobust.functional.host): every image once, on torch's threads, errors surface,
results do not depend on the thread count, and a forked DataLoader-style child still runs."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
import torch

import augrobust
from augrobust.functional.host import host_map


@pytest.fixture
def threads():
    """Set torch's intra-op threads for one test and restore them after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("count", [0, 1, 2, 7])
@pytest.mark.parametrize("workers", [1, 2])
def test_every_index_runs_exactly_once(threads, workers, count):
    threads(workers)
    calls: list[int] = []
    lock = threading.Lock()

    def record(i: int) -> None:
        with lock:
            calls.append(i)

    host_map(record, count)
    assert sorted(calls) == list(range(count))


def test_two_threads_run_concurrently(threads):
    threads(2)
    barrier = threading.Barrier(2, timeout=20)  # both calls must be in flight at once to pass it
    host_map(lambda i: barrier.wait(), 2)


def test_the_first_error_is_raised_after_every_call_finished(threads):
    threads(2)
    done: list[int] = []

    def fail_on_one(i: int) -> None:
        if i == 1:
            raise ValueError("image 1 is broken")
        done.append(i)

    with pytest.raises(ValueError, match="image 1 is broken"):
        host_map(fail_on_one, 6)
    assert sorted(done) == [0, 2, 3, 4, 5]


def _child_runs(queue) -> None:  # noqa: ANN001
    out = torch.zeros(4)
    host_map(lambda i: out.__setitem__(i, i + 1), 4)
    queue.put(out.tolist())


def test_a_forked_child_builds_its_own_pool(threads):
    threads(2)
    host_map(lambda i: None, 2)  # the parent's pool exists before the fork, as in a DataLoader
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_runs, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "the child hung or failed"
    assert queue.get(timeout=5) == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("name", ["jpeg_compression", "spatter"])
def test_host_corruptions_give_the_same_bytes_on_one_and_two_threads(threads, name):
    x = torch.rand(5, 3, 120, 100, generator=torch.Generator().manual_seed(0))
    severity = torch.tensor([1, 2, 3, 4, 5])
    results = []
    for workers in (1, 2):
        threads(workers)
        params = augrobust.sample_corruption_params(name, x.shape, severity, generator=torch.Generator().manual_seed(1))
        results.append(augrobust.corrupt(x, name, severity, params=params))
    assert torch.equal(results[0], results[1])
