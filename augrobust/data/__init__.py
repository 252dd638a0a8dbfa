"""Datasets: a built-in synthetic set, CIFAR-10/100 pickles, image folders and CIFAR-10-C-style ``.npy`` files.

Every dataset yields ``(image, label)`` with ``image`` a ``uint8`` tensor ``(3, H, W)`` and ``label`` an int.
:func:`from_spec` builds one from a ``--data`` spec (``synthetic:N``, ``cifar10:DIR``, ``cifar100:DIR``,
``folder:DIR``) and the pre-corrupted benchmarks (``imagenet-c:DIR``, ``tinyimagenet-c:DIR``,
``cifar10-c:DIR``, ``cifar100-c:DIR``, :mod:`augrobust.data.imagenet_c`). Every reader validates its files
(shape, dtype, not empty, one label per image, labels in range, also against a model's ``num_classes`` when
given) and names the file in its errors.
"""

from __future__ import annotations

from augrobust.data._common import DatasetFileNotFoundError
from augrobust.data.cifar import CIFAR10, CIFAR100
from augrobust.data.folder import ImageFolderDataset
from augrobust.data.generate import GenerateResult, generate_dataset
from augrobust.data.imagenet_c import (
    CIFARC,
    CorruptedBenchmark,
    ImageNetC,
    ImageNetCFolder,
    TinyImageNetC,
    read_image_ids,
)
from augrobust.data.labels import check_labels, dataset_targets
from augrobust.data.npy import CorruptedNpyDataset, available_npy_corruptions
from augrobust.data.spec import DATA_SPECS, from_spec
from augrobust.data.synthetic import SYNTHETIC_CLASSES, SyntheticShapes

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "CIFARC",
    "CorruptedBenchmark",
    "DATA_SPECS",
    "SYNTHETIC_CLASSES",
    "CorruptedNpyDataset",
    "DatasetFileNotFoundError",
    "GenerateResult",
    "ImageFolderDataset",
    "ImageNetC",
    "ImageNetCFolder",
    "SyntheticShapes",
    "TinyImageNetC",
    "available_npy_corruptions",
    "check_labels",
    "dataset_targets",
    "from_spec",
    "generate_dataset",
    "read_image_ids",
]
