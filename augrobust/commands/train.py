"""``augrobust train``: the reference trainer from the command line (works unchanged under ``torchrun``).

Example::

    augrobust train --method gnt --damp-sigma 0.2 --damp-m 8 --arch resnet18_cifar \\
        --data cifar10:/data/cifar-10-batches-py --epochs 300 --batch-size 128 --out runs/gnt_damp
    torchrun --nproc_per_node=4 -m augrobust.cli train ... --device cuda     # data-parallel
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from augrobust.errors import AugrobustError

__all__ = ["add_parser", "run"]


def _method_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add the ``train`` subcommand to the ``augrobust`` parser."""
    from augrobust.train.methods import METHODS
    from augrobust.train.models import ARCHITECTURES
    from augrobust.train.trainer import TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser(
        "train",
        help="train a classifier with ERM / GNT (+ DAMP), with checkpoints and DDP support",
        description="Reference trainer: SGD (Nesterov) with cosine schedule; the method augments each batch on "
        "the device; --damp-sigma turns on DAMP. Writes OUT/checkpoint.pt every epoch and OUT/metrics.jsonl.",
    )
    p.add_argument("--method", default=d.method, choices=sorted(METHODS), help="training method (default: erm)")
    p.add_argument(
        "--method-option", action="append", default=[], metavar="KEY=VALUE", type=_method_option,
        help="an option of the method, repeatable; VALUE is read as JSON if it parses, else as a string "
        "(e.g. --method gnt --method-option sigma=0.2, --method dfmx --method-option dfms=dfms.pt)",
    )  # fmt: skip
    p.add_argument("--damp-sigma", type=float, default=None, help="DAMP sigma, e.g. 0.2 (default: off)")
    p.add_argument("--damp-m", type=int, default=d.damp_m, help="DAMP sub-batches per global batch (default: 8)")
    p.add_argument(
        "--base-augmentation", default=d.base_augmentation, choices=["crop_flip", "none"],
        help="augmentation before the method (default: crop_flip = pad 4, random crop, random h-flip)",
    )  # fmt: skip
    p.add_argument("--arch", default=d.arch, choices=sorted(ARCHITECTURES), help="model (default: resnet18_cifar)")
    p.add_argument("--data", default=d.data, help="synthetic | synthetic:N | cifar10:ROOT (default: synthetic)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="global batch size")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (cosine to 0)")
    p.add_argument("--wd", type=float, default=d.wd, help="weight decay")
    p.add_argument("--momentum", type=float, default=d.momentum, help="Nesterov momentum")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--num-workers", type=int, default=d.num_workers, help="DataLoader workers")
    p.add_argument("--out", required=True, help="output folder for checkpoint.pt and metrics.jsonl")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default: cpu)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run training from parsed arguments; errors print one clear line and exit with status 2."""
    from augrobust.train.trainer import TrainConfig, train

    try:
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
        )
        train(config, args.out, device=args.device, resume=args.resume)
    except AugrobustError as err:
        print(f"augrobust train: error: {err}", file=sys.stderr)
        return 2
    return 0
