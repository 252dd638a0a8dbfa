"""Helpers shared by the dataset readers: the missing-file error and path checks."""

from __future__ import annotations

import os
from pathlib import Path

from augrobust.errors import AugrobustFileNotFoundError

__all__ = ["DatasetFileNotFoundError", "require_dir", "require_file"]


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
