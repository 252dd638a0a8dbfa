"""Peak extra memory of ``RandomCorruption("all")`` and of each corruption at severity 5 on one float32 batch.

    python benchmarks/memory.py                          # CPU, (64, 3, 224, 224): every case, a table in MB
    python benchmarks/memory.py --device cuda --json benchmarks/results/memory_cuda.json
    python benchmarks/memory.py --quick --cases "RandomCorruption(all),pixelate"   # seconds: the test's run

"Peak extra memory" is the most memory the call holds at any moment beyond what existed before it: its
intermediates, its drawn random fields and its output (so an out-of-place transform is at least 1x the batch).
It is printed in MB (10^6 bytes) and as a multiple of the input batch's size (38.5 MB for (64, 3, 224, 224)
float32); issue 15's target for ``RandomCorruption("all")`` is at most 4x. Cases: a calibration row,
``x.clone()``, which must read 1.00x (it checks the method), then ``RandomCorruption("all")`` (random
corruption and severity 1..5 per image, seed 0) and ``Corruption(name, severity=5)`` for every corruption.

Method on the CPU (the resident set size, RSS, of a fresh process per case):

1. Each case runs in its own ``python`` subprocess, so no case inherits another's caches, heap or peak. The
   child starts with ``MALLOC_MMAP_THRESHOLD_=65536``: glibc then serves every block of 64 KiB or more with
   its own ``mmap`` and unmaps it on free, so freed tensors leave the RSS at once (by default the threshold
   grows up to 32 MiB and freed blocks below it stay resident and are reused, which would hide part of a peak).
2. Warm-up: every corruption the case can draw is applied once at every severity on a 1-image batch of the
   same height and width (and the transform itself once on 2 images), so one-off state (imports, OpenCV and
   libjpeg initialisation, frost's textures, the thread pool) is in place before measuring.
3. The input batch (:func:`augrobust.benchmark.suite.photo_batch`) is allocated; ``gc.collect()`` and
   ``malloc_trim(0)``; the RSS (``VmRSS`` in ``/proc/self/status``) is the baseline. The kernel's peak-RSS
   mark is reset (``5`` written to ``/proc/self/clear_refs``, Linux 4.0+), the transform is called, and the
   peak (``VmHWM``) minus the baseline is the call's peak extra memory. This repeats for ``--calls`` calls
   (the output is dropped between them): "first call" is call 1, "peak extra" the largest of the later ones
   (steady state, what a training loop sees), "retained" what the RSS kept after the last call (caches).
   Where ``clear_refs`` cannot be written, the peak is ``ru_maxrss`` since the process started: an upper
   bound, flagged as such in the output.

Precision: the kernel keeps RSS counters per CPU and folds them in batches, so ``VmRSS`` and ``VmHWM`` can be
off by a few hundred KB (the calibration row reads 38.4-38.5 MB for the 38.5 MB batch; 0.6x on a 0.2 MB batch,
which is why ``--quick`` uses 1.6 MB).

With ``--device cuda`` the cases run in this process, one after the other: after the same warm-up,
``torch.cuda.reset_peak_memory_stats()``, then ``torch.cuda.max_memory_allocated()`` during the call minus
``torch.cuda.memory_allocated()`` before it (the caching allocator's exact byte counts; host memory that a
CPU-only step such as JPEG's codec uses is not counted there).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CALIBRATION = "x.clone() (calibration)"
RANDOM_ALL = "RandomCorruption(all)"
SHAPE = (64, 3, 224, 224)
QUICK_SHAPE = (8, 3, 128, 128)  # 1.6 MB: large against the RSS counters' slack (below)
_MMAP_THRESHOLD = "65536"


# ------------------------------------------------------------------------------------------------- the cases


def _build(case: str, seed: int) -> tuple[Callable[[Any], Any], list[str]]:
    """The callable a case measures and the corruption names it may draw (for the warm-up)."""
    import augrobust

    if case == CALIBRATION:
        return (lambda x: x.clone()), []
    if case == RANDOM_ALL:
        aug = augrobust.RandomCorruption("all", seed=seed)
        return aug, list(aug.names)
    aug = augrobust.Corruption(case, severity=5, seed=seed)
    return aug, [case]


def _warm_up(fn: Callable[[Any], Any], names: list[str], shape: tuple[int, ...], device: str, images: str) -> None:
    import augrobust
    from augrobust.benchmark.suite import photo_batch

    one = photo_batch((1, *shape[1:]), device, images)
    for name in names:
        for severity in range(1, 6):
            augrobust.corrupt(one, name, severity)
    fn(photo_batch((min(2, shape[0]), *shape[1:]), device, images))


# ------------------------------------------------------------------------------------------------- CPU: RSS


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS; False where this is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child(case: str, shape: tuple[int, ...], images: str, calls: int, seed: int, threads: int | None) -> dict:
    """Run in a fresh process: the measurement of one case on the CPU (see the module docstring)."""
    import torch

    from augrobust.benchmark.suite import photo_batch

    if threads:
        torch.set_num_threads(threads)
    fn, names = _build(case, seed)
    _warm_up(fn, names, shape, "cpu", images)
    x = photo_batch(shape, "cpu", images)
    peaks, exact = [], True
    _trim()
    start = _status_kb("VmRSS")
    for _ in range(calls):
        _trim()
        base = _status_kb("VmRSS")
        if _reset_peak():
            fn(x)  # the output is dropped at once: the next call starts from the same state
            peak = _status_kb("VmHWM")
        else:
            exact = False
            fn(x)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, since the process started
        peaks.append((peak - base) * 1024)
    _trim()
    retained = (_status_kb("VmRSS") - start) * 1024
    return {"peaks_bytes": peaks, "retained_bytes": retained, "exact": exact, "threads": torch.get_num_threads()}


def _run_child(case: str, args: argparse.Namespace, shape: tuple[int, ...]) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": _MMAP_THRESHOLD}
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", case, "--shape", ",".join(map(str, shape)),
        "--images", args.images, "--calls", str(args.calls), "--seed", str(args.seed),
    ]  # fmt: skip
    if args.threads:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"memory.py: the {case!r} child failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------- CUDA


def _cuda_case(case: str, args: argparse.Namespace, shape: tuple[int, ...]) -> dict:
    import torch

    from augrobust.benchmark.suite import photo_batch

    device = args.device
    fn, names = _build(case, args.seed)
    if hasattr(fn, "to"):
        fn = fn.to(device)
    _warm_up(fn, names, shape, device, args.images)
    x = photo_batch(shape, device, args.images)
    torch.cuda.synchronize(device)
    start = torch.cuda.memory_allocated(device)
    peaks = []
    for _ in range(args.calls):
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn(x)
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - base)
    retained = torch.cuda.memory_allocated(device) - start
    del x
    torch.cuda.empty_cache()
    return {"peaks_bytes": peaks, "retained_bytes": retained, "exact": True}


# ------------------------------------------------------------------------------------------------- report


def _row(case: str, measured: dict, batch_bytes: int) -> dict:
    peaks = measured["peaks_bytes"]
    steady = max(peaks[1:]) if len(peaks) > 1 else peaks[0]
    return {
        "case": case,
        "peak_extra_mb": steady / 1e6,
        "x_batch": steady / batch_bytes,
        "first_call_mb": peaks[0] / 1e6,
        "retained_mb": measured["retained_bytes"] / 1e6,
        "calls_mb": [p / 1e6 for p in peaks],
        "exact": measured["exact"],
    }


def table(report: dict) -> str:
    """The rows as a Markdown table (MB and multiples of the batch)."""
    shape, batch_mb = tuple(report["shape"]), report["batch_mb"]
    lines = [
        f"Peak extra memory on a {shape} float32 batch ({batch_mb:.1f} MB), device {report['device']}, "
        f"images {report['images']}, {report['calls']} calls per case",
        "",
        "| case | peak extra MB | x batch | first call MB | retained MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        flag = "" if r["exact"] else " (upper bound: ru_maxrss since start)"
        lines.append(
            f"| {r['case']}{flag} | {r['peak_extra_mb']:.1f} | {r['x_batch']:.2f}x | {r['first_call_mb']:.1f} "
            f"| {r['retained_mb']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu (RSS of a fresh process per case) or cuda / cuda:N")
    p.add_argument(
        "--cases", default=None, metavar="CASES",
        help=f"comma-separated cases: {RANDOM_ALL!r} and corruption names (default: those and every corruption; "
        "the calibration row is always measured)",
    )  # fmt: skip
    p.add_argument("--shape", default=None, metavar="B,C,H,W", help=f"batch shape (default {SHAPE})")
    p.add_argument("--quick", action="store_true", help=f"a smoke run on a {QUICK_SHAPE} batch: not for numbers")
    p.add_argument("--images", default="builtin", choices=("builtin", "skimage"), help="the batch's images")
    p.add_argument("--calls", type=int, default=3, help="calls per case: the first, then the steady ones")
    p.add_argument("--seed", type=int, default=0, help="seed of the transforms' draws")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the report here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: measure one case, print JSON
    args = p.parse_args(argv)

    if args.shape:
        try:
            shape = tuple(int(v) for v in args.shape.split(","))
        except ValueError:
            shape = ()
        if len(shape) != 4 or min(shape) < 1:
            p.error(f"--shape expects four positive ints B,C,H,W, got {args.shape!r}")
    else:
        shape = QUICK_SHAPE if args.quick else SHAPE
    if args.calls < 1:
        p.error(f"--calls must be at least 1, got {args.calls}")
    if args.child is not None:
        print(json.dumps(_child(args.child, shape, args.images, args.calls, args.seed, args.threads)))
        return None

    from augrobust.corruptions import get_spec, registered_names

    if args.cases:
        cases = [c.strip() for c in args.cases.split(",") if c.strip()]
        for case in cases:
            if case not in (RANDOM_ALL, CALIBRATION):
                try:
                    get_spec(case)
                except ValueError as err:
                    p.error(f"--cases: {err}")
    else:
        cases = [RANDOM_ALL, *registered_names()]
    cases = [CALIBRATION, *[c for c in cases if c != CALIBRATION]]
    batch_bytes = shape[0] * shape[1] * shape[2] * shape[3] * 4
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": platform.machine(),
        "device": args.device,
        "shape": list(shape),
        "batch_mb": batch_bytes / 1e6,
        "images": args.images,
        "calls": args.calls,
        "seed": args.seed,
        "quick": args.quick,
        "method": "cpu: VmHWM - VmRSS per call in a fresh process (MALLOC_MMAP_THRESHOLD_=65536)"
        if args.device == "cpu"
        else "cuda: max_memory_allocated - memory_allocated per call",
        "rows": [],
    }
    if args.device != "cpu":
        import torch

        if not torch.cuda.is_available():
            p.error(f"--device {args.device}: CUDA is not available here")
    for case in cases:
        measured = _run_child(case, args, shape) if args.device == "cpu" else _cuda_case(case, args, shape)
        row = _row(case, measured, batch_bytes)
        report["rows"].append(row)
        print(f"{case:<32} {row['peak_extra_mb']:9.1f} MB {row['x_batch']:6.2f}x", file=sys.stderr, flush=True)
        from augrobust.benchmark.timing import write_json

        write_json(args.json, report)  # after each row: finished rows survive an interrupted run
    print(table(report))
    return report


if __name__ == "__main__":
    main()
