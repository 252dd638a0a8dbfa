"""1 vs 2 (or N) torch intra-op threads for the corruption suite, with and without a concurrent job.

The concurrent job is what shares the cores in practice: a DataLoader worker or a second training job. Here it
is a child process that runs a one-thread torch loop (elementwise passes and a small matmul, like a decode /
augment worker) for the whole measurement; ``--load 0`` measures without it. For each corruption (224 px,
severity 3, float32, built-in image batch) the thread counts are timed in interleaved rounds in this one
process (``torch.set_num_threads`` between calls), wall clock, median of the rounds; the result is the ratio
of each thread count's time to one thread's, so machine-wide slowness cancels. Writes JSON (``--json``) and
prints a table.

    python benchmarks/threads_under_load.py --load 1 --json benchmarks/results/threads_load1.json
    python benchmarks/threads_under_load.py --load 0 --json benchmarks/results/threads_load0.json
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time

import torch


def _busy(stop) -> None:  # noqa: ANN001
    """One-thread torch work until told to stop: a stand-in for a DataLoader worker or a second job."""
    torch.set_num_threads(1)
    a, b = torch.rand(256, 3, 32, 32), torch.rand(512, 512)
    while not stop.is_set():
        a = (a * 1.0001 + 0.0001).clamp_(0, 1)
        b @ b


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--load", type=int, default=1, help="concurrent one-thread busy processes (0: none)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to compare (first = base)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--corruptions", nargs="*", default=None, help="default: all 19")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    import augrobust
    from augrobust.benchmark.suite import photo_batch
    from augrobust.benchmark.timing import write_json
    from augrobust.corruptions import registered_names

    names = args.corruptions or list(registered_names())
    x = photo_batch((args.batch, 3, args.size, args.size))
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    workers = [ctx.Process(target=_busy, args=(stop,), daemon=True) for _ in range(args.load)]
    for w in workers:
        w.start()
    time.sleep(2.0 if workers else 0.0)  # let the load start
    rows = []
    try:
        for name in names:
            times: dict[int, list[float]] = {t: [] for t in args.threads}
            for t in args.threads:  # warm-up at each count
                torch.set_num_threads(t)
                augrobust.corrupt(x, name, 3)
            for _ in range(args.rounds):
                for t in args.threads:
                    torch.set_num_threads(t)
                    start = time.perf_counter()
                    augrobust.corrupt(x, name, 3)
                    times[t].append(time.perf_counter() - start)
            median = {t: statistics.median(v) for t, v in times.items()}
            base = median[args.threads[0]]
            row = {
                "corruption": name,
                "ms_per_image": {t: 1000 * m / args.batch for t, m in median.items()},
                "ratio_to_first": {t: m / base for t, m in median.items()},
                "spread": {t: (max(v) - min(v)) / statistics.median(v) for t, v in times.items()},
            }
            rows.append(row)
            cells = "  ".join(f"{t} thr {row['ms_per_image'][t]:7.3f} ms (x{row['ratio_to_first'][t]:.2f})" for t in args.threads)
            print(f"{name:18s} {cells}", flush=True)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=10)
    geo = {
        t: statistics.geometric_mean(r["ratio_to_first"][t] for r in rows) for t in args.threads
    }
    worst = {t: max(r["ratio_to_first"][t] for r in rows) for t in args.threads}
    print(f"geometric mean time ratio to {args.threads[0]} thread(s): " + ", ".join(f"{t}: {g:.2f}" for t, g in geo.items()))
    payload = {
        "settings": vars(args),
        "rows": rows,
        "geometric_mean_ratio": geo,
        "worst_ratio": worst,
        "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "torch": torch.__version__,
                    "loadavg_at_end": os.getloadavg()},
    }  # fmt: skip
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main(sys.argv[1:])
