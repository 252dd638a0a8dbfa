"""Helpers shared by the dataset readers: the missing-file error and path checks."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from augrobust.errors import AugrobustFileNotFoundError, AugrobustValueError

__all__ = ["DatasetFileNotFoundError", "read_rgb", "require_dir", "require_file"]


class DatasetFileNotFoundError(AugrobustFileNotFoundError):
    """A dataset file or directory does not exist (also a ``FileNotFoundError``)."""


def require_dir(path: str | os.PathLike[str], what: str) -> Path:
    """Return ``path`` as a :class:`Path`, or raise :class:`DatasetFileNotFoundError` naming it."""
    p = Path(path)
    if not p.is_dir():
        raise DatasetFileNotFoundError(f"{what} directory not found: {str(p)!r}.")
    return p


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise :class:`DatasetFileNotFoundError` naming it."""
    if not path.is_file():
        raise DatasetFileNotFoundError(f"{what} not found: {str(path)!r}.")
    return path


def read_rgb(path: Path, prepare: Callable[[Image.Image], Image.Image] | None = None) -> torch.Tensor:
    """Decode ``path`` as RGB, apply ``prepare`` (a resize or crop) and return a ``(3, H, W)`` uint8 tensor.

    Raises:
        AugrobustValueError: the file cannot be decoded (the message names it).
    """
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
            arr = np.array(prepare(rgb) if prepare is not None else rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise AugrobustValueError(f"cannot decode image {str(path)!r}: {e}") from e
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
