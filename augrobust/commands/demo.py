"""``augrobust demo``: every registered transform on one image, as a PNG grid, plus a throughput table."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augrobust.commands._options import add_batch_size, add_command, add_out, add_seed, check_output_file

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["add_parser", "check_image_path", "load_image", "render_grid", "run", "save_image"]

#: What the help of the image commands suggests; any file ending that Pillow can write is accepted.
IMAGE_HELP = "output image: .png, .jpg, or any format Pillow writes"


def load_image(path: str | None, size: int = 224) -> torch.Tensor:
    """The built-in test image, or the image at ``path`` (centre-cropped and resized to ``size``), uint8 CHW.

    Example:
        >>> load_image(None, 32).shape
        torch.Size([3, 32, 32])
    """
    import numpy as np
    import torch
    from PIL import Image

    from augrobust.errors import AugrobustValueError
    from augrobust.testimage import test_image

    if path is None:
        return test_image(size)
    try:
        img = Image.open(path).convert("RGB")
    except (OSError, ValueError) as exc:
        raise AugrobustValueError(f"cannot read image {path!r}: {exc}. Pass a PNG or JPEG file.") from exc
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


def render_grid(tiles: list[tuple[str, torch.Tensor]], columns: int = 6, label_height: int = 18) -> Image.Image:
    """Lay out labelled uint8 CHW tiles of equal size in a grid.

    Example:
        >>> import torch
        >>> render_grid([("a", torch.zeros(3, 8, 8, dtype=torch.uint8))] * 3, columns=2).size
        (16, 52)
    """
    from PIL import Image, ImageDraw

    h, w = tiles[0][1].shape[-2:]
    rows = (len(tiles) + columns - 1) // columns
    canvas = Image.new("RGB", (columns * w, rows * (h + label_height)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (label, tile) in enumerate(tiles):
        x0, y0 = (i % columns) * w, (i // columns) * (h + label_height)
        canvas.paste(Image.fromarray(tile.permute(1, 2, 0).cpu().numpy()), (x0, y0 + label_height))
        draw.text((x0 + 3, y0 + 3), label[: max(8, w // 6)], fill=(0, 0, 0))
    return canvas


def _image_format(path: str) -> str | None:
    from PIL import Image

    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    return fmt if fmt in Image.SAVE else None


def check_image_path(path: str, option: str = "--out") -> Path:
    """An image file Pillow can write (by its ending) in a folder that exists or can be created.

    Example:
        >>> check_image_path("grid.xyz")
        Traceback (most recent call last):
        ...
        augrobust.errors.AugrobustValueError: --out 'grid.xyz': Pillow writes no format with the ending '.xyz'; ...
    """
    from augrobust.errors import AugrobustValueError

    if _image_format(path) is None:
        raise AugrobustValueError(
            f"{option} {path!r}: Pillow writes no format with the ending {Path(path).suffix!r}; use .png or .jpg."
        )
    return check_output_file(path, option)


def save_image(image: Image.Image, path: str) -> None:
    """Write ``image`` atomically (a kill leaves the old file or the new one), in the format of its ending."""
    from augrobust._io import atomic_open

    with atomic_open(path) as fh:
        image.save(fh, format=_image_format(path))


def _throughput(entries: list[tuple[str, Any]], batch: torch.Tensor, repeats: int = 3) -> list[tuple[str, float]]:
    rows = []
    for label, aug in entries:
        aug(batch)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            aug(batch)
            best = min(best, time.perf_counter() - start)
        rows.append((label, batch.shape[0] / best))
    return rows


def run(args: argparse.Namespace) -> int:
    """Render the grid, write it to ``args.out`` and print the throughput table."""
    import torch

    from augrobust._checks import check_count
    from augrobust.transforms.registry import transform_registry

    check_image_path(args.out)
    for name in ("size", "columns", "batch_size"):
        check_count(getattr(args, name), f"--{name.replace('_', '-')}", minimum=1)
    image = load_image(args.image, args.size)
    entries = []
    for label, entry in transform_registry().items():
        overrides: dict[str, object] = {"seed": args.seed}
        if label.startswith("Corruption["):
            overrides["severity"] = args.severity
            label = label[len("Corruption[") : -1]
        arguments = entry.arguments(image.shape, **overrides)
        if "eps" in arguments and isinstance(arguments["eps"], float):  # the L2 budget at this image size
            label = f"{label.split('[')[0]}[eps={arguments['eps']}]"
        entries.append((label, entry.build(image.shape, **overrides)))
    tiles = [("original", image)]
    for label, aug in entries:
        tiles.append((label, aug(image)))
    save_image(render_grid(tiles, columns=args.columns), args.out)
    print(f"wrote {args.out} ({len(tiles) - 1} transforms, severity {args.severity} for corruptions)")

    batch = image.unsqueeze(0).expand(args.batch_size, -1, -1, -1).float().div(255).contiguous()
    rows = _throughput(entries, batch)
    print(f"\nthroughput on {tuple(batch.shape)} float32, {torch.get_num_threads()} threads (best of 3):")
    print(f"{'transform':<22} {'images/s':>10} {'ms/image':>10}")
    for label, ips in rows:
        print(f"{label:<22} {ips:>10.1f} {1000 / ips:>10.3f}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``augrobust demo``."""
    p = add_command(
        subparsers, "demo",
        help="render every transform on the built-in test image (PNG grid) and print a throughput table",
        description="Render every registered transform on the built-in test image (or --image) into a PNG grid, "
        "then print images/s for each on a batch (on the CPU).",
    )  # fmt: skip
    p.add_argument("--image", default=None, help="an image file to use (default: the built-in test image)")
    add_out(p, default="demo.png", help=IMAGE_HELP)
    p.add_argument("--size", type=int, default=224, help="tile size in pixels")
    p.add_argument("--severity", type=int, default=3, choices=range(1, 6), metavar="{1..5}", help="corruption severity")
    p.add_argument("--columns", type=int, default=6, help="grid columns")
    add_batch_size(p, default=16, help="batch size of the throughput table", aliases=("--batch",))
    add_seed(p, help="seed of every transform's random draws")
    p.set_defaults(func=run)
    return p
