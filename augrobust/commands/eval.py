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
    import torch
    from torch.utils.data import Dataset

__all__ = ["DATA_SPECS", "add_parser", "build_dataset", "load_checkpoint_model", "run"]

#: The ``--data`` specs of ``eval`` and ``dfm``.
DATA_SPECS: tuple[str, ...] = ("synthetic", "cifar10:ROOT", "cifar100:ROOT", "folder:ROOT")

_STRIP_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel and torch.compile wrappers


def load_checkpoint_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build the model a trainer checkpoint describes and load its weights (``weights_only=True``).

    Returns:
        ``(model in eval mode on device, the checkpoint's config dict)``.

    Raises:
        FileNotFoundError: the checkpoint does not exist.
        AugrobustValueError: the file is not a checkpoint dict with ``model`` and ``config["arch"]``.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        from augrobust.data import DatasetFileNotFoundError

        raise DatasetFileNotFoundError(f"checkpoint not found: {str(p)!r}.")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupt, or holding more than tensors and plain types
        # torch's message runs to several paragraphs; its first line says what failed (--debug shows it all).
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AugrobustValueError(
            f"cannot load checkpoint {str(p)!r} with weights_only=True (is it a file written by augrobust train?): "
            f"{reason}"
        ) from e
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
    from torch.utils.data import Subset

    from augrobust.data import CIFAR10, CIFAR100, ImageFolderDataset, SyntheticShapes

    kind, _, root = spec.partition(":")
    if kind == "synthetic":
        count = 2000 if num_images is None else num_images
        return SyntheticShapes(count, seed=seed, train=False, size=image_size or 32)
    if not root:
        raise AugrobustValueError(f"--data {spec!r}: give a folder, e.g. '{kind}:/data/cifar'.")
    if kind == "cifar10":
        ds: Dataset[Any] = CIFAR10(root, train=False)
    elif kind == "cifar100":
        ds = CIFAR100(root, train=False)
    elif kind == "folder":
        ds = ImageFolderDataset(root, size=image_size)
    else:
        raise AugrobustValueError(f"unknown --data {spec!r}; use {', '.join(DATA_SPECS)}.")
    if num_images is not None and num_images < len(ds):  # type: ignore[arg-type]
        ds = Subset(ds, range(num_images))
    return ds


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
    from augrobust.evaluate import evaluate_corruptions

    model, config = load_checkpoint_model(args.checkpoint, args.device)
    out = check_output_dir(args.out)
    if args.npy_root is not None:
        _check_npy_root(args.npy_root, args.corruptions, args.severities[0])
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
        reference=reference, progress=not args.quiet, npy_root=args.npy_root,
    )  # fmt: skip
    report.metadata.update(checkpoint=str(args.checkpoint), arch=config["arch"], data=args.data)
    report.save_json(out / "report.json")
    report.save_markdown(out / "report.md")
    report.save_heatmap(out / "heatmap.png")
    sys.stdout.write(report.to_markdown())
    sys.stdout.write(f"\nwrote {out / 'report.json'}, {out / 'report.md'}, {out / 'heatmap.png'}\n")
    return 0
