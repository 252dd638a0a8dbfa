"""Draw the gallery of the docs site: every corruption at every severity, every noise / frequency transform.

Run by the docs build (``docs/_hooks/site_hooks.py``) or by hand::

    python docs/_scripts/gallery.py OUT_DIR [--mode full|small]

Two source images: the built-in test image (:func:`augrobust.testimage.test_image`) and a photograph shipped
with scikit-image (``skimage.data.chelsea``). Writes one PNG grid per (kind, image) and returns the Markdown of
the gallery page. ``small`` draws 64 px tiles instead of 224 px (what the docs test builds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import augrobust
from augrobust.testimage import test_image
from augrobust.transforms.registry import transform_registry

SEVERITIES = (1, 2, 3, 4, 5)
DRAWS = 4  # random draws shown per noise / frequency transform
LABEL = 16  # pixels of the text band above each row / left of each row


def _photo(size: int) -> torch.Tensor:
    """scikit-image's chelsea (a cat, 300x451), centre-cropped square and resized, uint8 (3, size, size)."""
    from skimage import data

    img = Image.fromarray(data.chelsea())
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


def _grid(rows: list[tuple[str, list[torch.Tensor]]], header: list[str], label_width: int) -> Image.Image:
    """Rows of equal-size uint8 CHW tiles, each row labelled on the left, each column on top."""
    h, w = rows[0][1][0].shape[-2:]
    columns = max(len(tiles) for _, tiles in rows)
    canvas = Image.new("RGB", (label_width + columns * w, LABEL + len(rows) * h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, text in enumerate(header):
        draw.text((label_width + j * w + 3, 2), text, fill=(0, 0, 0))
    for i, (text, tiles) in enumerate(rows):
        y = LABEL + i * h
        draw.text((3, y + h // 2 - 6), text, fill=(0, 0, 0))
        for j, tile in enumerate(tiles):
            canvas.paste(Image.fromarray(tile.permute(1, 2, 0).numpy()), (label_width + j * w, y))
    return canvas


def corruption_grid(image: torch.Tensor) -> Image.Image:
    """Every registered corruption (rows) at severities 1..5 (columns), after the clean image."""
    rows = []
    for name in augrobust.get_corruption_names("all"):
        generator = torch.Generator().manual_seed(0)
        batch = image.unsqueeze(0).expand(len(SEVERITIES), -1, -1, -1)
        out = augrobust.corrupt(batch, name, severity=torch.tensor(SEVERITIES), generator=generator)
        rows.append((name, [image, *out.unbind(0)]))
    return _grid(rows, ["clean", *(f"severity {s}" for s in SEVERITIES)], label_width=120)


def transform_grid(image: torch.Tensor) -> Image.Image:
    """Every registered noise / frequency transform (rows), :data:`DRAWS` random draws each (columns)."""
    rows = []
    for label, entry in transform_registry().items():
        if label.startswith("Corruption["):  # the corruptions have their own grid
            continue
        aug = entry.build(image.shape, seed=0, p=1.0) if "p" in entry.kwargs else entry.build(image.shape, seed=0)
        out = aug(image.unsqueeze(0).expand(DRAWS, -1, -1, -1).contiguous())
        rows.append((label, [image, *out.unbind(0)]))
    return _grid(rows, ["clean", *(f"draw {k + 1}" for k in range(DRAWS))], label_width=170)


def build(out_dir: str | Path, mode: str = "full") -> str:
    """Write the gallery PNGs into ``out_dir`` (``mode``: ``full``, ``small`` or ``0``: none); return the page."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    lines = [
        "# Gallery",
        "",
        "Drawn when the site is built (`docs/_scripts/gallery.py`), from the built-in test image",
        "(`augrobust.testimage.test_image`) and a photograph shipped with scikit-image (`skimage.data.chelsea`).",
        "Corruptions use the default `imagenet` severity table and the `imagecorruptions` reference; uint8 in,",
        "uint8 out, as a `DataLoader` would see them.",
        "",
    ]
    if mode == "0":
        return "\n".join([*lines, "*This build skipped the pictures (`AUGROBUST_DOCS_GALLERY=0`).*", ""])
    size = 64 if mode == "small" else 224
    images = {"testimage": ("the built-in test image", test_image(size)), "photo": ("the photograph", _photo(size))}
    sections = [
        ("corruptions", "Every corruption at every severity", corruption_grid),
        ("transforms", "Every noise and frequency transform (four random draws each)", transform_grid),
    ]
    for kind, title, draw in sections:
        lines += [f"## {title}", ""]
        for key, (caption, image) in images.items():
            name = f"{kind}_{key}.png"
            start = time.perf_counter()
            draw(image).save(out / name)
            lines += [f"On {caption} ({size} px, drawn in {time.perf_counter() - start:.1f} s):", "",
                      f"![{kind} on {caption}](gallery/{name})", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--mode", choices=("full", "small", "0"), default="full")
    args = parser.parse_args()
    print(build(args.out_dir, args.mode))
