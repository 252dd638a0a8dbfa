"""Host code over the images of a batch, on torch's CPU threads.

A few kernels call a C library per image on the CPU because it defines the reference's result (Pillow's
JPEG codec, OpenCV's Canny chain, SciPy's Gaussian filter). Those libraries release the GIL while they
work, so the images can be spread over threads: :func:`host_map` uses as many as torch's intra-op
setting (``torch.get_num_threads()``), so ``--threads``, ``OMP_NUM_THREADS`` and DataLoader workers (one
thread each) bound it the same way they bound torch's own kernels. With one thread it is a plain loop.

The pool is per process: a pool inherited through ``fork`` (DataLoader workers) has no live threads, so a
child process builds its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["host_map"]

_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    key = (os.getpid(), workers)
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="augrobust-host")
    return pool


def host_map(fn: Callable[[int], None], count: int) -> None:
    """Call ``fn(0) .. fn(count - 1)``, spread over ``torch.get_num_threads()`` threads.

    ``fn`` must write its result itself (into a preallocated tensor slice) and touch nothing another
    index touches. The first exception raised by any call is raised here, after all calls have finished.

    Example:
        >>> import torch
        >>> out = torch.zeros(4)
        >>> def square(i: int) -> None:
        ...     out[i] = i * i
        >>> host_map(square, 4)
        >>> out.tolist()
        [0.0, 1.0, 4.0, 9.0]
    """
    workers = min(torch.get_num_threads(), count)
    if workers <= 1:
        for i in range(count):
            fn(i)
        return
    futures = [_pool(workers).submit(fn, i) for i in range(count)]
    errors = [f.exception() for f in futures]  # waits for every call: no write lands after we return
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
