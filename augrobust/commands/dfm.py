"""``augrobust dfm``: the dominant frequency maps of a trained checkpoint, for DFM-X training.

Runs :func:`augrobust.dfm.compute_dfms` (the DFM-X greedy sweep) with a checkpoint written by
``augrobust train`` on a labelled image set, and saves the maps with :func:`augrobust.dfm.save_dfms`; train
with them by ``augrobust train --method dfmx --method-option dfms=OUT``.

    augrobust dfm --checkpoint runs/erm/checkpoint.pt --data cifar10:/data/cifar-10-batches-py --out dfms.pt
"""

from __future__ import annotations

import argparse
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
    check_output_file,
)
from augrobust.commands.eval import CLEAN_DATA_SPECS as DATA_SPECS

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``augrobust dfm``."""
    p = add_command(
        subparsers, "dfm", help="compute a checkpoint's dominant frequency maps (for DFM-X)",
        description="Run the DFM-X greedy sweep (augrobust.dfm.compute_dfms) with a checkpoint written by "
        "'augrobust train' on a labelled image set, and save the maps (augrobust.dfm.save_dfms). Train with them "
        "by 'augrobust train --method dfmx --method-option dfms=OUT'.\n\n"
        "example:\n  augrobust dfm --checkpoint runs/erm/checkpoint.pt --data cifar10:/data/cifar-10-batches-py "
        "--out dfms.pt",
    )  # fmt: skip
    p.add_argument(
        "--checkpoint", required=True, metavar="PATH", help="checkpoint written by `augrobust train` (a standard model)"
    )
    add_data(
        p, specs=DATA_SPECS,
        what="labelled images to sweep on (cifar: the test split, as the reference; folder: e.g. a held-out part of "
        "the training set): ",
    )  # fmt: skip
    p.add_argument("--num-images", type=int, default=None, help="use the first N images only (default: all)")
    p.add_argument("--image-size", type=int, default=None, help="synthetic image side / folder resize (default: 32 / "
                   "the files' size)")  # fmt: skip
    p.add_argument("--tolerance", type=int, default=6, help="correct images per class a removal may cost")
    add_batch_size(p, default=1000, help="images per forward pass")
    add_device(p)
    add_threads(p)
    add_seed(p, help="synthetic data seed")
    add_out(p, default="dfms.pt", help="output file: .pt (with metadata) or .npy (the bare array)")
    add_quiet(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Check the paths, sweep, save the maps."""
    apply_threads(args)
    import torch

    from augrobust._progress import progress_bar
    from augrobust.data import from_spec
    from augrobust.dfm import compute_dfms, save_dfms
    from augrobust.train.checkpoint import load_model

    model, config = load_model(args.checkpoint, device=args.device)
    out = check_output_file(args.out)
    dataset = from_spec(
        args.data, train=False, seed=args.seed, image_size=args.image_size, num_images=args.num_images,
        num_classes=int(config["num_classes"]),
    )  # fmt: skip
    pairs = [dataset[i] for i in range(len(dataset))]  # type: ignore[arg-type]
    images = torch.stack([torch.as_tensor(image) for image, _ in pairs])
    labels = torch.tensor([int(label) for _, label in pairs])

    with progress_bar(None, "DFM sweep", quiet=args.quiet, unit="level") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        dfms = compute_dfms(
            model, images.to(args.device), labels.to(args.device), tolerance=args.tolerance,
            num_classes=int(config["num_classes"]), batch_size=args.batch_size, progress=progress,
        )  # fmt: skip
    meta = {
        "checkpoint": str(args.checkpoint), "arch": config["arch"], "data": args.data,
        "num_images": len(pairs), "tolerance": args.tolerance,
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    # A .npy file holds the bare array only (save_dfms refuses metadata there).
    path = save_dfms(out, dfms, None if out.suffix == ".npy" else meta)
    kept = ", ".join(f"{v:.2f}" for v in dfms.flatten(1).mean(1).tolist())
    print(f"wrote {path}: {dfms.shape[0]} maps of {dfms.shape[1]}x{dfms.shape[2]}; fraction kept per class: {kept}")
    return 0
