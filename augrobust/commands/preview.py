"""``augrobust preview``: a PNG grid of corruptions x severities for any image."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from augrobust.commands._options import (
    add_command,
    add_corruptions,
    add_out,
    add_preset,
    add_reference,
    add_seed,
    add_severities,
)
from augrobust.commands.demo import IMAGE_HELP, check_image_path

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["add_parser", "preview_grid", "run"]


def preview_grid(
    image: torch.Tensor,
    names: Sequence[str],
    *,
    preset: str = "imagenet",
    reference: str = "imagecorruptions",
    seed: int = 0,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
) -> Image.Image:
    """One row per corruption: the clean image, then each severity (``image`` is uint8 CHW).

    Example:
        >>> from augrobust.testimage import test_image
        >>> preview_grid(test_image(32), ["contrast"]).size
        (192, 50)
        >>> preview_grid(test_image(32), ["contrast", "fog"], severities=(1, 5)).size
        (96, 100)
    """
    import torch

    import augrobust
    from augrobust.commands.demo import render_grid

    tiles = []
    for name in names:
        tiles.append((name, image))
        for severity in severities:
            gen = torch.Generator(device=image.device).manual_seed(seed)
            out = augrobust.corrupt(image, name, severity, preset=preset, reference=reference, generator=gen)
            tiles.append((f"severity {severity}", out))
    return render_grid(tiles, columns=1 + len(severities))


def run(args: argparse.Namespace) -> int:
    """Render the grid of ``args.corruptions`` x ``args.severities`` and write it to ``args.out``."""
    from augrobust._checks import check_count
    from augrobust.commands.demo import load_image, save_image
    from augrobust.corruptions import get_spec

    check_image_path(args.out)
    check_count(args.size, "--size", minimum=8)
    for name in args.corruptions:
        get_spec(name)  # an unknown name fails here, with the valid ones
    image = load_image(args.image, args.size)
    grid = preview_grid(
        image, args.corruptions, preset=args.preset, reference=args.reference, seed=args.seed,
        severities=args.severities,
    )  # fmt: skip
    save_image(grid, args.out)
    print(f"wrote {args.out}: {len(args.corruptions)} corruptions x {len(args.severities)} severities")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``augrobust preview``."""
    p = add_command(
        subparsers, "preview",
        help="PNG grid of corruptions x severities for an image (default: the built-in test image)",
        description="Render corruptions at several severities on an image, one row per corruption.",
    )  # fmt: skip
    p.add_argument("--image", default=None, help="an image file (default: the built-in test image)")
    add_out(p, default="preview.png", help=IMAGE_HELP)
    add_corruptions(p, default="all")
    add_severities(p)
    add_preset(p)
    add_reference(p)
    p.add_argument("--size", type=int, default=160, help="tile size in pixels")
    add_seed(p)
    p.set_defaults(func=run)
    return p
