"""Datasets: a built-in synthetic set, CIFAR-10/100 pickles, image folders and CIFAR-10-C-style ``.npy`` files.

Every dataset yields ``(image, label)`` with ``image`` a ``uint8`` tensor ``(3, H, W)`` and ``label`` an int.
"""

from __future__ import annotations

from augrobust.data._common import DatasetFileNotFoundError
from augrobust.data.cifar import CIFAR10, CIFAR100
from augrobust.data.folder import ImageFolderDataset
from augrobust.data.npy import CorruptedNpyDataset, available_npy_corruptions
from augrobust.data.synthetic import SYNTHETIC_CLASSES, SyntheticShapes

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "SYNTHETIC_CLASSES",
    "CorruptedNpyDataset",
    "DatasetFileNotFoundError",
    "ImageFolderDataset",
    "SyntheticShapes",
    "available_npy_corruptions",
]
