"""CIFAR-10-C-style corrupted test sets stored as ``.npy`` files.

Layout (Hendrycks & Dietterich's CIFAR-10-C / CIFAR-100-C, imagenet_c.md 2.2): ``root/<corruption>.npy`` is a
``(5 * N, H, W, 3)`` uint8 array holding the N test images at severity 1, then all N at severity 2, ... 5;
``root/labels.npy`` holds the labels, either ``N`` of them or ``5 * N`` (the released files repeat the N
labels five times). Every file is checked when a dataset is opened (shape, dtype, not empty, label count,
labels ``>= 0`` and below ``num_classes`` when given); every error names the file and says how to fix it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from augrobust._checks import check_count, check_severity
from augrobust.data._common import DatasetFileNotFoundError, require_dir
from augrobust.data.labels import check_labels
from augrobust.errors import AugrobustValueError

__all__ = ["CorruptedNpyDataset", "available_npy_corruptions"]

_LABELS = "labels.npy"
_FIX = (
    "rewrite it in the CIFAR-10-C layout (root/<corruption>.npy: (5*N, H, W, 3) uint8, root/labels.npy: N or 5*N "
    "integers)"
)


def available_npy_corruptions(root: str | os.PathLike[str]) -> list[str]:
    """Names of the corruption files in ``root`` (every ``*.npy`` but ``labels.npy``), sorted."""
    base = require_dir(root, "corrupted .npy dataset")
    return sorted(p.stem for p in base.glob("*.npy") if p.name != _LABELS)


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise AugrobustValueError(f"{str(path)!r} is not a readable .npy array ({e}).") from e


class CorruptedNpyDataset(Dataset[tuple[torch.Tensor, int]]):
    """One corruption at one severity of a CIFAR-10-C-style folder: ``(uint8 tensor (3, H, W), int label)``.

    The array is memory-mapped, so opening all 19 x 5 datasets costs no memory up front.

    Args:
        root: the folder with ``<corruption>.npy`` and ``labels.npy``.
        corruption: a file stem in ``root`` (e.g. ``"gaussian_noise"``).
        severity: 1..5, the block of the stacked array to read.
        num_classes: the classes of the model the data is for: every label must be below it (labels are
            always checked to be ``>= 0``).

    Raises:
        DatasetFileNotFoundError: ``root``, the corruption file (the message lists those available) or
            ``labels.npy`` is missing.
        AugrobustValueError: a severity outside 1..5, an array that is not ``(5N, H, W, 3)`` uint8 with
            ``N >= 1``, a label count other than ``N`` or ``5N``, or a label outside ``0..num_classes-1``.
        AugrobustTypeError: labels that are not integers.

    Example:
        >>> import tempfile, numpy as np
        >>> from augrobust.data import CorruptedNpyDataset
        >>> d = tempfile.mkdtemp()
        >>> np.save(f"{d}/fog.npy", np.arange(5 * 2, dtype=np.uint8).repeat(32 * 32 * 3).reshape(10, 32, 32, 3))
        >>> np.save(f"{d}/labels.npy", np.array([7, 1] * 5))
        >>> ds = CorruptedNpyDataset(d, "fog", severity=3)
        >>> len(ds), int(ds[1][0][0, 0, 0]), ds[1][1]
        (2, 5, 1)
    """

    def __init__(
        self, root: str | os.PathLike[str], corruption: str, severity: int, *, num_classes: int | None = None
    ) -> None:
        base = require_dir(root, "corrupted .npy dataset")
        severity = check_severity(severity)
        if num_classes is not None:
            num_classes = check_count(num_classes, "num_classes", minimum=1)
        path = base / f"{corruption}.npy"
        if not path.is_file():
            available = available_npy_corruptions(base)
            raise DatasetFileNotFoundError(
                f"no file {path.name!r} in {str(base)!r} (unknown corruption {corruption!r}); "
                f"available: {', '.join(available) if available else 'none'}."
            )
        labels_path = base / _LABELS
        if not labels_path.is_file():
            raise DatasetFileNotFoundError(
                f"labels file not found: {str(labels_path)!r}; a CIFAR-10-C-style folder holds labels.npy beside "
                "the <corruption>.npy files."
            )
        images = _load(path)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise AugrobustValueError(
                f"{str(path)!r} must be a (5*N, H, W, 3) uint8 array, got shape {images.shape} dtype {images.dtype}; "
                f"{_FIX}."
            )
        if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
            raise AugrobustValueError(f"{str(path)!r} holds no image (shape {images.shape}); {_FIX}.")
        if images.shape[0] % 5:
            raise AugrobustValueError(
                f"{str(path)!r} has {images.shape[0]} images, not a multiple of 5 (5 severities stacked); {_FIX}."
            )
        n = images.shape[0] // 5
        fix = _FIX if num_classes is None else f"fix {_LABELS}, or evaluate a model whose classes cover them"
        classes_of = "the model"
        labels = check_labels(
            np.asarray(_load(labels_path)), num_classes, source=repr(str(labels_path)), classes_of=classes_of, fix=fix
        )
        if labels.shape[0] == 5 * n:
            labels = labels[(severity - 1) * n : severity * n]
        elif labels.shape[0] != n:
            raise AugrobustValueError(
                f"{str(labels_path)!r} has {labels.shape[0]} labels; {path.name} holds {n} images per severity, "
                f"so expected {n} or {5 * n}; {_FIX}."
            )
        self.corruption = corruption
        self.severity = int(severity)
        self.images = images[(severity - 1) * n : severity * n]
        self.targets: list[int] = labels.tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        hwc = np.array(self.images[index])  # copy out of the memory map
        return torch.from_numpy(hwc).permute(2, 0, 1).contiguous(), self.targets[index]
