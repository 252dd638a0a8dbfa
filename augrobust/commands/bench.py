"""``augrobust bench``: run the throughput suite, print a table and write JSON (and Markdown).

A run that would time nothing (an ``--only`` that matches no case, a size the suite does not have) is refused
before it starts, with the valid values. ``--images`` picks the batch's images (the built-in test image or
scikit-image's photographs) and ``--severities`` the corruption severities timed (each corruption row is timed
per severity, for augrobust and the reference).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from augrobust.commands._options import (
    add_command,
    add_corruptions,
    add_device,
    add_out,
    add_quiet,
    add_threads,
    apply_threads,
    check_output_file,
    severity_list,
)

__all__ = ["IMAGE_SOURCES", "SIZES", "add_parser", "run"]

#: Image sizes of the suite: the side of its (256, 3, 32, 32) and (64, 3, 224, 224) batches.
SIZES: tuple[int, ...] = (32, 224)
#: ``--images``: mirrors :data:`augrobust.benchmark.suite.IMAGE_SOURCES` (the parser must not import torch).
IMAGE_SOURCES: tuple[str, ...] = ("builtin", "skimage")


def _severities(text: str) -> list[int]:
    """``--severities``: ``all`` or distinct comma-separated severities in 1..5."""
    return [1, 2, 3, 4, 5] if text.strip() == "all" else severity_list(text)


def _one_severity(text: str) -> list[int]:
    """``--severity N``: one severity in 1..5 (the older spelling of ``--severities N``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 5:
        raise argparse.ArgumentTypeError(f"expected one severity in 1..5, got {text!r}")
    return [value]


def _size_list(text: str) -> list[int]:
    try:
        sizes = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(s not in SIZES for s in sizes):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated sizes from {{{','.join(map(str, SIZES))}}}, got {text!r}"
        )
    return sizes


def run(args: argparse.Namespace) -> int:
    """Time the selected cases, print each row and the Markdown table, and write ``args.out``."""
    from augrobust._checks import check_number, check_severities, closest
    from augrobust._io import atomic_write_text
    from augrobust._progress import progress_bar
    from augrobust.benchmark.suite import SHAPES, check_image_source, default_cases, markdown_table, run_suite
    from augrobust.corruptions import get_spec
    from augrobust.errors import AugrobustValueError

    severities = check_severities(args.severities, "--severities")
    check_image_source(args.images)  # scikit-image missing: refused here, before anything is timed
    check_number(args.min_run_time, "--min-run-time", minimum=0.0, strict=True)
    for name in args.corruptions or ():
        get_spec(name)  # an unknown name fails here, with the valid ones
    from augrobust.benchmark.suite import QUICK_SHAPES

    apply_threads(args)
    cases = default_cases(args.corruptions, severities, compiled=args.compiled, quick=args.quick)
    if args.only:
        groups = list(dict.fromkeys(c.group for c in cases))
        keep = [g.strip() for g in args.only.split(",") if g.strip()]
        unknown = [g for g in keep if g not in groups]
        if unknown:
            hints = ", ".join(f"{g!r}{closest(g, groups)}" for g in unknown)
            raise AugrobustValueError(f"--only names no case: {hints}; the cases are: {', '.join(groups)}.")
        cases = [c for c in cases if c.group in keep]
    shapes = [s for s in (QUICK_SHAPES if args.quick else SHAPES) if s[-1] in args.sizes]
    min_run_time = 0.01 if args.quick else args.min_run_time
    check_output_file(args.out)
    if args.markdown:
        check_output_file(args.markdown, "--markdown")

    bar = progress_bar(len(cases) * len(shapes), "bench", quiet=args.quiet, unit="case")

    def show(r: Any) -> None:
        label = r.group if r.severity is None else f"{r.group}@{r.severity}"
        bar.write(
            f"{str(r.shape):>18} {label:<34} {r.impl:<17} {r.median_ms_per_image:10.4f} ms/img "
            f"(IQR {r.iqr_ms_per_image:.4f}) {r.images_per_second:10.1f} img/s",
            file=sys.stdout,
        )
        bar.update(1)

    with bar:
        report = run_suite(cases, shapes=shapes, device=args.device, min_run_time=min_run_time, out=args.out,
                           progress=None if args.quiet else show, images=args.images)  # fmt: skip
    table = markdown_table(report)
    print(table)
    if args.markdown:
        atomic_write_text(args.markdown, table)
    written = args.out + (f" and {args.markdown}" if args.markdown else "")
    print(f"wrote {written}: {len(report['results'])} rows", file=sys.stderr)
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``augrobust bench``."""
    p = add_command(
        subparsers, "bench",
        help="throughput benchmarks against the torch floor, kornia and imagecorruptions",
        description="Time augrobust's transforms and corruptions against the bare torch floor, kornia and the "
        "imagecorruptions per-image loop, in the same run, at (256,3,32,32) and (64,3,224,224) float32.",
    )  # fmt: skip
    add_out(p, default="benchmarks/results/latest.json", help="JSON output (rewritten after each row)")
    p.add_argument(
        "--markdown", default=None, metavar="PATH", help="also write the Markdown table here (default: none)"
    )
    add_device(p)
    add_corruptions(p, default=None, default_text="every registered corruption")
    p.add_argument(
        "--only", default=None, metavar="CASES",
        help="comma-separated case groups to keep, e.g. 'GaussianNoise(eps)' (default: every case)",
    )  # fmt: skip
    severity = p.add_mutually_exclusive_group()
    severity.add_argument(
        "--severities", type=_severities, default=[3], metavar="S,S,...|all",
        help="corruption severities to time, comma-separated in 1..5 or 'all': augrobust and the reference are timed "
        "at each (the run's corruption rows take about that many times longer)",
    )  # fmt: skip
    severity.add_argument(
        "--severity", dest="severities", type=_one_severity, metavar="{1..5}", default=argparse.SUPPRESS,
        help="one corruption severity (the same as --severities N)",
    )  # fmt: skip
    p.add_argument(
        "--images", default="builtin", choices=IMAGE_SOURCES,
        help="the batch's images: 'builtin' (the built-in test image, rolled per image) or 'skimage' (the 8 RGB "
        "photographs bundled with scikit-image, a dev dependency; centre-cropped, resized with antialiasing, cycled, "
        "second half flipped)",
    )  # fmt: skip
    p.add_argument("--min-run-time", type=float, default=1.0, help="seconds per measurement")
    p.add_argument(
        "--sizes", type=_size_list, default=",".join(map(str, SIZES)), metavar="{32,224}",
        help="comma-separated image sizes",
    )  # fmt: skip
    p.add_argument(
        "--quick", action="store_true",
        help="smoke run: every case once on tiny batches (4 and 2 images), 0.01 s per measurement; not for numbers",
    )  # fmt: skip
    p.add_argument(
        "--compiled", action="store_true",
        help="also time torch.compile of the apply step against eager mode for a few transforms (compiles first)",
    )  # fmt: skip
    add_threads(p)
    add_quiet(p)
    p.set_defaults(func=run)
    return p
