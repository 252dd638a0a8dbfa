"""``augrobust preview``: a PNG grid of corruptions x severities for any image."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

__all__ = ["add_parser", "preview_grid"]


def preview_grid(
    image: torch.Tensor,
    names: list[str],
    *,
    preset: str = "imagenet",
    reference: str = "imagecorruptions",
    seed: int = 0,
):  # type: ignore[no-untyped-def]
    """One row per corruption: the clean image, then severities 1 to 5 (``image`` is uint8 CHW).

    Example:
        >>> from augrobust.testimage import test_image
        >>> preview_grid(test_image(32), ["contrast"]).size
        (192, 50)
    """
    import augrobust
    from augrobust.commands.demo import render_grid

    tiles = []
    for name in names:
        tiles.append((name, image))
        for severity in range(1, 6):
            gen = torch.Generator(device=image.device).manual_seed(seed)
            out = augrobust.corrupt(image, name, severity, preset=preset, reference=reference, generator=gen)
            tiles.append((f"severity {severity}", out))
    return render_grid(tiles, columns=6)


def run(args: argparse.Namespace) -> int:
    from augrobust.corruptions import get_corruption_names, registered_names
    from augrobust.commands.demo import load_image

    if args.corruptions in ("common", "validation", "all", "noise", "blur", "weather", "digital"):
        names = [n for n in get_corruption_names(args.corruptions) if n in registered_names()]
    else:
        names = args.corruptions.split(",")
    image = load_image(args.image, args.size)
    grid = preview_grid(image, names, preset=args.preset, reference=args.reference, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    print(f"wrote {out}: {len(names)} corruptions x 5 severities")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "preview",
        help="PNG grid of corruptions x severities for an image (default: the built-in test image)",
        description="Render every corruption at severities 1-5 on an image, one row per corruption.",
    )
    p.add_argument("--image", default=None, help="an image file (default: the built-in test image)")
    p.add_argument("--out", default="preview.png", help="output PNG (default preview.png)")
    p.add_argument("--corruptions", default="all", help="a subset name or comma-separated names (default all)")
    p.add_argument("--preset", default="imagenet", choices=["imagenet", "tinyimagenet", "cifar", "inception"])
    p.add_argument("--reference", default="imagecorruptions", choices=["imagecorruptions", "hendrycks"])
    p.add_argument("--size", type=int, default=160, help="tile size in pixels (default 160)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    p.set_defaults(func=run)
    return p
