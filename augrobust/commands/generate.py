"""``augrobust generate``: write ImageNet-C / -P, Tiny-ImageNet-C / -P or CIFAR-10/100-C / CIFAR-10-P style datasets,
and verify them.

The work is :func:`augrobust.data.generate.generate_dataset` (layouts, canonical seeds, resumption, shards);
``--verify DIR`` re-hashes every file a finished output's ``manifest.json`` lists.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from augrobust._checks import PRESET_CHOICES, REFERENCE_CHOICES
from augrobust.commands._options import (
    add_batch_size,
    add_command,
    add_corruptions,
    add_data,
    add_device,
    add_out,
    add_quiet,
    add_seed,
    add_severities,
    add_threads,
    apply_threads,
    check_output_dir,
)
from augrobust.errors import AugrobustValueError

__all__ = ["DATA_SPECS", "FORMATS", "add_parser", "run"]

#: ``--data`` specs (spelled here so that ``--help`` imports no torch).
DATA_SPECS: tuple[str, ...] = ("folder:DIR", "cifar10:DIR", "cifar100:DIR", "synthetic:N")
#: ``--format`` choices (``augrobust.data.generate.FORMATS``; a test keeps the two equal).
FORMATS: tuple[str, ...] = ("imagenet-c", "tinyimagenet-c", "cifar-c", "imagenet-p", "tinyimagenet-p", "cifar-p")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``augrobust generate``."""
    p = add_command(
        subparsers, "generate",
        help="write ImageNet-C / -P, Tiny-ImageNet-C / -P, CIFAR-C / -P datasets (resumable, sharded), or --verify one",
        description="Corrupt a source data set with each corruption and severity and write it in the layout of the "
        "released benchmark (imagenet-c: <corruption>/<severity>/<class>/<file>.JPEG at 224 px, JPEG q85; "
        "tinyimagenet-c: the same at 64 px; cifar-c: <corruption>.npy (5N, H, W, 3) uint8 and labels.npy; imagenet-p / "
        "tinyimagenet-p: <perturbation>[_<difficulty>]/<class>/<file>.mp4 (H.264 through PyAV, pip install "
        "'augrobust[video]'); cifar-p: <perturbation>[_<difficulty>].npy (N, T, 32, 32, 3) uint8 and labels.npy). Each "
        "image's random draw comes from its own seed (dataset seed, image key, corruption, severity), so the bytes "
        "do not depend on batch size, workers, shards or resumption. Kill it at any time and rerun the same command "
        "to finish. Several machines: --shard I/N per process (the last to finish writes manifest.json), or "
        "torchrun --nproc_per_node N -m augrobust.cli generate ... (RANK / WORLD_SIZE).",
    )  # fmt: skip
    add_data(p, specs=DATA_SPECS, default=None, what="source images (test split): ")
    p.add_argument("--format", choices=FORMATS, default=None, help="output layout (required unless --verify)")
    add_out(p, default=None, help="output folder (a rerun with the same arguments continues it)")
    add_corruptions(p, default="common")
    add_severities(p)
    p.add_argument(
        "--perturbations", default="test", metavar="SPLIT|NAMES",
        help="P formats: test, validation, all, or comma-separated perturbation names (default: test)",
    )  # fmt: skip
    p.add_argument(
        "--difficulties", default="1,2,3", metavar="D,D,...",
        help="P formats: difficulties in 1..3; the noise sequences get one set per difficulty, the others one set",
    )  # fmt: skip
    p.add_argument(
        "--preset", default="auto", choices=("auto", *PRESET_CHOICES),
        help="severity table (auto: imagenet for imagenet-c, tinyimagenet for tinyimagenet-c; for cifar-c by image "
        "side: 32 cifar, 64 tinyimagenet, else imagenet)",
    )  # fmt: skip
    p.add_argument(
        "--reference", default="auto", choices=("auto", *REFERENCE_CHOICES),
        help="reference implementation (auto: hendrycks, the scripts that built the released datasets)",
    )  # fmt: skip
    add_seed(p, help="dataset seed of the canonical per-image draws")
    add_device(p)
    add_threads(p)
    p.add_argument(
        "--dtype", default="float64", choices=("float64", "float32"),
        help="compute precision of the corruptions (float64 as the reference; float32 is faster)",
    )  # fmt: skip
    p.add_argument("--shard", default=None, metavar="I/N", help="do only shard I of N (e.g. 0/2); default: all")
    add_batch_size(p, default=64, help="images per corruption call on the device (the bytes do not depend on it)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader processes decoding, threads encoding")
    p.add_argument(
        "--block-images", type=int, default=None,
        help="images per unit of work and of sharding (default: 64 imagenet-c, 256 tinyimagenet-c, 1000 cifar-c); "
        "a rerun must use the same value",
    )  # fmt: skip
    p.add_argument("--num-images", type=int, default=None, help="only the first N source images (default: all)")
    p.add_argument("--skip-bad", action="store_true", help="exit 0 even if some source images could not be read")
    p.add_argument("--verify", default=None, metavar="DIR", help="re-hash the files of DIR's manifest.json and exit")
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Verify a finished output, or generate (continue) one; print a one-line summary."""
    apply_threads(args, workers=args.workers)
    if args.verify is not None:
        from augrobust.data.manifest import read_manifest, verify_manifest

        problems = verify_manifest(args.verify)
        n = len(read_manifest(args.verify)["files"])
        for line in problems:
            sys.stdout.write(f"FAIL {line}\n")
        verdict = "OK" if not problems else f"{len(problems)} problems"
        sys.stdout.write(f"verified {n} files in {args.verify}: {verdict}\n")
        return 0 if not problems else 1
    missing = [opt for opt, value in (("--data", args.data), ("--format", args.format), ("--out", args.out)) if not value]
    if missing:
        raise AugrobustValueError(f"generate needs {', '.join(missing)} (or --verify DIR to check an output).")
    out = check_output_dir(args.out)
    from augrobust.data.generate import generate_dataset

    result = generate_dataset(
        args.data, out, format=args.format, corruptions=args.corruptions, severities=args.severities,
        preset=args.preset, reference=args.reference, seed=args.seed, device=args.device, dtype=args.dtype,
        shard=args.shard, batch_size=args.batch_size, workers=args.workers, num_images=args.num_images,
        skip_bad=args.skip_bad, progress=not args.quiet, block_images=args.block_images,
        perturbations=args.perturbations, difficulties=_difficulties(args.difficulties),
    )  # fmt: skip
    sys.stdout.write(result.summary() + "\n")
    return 0


def _difficulties(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in str(text).split(",") if t.strip())
    except ValueError:
        values = ()
    if not values or any(v not in (1, 2, 3) for v in values):
        raise AugrobustValueError(f"--difficulties takes comma-separated values in 1..3 (e.g. 1,2,3), got {text!r}.")
    return values
