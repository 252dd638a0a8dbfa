"""``augrobust eval``: corruption robustness of a trained checkpoint.

Loads a checkpoint written by the trainer (``torch.save`` of ``{"model": state_dict, "config": {"arch": ...,
"num_classes": ...}}``), evaluates it clean and under each corruption and severity (on the fly, or from
CIFAR-10-C-style ``.npy`` files with ``--npy-root``), and writes ``report.json``, ``report.md`` and
``heatmap.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from augrobust.commands._options import (
    add_batch_size,
    add_command,
    add_corruptions,
    add_data,
    add_device,
    add_out,
    add_preset,
    add_quiet,
    add_reference,
    add_seed,
    add_severities,
    check_output_dir,
)
from augrobust.errors import AugrobustValueError

if TYPE_CHECKING:
    from torch.utils.data import Dataset

__all__ = ["DATA_SPECS", "add_parser", "run"]

#: The ``--data`` specs (``augrobust.data.DATA_SPECS``, spelled here so that ``--help`` imports no torch; a test
#: keeps the two equal).
DATA_SPECS: tuple[str, ...] = ("synthetic", "synthetic:N", "cifar10:DIR", "cifar100:DIR", "folder:DIR")

def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``augrobust eval``."""
    p = add_command(
        subparsers, "eval",
        help="evaluate a checkpoint on corrupted data (errors, mCE, heat map)",
        description="Evaluate a trained checkpoint clean and under ImageNet-C corruptions; write report.json, "
        "report.md and heatmap.png into --out. The paths are checked before any work starts.",
    )  # fmt: skip
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="checkpoint written by `augrobust train`")
    add_data(p, specs=DATA_SPECS, what="clean test images: ")
    p.add_argument(
        "--npy-root", default=None, metavar="DIR",
        help="read CIFAR-10-C-style <corruption>.npy files from this folder (default: corrupt on the fly)",
    )  # fmt: skip
    add_corruptions(
        p, default=None, default_text="every registered corruption; with --npy-root every .npy file there"
    )
    add_severities(p)
    add_device(p)
    add_out(p, default="eval_report", help="output folder")
    add_batch_size(p, default=256, help="images per batch (the on-the-fly draws depend on it)")
    p.add_argument("--num-images", type=int, default=None, help="evaluate the first N images only (default: all)")
    p.add_argument(
        "--image-size", type=int, default=None,
        help="synthetic image side / folder resize (default: the checkpoint's, else 32 / the files' size)",
    )  # fmt: skip
    add_seed(p, help="seed of the corruptions' random draws")
    add_preset(p, auto=True, default="auto")
    add_reference(p, auto=True, default="auto")
    add_quiet(p, aliases=("--no-progress",))
    p.set_defaults(func=run)
    return p


def _auto_preset(dataset: Dataset[Any]) -> str:
    side = int(dataset[0][0].shape[-1])
    return {32: "cifar", 64: "tinyimagenet"}.get(side, "imagenet")


def _check_npy_root(root: str, corruptions: list[str] | None, severity: int) -> None:
    """Every corruption file to read (and the labels) is there, before the evaluation starts."""
    from augrobust.data import CorruptedNpyDataset, available_npy_corruptions

    names = available_npy_corruptions(root) if corruptions is None else corruptions
    if not names:
        raise AugrobustValueError(f"--npy-root {root!r} holds no <corruption>.npy file.")
    for name in names:
        CorruptedNpyDataset(root, name, severity)  # memory-mapped: opening checks the files, reads nothing


def run(args: argparse.Namespace) -> int:
    """Check the inputs and the output folder, evaluate, write the three report files."""
    from augrobust.data import from_spec
    from augrobust.evaluate import evaluate_corruptions
    from augrobust.train.checkpoint import load_model

    model, config = load_model(args.checkpoint, args.device)
    out = check_output_dir(args.out)
    if args.npy_root is not None:
        _check_npy_root(args.npy_root, args.corruptions, args.severities[0])
    image_size = args.image_size or config.get("image_size")
    # The synthetic test split of the training run: its seed is the trainer's (any seed's test split is
    # disjoint from every training split); --seed seeds the corruptions.
    data_seed = int(config.get("seed", 0) or 0)
    num_classes = int(config["num_classes"])
    dataset = from_spec(
        args.data, train=False, seed=data_seed, image_size=image_size, num_images=args.num_images,
        num_classes=num_classes,
    )  # fmt: skip
    preset = _auto_preset(dataset) if args.preset == "auto" else args.preset
    reference = args.reference
    if reference == "auto":  # match the released small-image benchmarks by default
        reference = "hendrycks" if preset in ("cifar", "tinyimagenet") else "imagecorruptions"
    report = evaluate_corruptions(
        model, dataset, corruptions=args.corruptions, severities=tuple(args.severities),
        batch_size=args.batch_size, device=args.device, seed=args.seed, preset=preset,
        reference=reference, progress=not args.quiet, npy_root=args.npy_root, num_classes=num_classes,
        out_dir=out,  # finished (corruption, severity) units are kept there: a rerun continues
    )  # fmt: skip
    report.metadata.update(checkpoint=str(args.checkpoint), arch=config["arch"], data=args.data)
    if config.get("sparse"):  # a DST run: its per-layer sparsity in the report header
        from augrobust.train.sparse import layer_sparsity

        report.metadata["sparsity"] = layer_sparsity(model)
    report.save_json(out / "report.json")
    report.save_markdown(out / "report.md")
    report.save_heatmap(out / "heatmap.png")
    sys.stdout.write(report.to_markdown())
    sys.stdout.write(f"\nwrote {out / 'report.json'}, {out / 'report.md'}, {out / 'heatmap.png'}\n")
    return 0
