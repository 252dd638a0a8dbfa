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

__all__ = ["COMPILE_EXCEPTIONS", "HOST_SYNC_EXCEPTIONS", "constant_table", "host_reads_ok"]

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
    become graph constants). The arguments must be constants (str, int, float, tuples, devices, dtypes). The
    result must not be modified in place (it is shared). In torch 2.14 a graph that calls one builder twice with
    different arguments can fail in dynamo's constant naming ("already in seen_sources"): where a kernel needs
    two tables from one builder, pack them in one tensor (see ``shot_noise``, ``elastic_transform``, ``spatter``).

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

#: Functions of the kernel modules that read tensor values on the host (``"module:function"`` -> reason),
#: checked by tests/test_no_host_sync.py; the list may only shrink.
HOST_SYNC_EXCEPTIONS: dict[str, str] = {
    "corruptions/_api:check_severity": (
        "argument validation of a user's severity tensor on the CPU (accelerators use torch._assert_async)"
    ),
    "corruptions/frost:_resize_texture": (
        "one-off texture rescale with OpenCV when the texture cache is built, not per batch"
    ),
    "corruptions/frost:_texture_stack": (
        "texture sizes checked and padded once per (size, preset) when the cache is built"
    ),
    "corruptions/gaussian_blur:gaussian_blur": (
        "eager CPU only (host_reads_ok): drops the tap pairs that are zero for the whole batch"
    ),
    "corruptions/glass_blur:glass_shuffle_index": (
        "early stop of pointer doubling, eager CPU only (host_reads_ok); fixed rounds otherwise"
    ),
    "corruptions/motion_blur:motion_blur_batch": (
        "the public per-(radius, sigma) helper; the registered kernel uses the preset table"
    ),
    "corruptions/motion_blur:_motion_blur_slices": (
        "eager CPU only (host_reads_ok): per-image slices instead of gathers; other devices and compile gather"
    ),
    "corruptions/pixelate:pixelate": (
        "eager CPU groups by severity (host_reads_ok); other devices and compile run all 5 sizes"
    ),
    "corruptions/shot_noise:_poisson_alias_rows": (
        "builds the constant alias tables once per preset (cached), NumPy/SciPy for exactness"
    ),
    "corruptions/shot_noise:_level_values": (
        "builds a constant gather table once per (preset, device, dtype), cached"
    ),
    "corruptions/shot_noise:poisson_from_uniform": (
        "a public helper sizing its table from the largest rate; not the registered kernel"
    ),
    "corruptions/snow:snow": (
        "eager CPU groups by severity (host_reads_ok); other devices and compile run all 5 levels"
    ),
    "corruptions/spatter:_water_distance_maps": (
        "the water branch's distance map is OpenCV's on the host (a custom op under torch.compile)"
    ),
    "corruptions/zoom_blur:zoom_blur": (
        "eager CPU groups by severity (host_reads_ok); other devices and compile run the factor union"
    ),
    "functional/filters:gaussian_blur_nearest": (
        "the public blur helper builds a per-sigma kernel table from the sigma values"
    ),
    "functional/filters:_filter_scipy": (
        "method='scipy' is SciPy on CPU tensors in eager mode only (spatter's large-image CPU path); "
        "other devices and compile use the torch taps"
    ),
    "functional/jpeg:_code_into": (
        "JPEG is Pillow's libjpeg on the host (a custom op under torch.compile)"
    ),
    "functional/jpeg:_qualities": (
        "the codec's quality is a host int per image"
    ),
    "functional/noise:_PiecewiseNorm.newton": (
        "early stop of the L2 Newton iteration on the CPU only; fixed schedule elsewhere"
    ),
    "functional/noise:calibrate_l2": (
        "skips the saturated-row pass on the CPU when no row saturates; always run elsewhere"
    ),
    "functional/noise:eps_for_sigma": (
        "returns a Python float (a configuration helper, not a kernel)"
    ),
}
