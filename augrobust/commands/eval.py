"""``augrobust eval``: corruption robustness of a trained checkpoint.

Loads a checkpoint written by the trainer (``torch.save`` of ``{"model": state_dict, "config": {"arch": ...,
"num_classes": ...}}``), evaluates it clean and under each corruption and severity (on the fly, or from
CIFAR-10-C-style ``.npy`` files with ``--npy-root``), and writes ``report.json``, ``report.md`` and
``heatmap.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from augrobust.errors import AugrobustValueError

__all__ = ["add_parser", "build_dataset", "load_checkpoint_model", "run_eval"]

_STRIP_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel and torch.compile wrappers


def load_checkpoint_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build the model a trainer checkpoint describes and load its weights (``weights_only=True``).

    Returns:
        ``(model in eval mode on device, the checkpoint's config dict)``.

    Raises:
        FileNotFoundError: the checkpoint does not exist.
        AugrobustValueError: the file is not a checkpoint dict with ``model`` and ``config["arch"]``.
    """
    p = Path(path)
    if not p.is_file():
        from augrobust.data import DatasetFileNotFoundError

        raise DatasetFileNotFoundError(f"checkpoint not found: {str(p)!r}.")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupt, or holding more than tensors and plain types
        raise AugrobustValueError(f"cannot load checkpoint {str(p)!r} with weights_only=True: {e}") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt or not isinstance(ckpt.get("config"), dict):
        raise AugrobustValueError(
            f"{str(p)!r} is not an augrobust checkpoint: expected a dict with 'model' (a state_dict) and "
            "'config' (with 'arch' and 'num_classes')."
        )
    config = ckpt["config"]
    if "arch" not in config or "num_classes" not in config:
        raise AugrobustValueError(f"the checkpoint config lacks 'arch' or 'num_classes': {sorted(config)}.")
    from augrobust.train import METHODS, build_model  # the trainer's model factory

    model = build_model(config["arch"], int(config["num_classes"]))
    # A method that changed the model for training (AFA's dual BatchNorm) stored that form: rebuild it. Its
    # eval mode is the plain network (DualBatchNorm2d evaluates with the main BN).
    factory = METHODS.get(config.get("method", "erm"))
    if factory is not None and hasattr(factory, "prepare_model"):
        model = factory(**config.get("method_options", {})).prepare_model(model)
    state = dict(ckpt["model"])
    for prefix in _STRIP_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    model.load_state_dict(state)
    return model.to(device).eval(), config


def build_dataset(spec: str, *, num_images: int | None, seed: int, image_size: int | None) -> Dataset[Any]:
    """The clean test set named by ``--data``: ``synthetic``, ``cifar10:ROOT``, ``cifar100:ROOT`` or
    ``folder:ROOT``; ``num_images`` keeps the first images only (``None``: all; synthetic default 2000)."""
    from augrobust.data import CIFAR10, CIFAR100, ImageFolderDataset, SyntheticShapes

    kind, _, root = spec.partition(":")
    if kind == "synthetic":
        return SyntheticShapes(2000 if num_images is None else num_images, seed=seed, train=False, size=image_size or 32)
    if not root:
        raise AugrobustValueError(f"--data {spec!r}: give a folder, e.g. '{kind}:/data/cifar'.")
    if kind == "cifar10":
        ds: Dataset[Any] = CIFAR10(root, train=False)
    elif kind == "cifar100":
        ds = CIFAR100(root, train=False)
    elif kind == "folder":
        ds = ImageFolderDataset(root, size=image_size)
    else:
        raise AugrobustValueError(
            f"unknown --data {spec!r}; use synthetic, cifar10:ROOT, cifar100:ROOT or folder:ROOT."
        )
    if num_images is not None and num_images < len(ds):  # type: ignore[arg-type]
        ds = Subset(ds, range(num_images))
    return ds


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _name_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint on corrupted data (errors, mCE, heat map)",
        description="Evaluate a trained checkpoint clean and under ImageNet-C corruptions; write report.json, "
        "report.md and heatmap.png into --out.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint written by `augrobust train`")
    p.add_argument("--data", default="synthetic", help="synthetic | cifar10:ROOT | cifar100:ROOT | folder:ROOT")
    p.add_argument("--npy-root", default=None, help="read CIFAR-10-C-style <corruption>.npy files from this folder")
    p.add_argument("--corruptions", type=_name_list, default=None, help="comma-separated names (default: all)")
    p.add_argument("--severities", type=_int_list, default=[1, 2, 3, 4, 5], help="comma-separated, e.g. 1,3,5")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="eval_report", help="output folder (default: eval_report)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-images", type=int, default=None, help="evaluate the first N images only")
    p.add_argument("--image-size", type=int, default=None, help="synthetic image side / folder resize")
    p.add_argument("--seed", type=int, default=0, help="seed of the corruptions' random draws")
    p.add_argument(
        "--preset", default="auto",
        help="severity table: imagenet | tinyimagenet | cifar | inception | auto (cifar for 32-px images, "
        "tinyimagenet for 64-px, else imagenet)",
    )  # fmt: skip
    p.add_argument(
        "--reference", default="auto", choices=("auto", "imagecorruptions", "hendrycks"),
        help="auto: hendrycks (the scripts that built CIFAR-10-C and Tiny-ImageNet-C) for the cifar and "
        "tinyimagenet presets, imagecorruptions otherwise",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=run_eval)
    return p


def _auto_preset(dataset: Dataset[Any]) -> str:
    side = int(dataset[0][0].shape[-1])
    return {32: "cifar", 64: "tinyimagenet"}.get(side, "imagenet")


def run_eval(args: argparse.Namespace) -> int:
    """Run ``augrobust eval`` with parsed arguments; returns the exit code."""
    from augrobust.evaluate import evaluate_corruptions

    model, config = load_checkpoint_model(args.checkpoint, args.device)
    image_size = args.image_size or config.get("image_size")
    # The synthetic test split of the training run: its seed is the trainer's (any seed's test split is
    # disjoint from every training split); --seed seeds the corruptions.
    data_seed = int(config.get("seed", 0) or 0)
    dataset = build_dataset(args.data, num_images=args.num_images, seed=data_seed, image_size=image_size)
    preset = _auto_preset(dataset) if args.preset == "auto" else args.preset
    reference = args.reference
    if reference == "auto":  # match the released small-image benchmarks by default
        reference = "hendrycks" if preset in ("cifar", "tinyimagenet") else "imagecorruptions"
    report = evaluate_corruptions(
        model, dataset, corruptions=args.corruptions, severities=tuple(args.severities),
        batch_size=args.batch_size, device=args.device, seed=args.seed, preset=preset,
        reference=reference, progress=not args.no_progress, npy_root=args.npy_root,
    )  # fmt: skip
    report.metadata.update(checkpoint=str(args.checkpoint), arch=config["arch"], data=args.data)
    out = Path(args.out)
    report.save_json(out / "report.json")
    report.save_markdown(out / "report.md")
    report.save_heatmap(out / "heatmap.png")
    sys.stdout.write(report.to_markdown())
    sys.stdout.write(f"\nwrote {out / 'report.json'}, {out / 'report.md'}, {out / 'heatmap.png'}\n")
    return 0
