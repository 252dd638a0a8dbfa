"""``augrobust dfm``: the dominant frequency maps of a trained checkpoint, for DFM-X training.

Runs :func:`augrobust.dfm.compute_dfms` (the DFM-X greedy sweep) with a checkpoint written by
``augrobust train`` on a labelled image set, and saves the maps with :func:`augrobust.dfm.save_dfms`; train
with them by ``augrobust train --method dfmx --method-option dfms=OUT``.

    augrobust dfm --checkpoint runs/erm/checkpoint.pt --data cifar10:/data/cifar-10-batches-py --out dfms.pt
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

from augrobust.errors import AugrobustError

__all__ = ["add_parser", "run_dfm"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "dfm",
        help="compute a checkpoint's dominant frequency maps (for DFM-X)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint written by `augrobust train` (a standard model)")
    p.add_argument(
        "--data", default="synthetic",
        help="labelled images to sweep on: synthetic | cifar10:ROOT | cifar100:ROOT (test split, as the reference) | "
        "folder:ROOT (e.g. a held-out part of the training set)",
    )  # fmt: skip
    p.add_argument("--num-images", type=int, default=None, help="use the first N images only")
    p.add_argument("--image-size", type=int, default=None, help="synthetic image side / folder resize")
    p.add_argument("--tolerance", type=int, default=6, help="correct images per class a removal may cost (default 6)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    p.add_argument("--out", default="dfms.pt", help="output file: .pt (with metadata) or .npy (default dfms.pt)")
    p.set_defaults(func=run_dfm)
    return p


def run_dfm(args: argparse.Namespace) -> int:
    from augrobust.dfm import compute_dfms, save_dfms
    from augrobust.commands.eval import build_dataset, load_checkpoint_model
    from augrobust.evaluate import _Progress

    try:
        model, config = load_checkpoint_model(args.checkpoint, device=args.device)
        dataset = build_dataset(args.data, num_images=args.num_images, seed=args.seed, image_size=args.image_size)
        pairs = [dataset[i] for i in range(len(dataset))]  # type: ignore[arg-type]
        images = torch.stack([torch.as_tensor(image) for image, _ in pairs])
        labels = torch.tensor([int(label) for _, label in pairs])
        bar = _Progress(1, "DFM sweep", enabled=True)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.done, desc="DFM sweep (levels)")

        dfms = compute_dfms(
            model, images.to(args.device), labels.to(args.device), tolerance=args.tolerance,
            num_classes=int(config["num_classes"]), batch_size=args.batch_size, progress=progress,
        )  # fmt: skip
        bar.close()
        meta = {
            "checkpoint": str(args.checkpoint), "arch": config["arch"], "data": args.data,
            "num_images": len(pairs), "tolerance": args.tolerance,
        }  # fmt: skip
        path = save_dfms(args.out, dfms, meta)
    except AugrobustError as err:
        print(f"augrobust dfm: error: {err}", file=sys.stderr)
        return 2
    kept = ", ".join(f"{v:.2f}" for v in dfms.flatten(1).mean(1).tolist())
    print(f"wrote {path}: {dfms.shape[0]} maps of {dfms.shape[1]}x{dfms.shape[2]}; fraction kept per class: {kept}")
    return 0
