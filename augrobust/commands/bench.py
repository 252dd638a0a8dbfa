"""``augrobust bench``: run the throughput suite, print a table and write JSON (and Markdown)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "bench",
        help="throughput benchmarks against the torch floor, kornia and imagecorruptions",
        description="Time augrobust's transforms and corruptions against the bare torch floor, kornia and the "
        "imagecorruptions per-image loop, in the same run, at (256,3,32,32) and (64,3,224,224) float32.",
    )
    p.add_argument("--out", default="benchmarks/results/latest.json", help="JSON output (written after each row)")
    p.add_argument("--markdown", default=None, help="also write the Markdown table here")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--corruptions", default=None, help="comma-separated names (default: every registered one)")
    p.add_argument("--only", default=None, help="comma-separated case groups to keep, e.g. 'GaussianNoise(eps)'")
    p.add_argument("--severity", type=int, default=3, help="corruption severity to time (default 3)")
    p.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement (default 1)")
    p.add_argument("--sizes", default="32,224", help="comma-separated image sizes from {32,224} (default both)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from augrobust.benchmark.suite import SHAPES, default_cases, markdown_table, run_suite

    names = args.corruptions.split(",") if args.corruptions else None
    cases = default_cases(names, severity=args.severity)
    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c.group in keep]
    sizes = {int(s) for s in args.sizes.split(",")}
    shapes = [s for s in SHAPES if s[-1] in sizes]

    def show(r) -> None:  # type: ignore[no-untyped-def]
        print(
            f"{str(r.shape):>18} {r.group:<34} {r.impl:<17} {r.median_ms_per_image:10.4f} ms/img "
            f"(IQR {r.iqr_ms_per_image:.4f}) {r.images_per_second:10.1f} img/s",
            flush=True,
        )

    report = run_suite(cases, shapes=shapes, device=args.device, min_run_time=args.min_run_time, out=args.out,
                       progress=show)  # fmt: skip
    table = markdown_table(report)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(table)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
