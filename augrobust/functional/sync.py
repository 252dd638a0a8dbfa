"""When a kernel may read a value back to the host.

A host read (``.tolist()``, ``bool(tensor)``) is nearly free in eager mode on the CPU, where some kernels use
it to group a batch by severity and run each group's fixed-size work once. On an accelerator it stalls the
queue, and under ``torch.compile`` it breaks the graph; there the kernels take a sync-free path that gives the
same values (e.g. every severity's work on the whole batch, selected per sample with ``torch.where``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

__all__ = ["COMPILE_EXCEPTIONS", "constant_table", "host_reads_ok"]

F = TypeVar("F", bound=Callable[..., Any])


def host_reads_ok(device: torch.device | str) -> bool:
    """``True`` in eager mode on the CPU: a kernel may then read tensor values on the host.

    Example:
        >>> import torch
        >>> host_reads_ok(torch.device("cpu")), host_reads_ok("meta")
        (True, False)
    """
    return torch.device(device).type == "cpu" and not torch.compiler.is_compiling()


def constant_table(maxsize: int | None = 64) -> Callable[[F], F]:
    """Cache a table builder (``functools.lru_cache``) and let ``torch.compile`` take its result as a constant.

    Kernels build small constant tables (filter taps, severity tables) from hashable arguments, often with
    NumPy to match a reference bit for bit. Traced by ``torch.compile``, that host code would break the graph;
    marked so, the compiler calls the builder once with the real arguments and stores the result (tensors
    become graph constants). The arguments must be constants (str, int, float, tuples, devices, dtypes).

    Example:
        >>> import torch
        >>> @constant_table()
        ... def ramp(n: int) -> torch.Tensor:
        ...     return torch.arange(n, dtype=torch.float64)
        >>> torch.compile(lambda x: x + ramp(3), fullgraph=True, backend="eager")(torch.zeros(3)).tolist()
        [0.0, 1.0, 2.0]
    """

    def decorate(fn: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(fn)

        @functools.wraps(fn)
        def table(*args: Any, **kwargs: Any) -> Any:
            return cached(*args, **kwargs)

        # torch.compile names the stored constant after the code object: one name per builder.
        table.__code__ = table.__code__.replace(co_name=fn.__name__)
        table.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        table.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return torch._dynamo.assume_constant_result(table)  # type: ignore[return-value]

    return decorate


#: What ``torch.compile(fullgraph=True)`` cannot capture as one graph, with the reason. Keys are transform
#: registry labels (``augrobust.transforms.registry``) and ``"kernel:<corruption>"`` for a corruption's
#: ``apply``. tests/test_compile.py checks every other entry compiles and equals eager, and that every entry
#: here still fails (so the list can only shrink). docs/compile.md explains each one.
COMPILE_EXCEPTIONS: dict[str, str] = {
    "RandomCorruption": (
        "each sample takes one of 19 kernels; the params hold one row per sample of each kernel's group, so the "
        "group sizes are read on the host. A sync-free form runs all 19 kernels on the whole batch (19x the work)."
    ),
}
