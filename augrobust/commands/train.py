"""``augrobust train``: the reference trainer from the command line (works unchanged under ``torchrun``).

Example::

    augrobust train --method gnt --damp-sigma 0.2 --damp-m 8 --arch resnet18_cifar \\
        --data cifar10:/data/cifar-10-batches-py --epochs 300 --batch-size 128 --out runs/gnt_damp
    torchrun --nproc_per_node=4 -m augrobust.cli train ... --device cuda     # data-parallel
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from augrobust.commands._options import (
    add_batch_size,
    add_command,
    add_data,
    add_device,
    add_out,
    add_quiet,
    add_seed,
    add_threads,
    apply_threads,
    check_output_dir,
)

__all__ = [
    "ARCHITECTURE_NAMES", "BASE_AUGMENTATION_NAMES", "DEFAULTS", "METHOD_NAMES", "SPARSE_NAMES", "add_parser", "run",
]  # fmt: skip

# The trainer's registries import torch; the help lists these literal copies instead (a test keeps them equal
# to augrobust.train.METHODS, ARCHITECTURES, BASE_AUGMENTATIONS and TrainConfig's defaults).

#: Training methods (the keys of :data:`augrobust.train.METHODS`).
METHOD_NAMES: tuple[str, ...] = ("afa", "afa_noaux", "ant", "dfmx", "erm", "gnt")

#: Models (the keys of :data:`augrobust.train.ARCHITECTURES`).
ARCHITECTURE_NAMES: tuple[str, ...] = (
    "resnet101", "resnet18", "resnet18_cifar", "resnet34", "resnet50", "resnet8_cifar", "wide_resnet50_2",
)  # fmt: skip

#: Base augmentations (the keys of the trainer's ``BASE_AUGMENTATIONS``).
BASE_AUGMENTATION_NAMES: tuple[str, ...] = ("crop_flip", "none")

#: The defaults of :class:`augrobust.train.TrainConfig` that the options show.
DEFAULTS: dict[str, Any] = {
    "arch": "resnet18_cifar", "method": "erm", "data": "synthetic", "epochs": 30, "batch_size": 128, "lr": 0.1,
    "wd": 5e-4, "momentum": 0.9, "damp_sigma": None, "damp_m": 8, "base_augmentation": "crop_flip", "seed": 0,
    "num_workers": 0, "nonfinite": "error", "sparse": None, "sparsity": 0.5, "sparse_distribution": "erk",
    "sparse_interval": 100, "sparse_drop_fraction": 0.3, "sparse_end": None, "sparse_dense_first": True,
    "sparse_mest_lambda": 0.0,
}  # fmt: skip

#: Dynamic sparse training algorithms (:data:`augrobust.train.sparse.SPARSE_ALGORITHMS`).
SPARSE_NAMES: tuple[str, ...] = ("granet", "mest", "rigl", "set")


def _method_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``augrobust train``."""
    d = DEFAULTS
    p = add_command(
        subparsers, "train",
        help="train a classifier with ERM, GNT, ANT, AFA or DFM-X (+ DAMP), with checkpoints and DDP support",
        description="Reference trainer: SGD (Nesterov) with cosine schedule; the method augments each batch on "
        "the device; --damp-sigma turns on DAMP. Writes OUT/checkpoint.pt every epoch and OUT/metrics.jsonl.",
    )  # fmt: skip
    p.add_argument("--method", default=d["method"], choices=METHOD_NAMES, help="training method")
    p.add_argument(
        "--method-option", action="append", default=[], metavar="KEY=VALUE", type=_method_option,
        help="an option of the method, repeatable; VALUE is read as JSON if it parses, else as a string "
        "(e.g. --method gnt --method-option sigma=0.2, --method dfmx --method-option dfms=dfms.pt)",
    )  # fmt: skip
    p.add_argument("--damp-sigma", type=float, default=d["damp_sigma"], help="DAMP sigma, e.g. 0.2 (default: off)")
    p.add_argument("--damp-m", type=int, default=d["damp_m"], help="DAMP sub-batches per global batch")
    p.add_argument(
        "--sparse", default=d["sparse"], choices=SPARSE_NAMES,
        help="dynamic sparse training: masks on conv / linear weights, updated by SET, RigL, MEST or GraNet "
        "(default: dense)",
    )  # fmt: skip
    p.add_argument("--sparsity", type=float, default=d["sparsity"], help="target fraction of zero weights")
    p.add_argument(
        "--sparse-distribution", default=d["sparse_distribution"], choices=("erk", "uniform"),
        help="layer densities: Erdos-Renyi-Kernel or the same in every layer",
    )  # fmt: skip
    p.add_argument("--sparse-interval", type=int, default=d["sparse_interval"], help="steps between mask updates")
    p.add_argument(
        "--sparse-drop-fraction", type=float, default=d["sparse_drop_fraction"],
        help="initial fraction of active weights dropped and regrown per update (annealed)",
    )  # fmt: skip
    p.add_argument(
        "--sparse-end", type=float, default=d["sparse_end"],
        help="fraction of the run after which masks stay fixed (default: 0.75; GraNet 1.0)",
    )  # fmt: skip
    p.add_argument(
        "--sparse-first-layer", choices=("dense", "sparse"), default="dense" if d["sparse_dense_first"] else "sparse",
        help="keep the first conv / linear layer dense (RigL's ImageNet setting) or mask it too",
    )  # fmt: skip
    p.add_argument(
        "--sparse-mest-lambda", type=float, default=d["sparse_mest_lambda"],
        help="MEST's gradient weight in the drop score |w| + lambda |g|",
    )  # fmt: skip
    p.add_argument(
        "--base-augmentation", default=d["base_augmentation"], choices=BASE_AUGMENTATION_NAMES,
        help="augmentation before the method (crop_flip: pad 4, random crop, random h-flip)",
    )  # fmt: skip
    p.add_argument("--arch", default=d["arch"], choices=ARCHITECTURE_NAMES, help="model")
    add_data(p, specs=("synthetic", "synthetic:N", "cifar10:DIR", "cifar100:DIR"), default=d["data"],
             what="training data: ")
    p.add_argument("--epochs", type=int, default=d["epochs"], help="number of epochs")
    add_batch_size(p, default=d["batch_size"], help="global batch size (split over DDP processes)")
    p.add_argument("--lr", type=float, default=d["lr"], help="peak learning rate (cosine to 0)")
    p.add_argument("--wd", type=float, default=d["wd"], help="weight decay")
    p.add_argument("--momentum", type=float, default=d["momentum"], help="Nesterov momentum")
    add_seed(p, default=d["seed"], help="seed of initialisation, data order, augmentation and DAMP noise")
    p.add_argument("--num-workers", type=int, default=d["num_workers"], help="DataLoader workers")
    add_out(p, default=None, required=True, help="output folder for checkpoint.pt and metrics.jsonl")
    add_device(p)
    add_threads(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument(
        "--nonfinite", default=d["nonfinite"], choices=("error", "skip"),
        help="a NaN / inf loss stops the run naming its step (error) or that step's update is skipped (skip)",
    )  # fmt: skip
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` says; the trainer's epoch lines are printed unless ``--quiet``."""
    apply_threads(args, workers=args.num_workers)
    from augrobust.train.trainer import TrainConfig, train

    config = TrainConfig(
        arch=args.arch,
        method=args.method,
        method_options=dict(args.method_option),
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        wd=args.wd,
        momentum=args.momentum,
        damp_sigma=args.damp_sigma,
        damp_m=args.damp_m,
        base_augmentation=args.base_augmentation,
        seed=args.seed,
        num_workers=args.num_workers,
        nonfinite=args.nonfinite,
        sparse=args.sparse,
        sparsity=args.sparsity,
        sparse_distribution=args.sparse_distribution,
        sparse_interval=args.sparse_interval,
        sparse_drop_fraction=args.sparse_drop_fraction,
        sparse_end=args.sparse_end,
        sparse_dense_first=args.sparse_first_layer == "dense",
        sparse_mest_lambda=args.sparse_mest_lambda,
    ).validate()
    check_output_dir(args.out)
    # The trainer reports once per epoch through ``log`` and has no per-step hook, so there is no bar here.
    train(config, args.out, device=args.device, resume=args.resume, log=None if args.quiet else _say)
    return 0


def _say(line: str) -> None:
    print(line, flush=True)  # a log file shows each epoch as it ends
