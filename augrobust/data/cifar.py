"""Readers for the CIFAR-10 and CIFAR-100 "python version" pickles.

The archives unpack to ``cifar-10-batches-py/`` (``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
``batches.meta``) and ``cifar-100-python/`` (``train``, ``test``, ``meta``). Each file is a pickled dict with
``data``, a ``(N, 3072)`` uint8 array in channel-major order (1024 red, 1024 green, 1024 blue values), and
``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100). The files are read with a restricted unpickler
(:mod:`augrobust._pickle`) that builds only dicts, lists, strings, numbers and NumPy arrays: a crafted file is
refused, it cannot run code. Every batch is checked (shape, dtype, one label per image, labels in range,
not empty) and every error names the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from augrobust._checks import check_count
from augrobust._pickle import safe_pickle_load
from augrobust.data._common import DatasetFileNotFoundError, require_dir
from augrobust.data.labels import check_labels
from augrobust.errors import AugrobustValueError

__all__ = ["CIFAR10", "CIFAR100"]


def _get(d: dict[Any, Any], key: str) -> Any:
    # The official pickles are Python 2 dicts with bytes keys; files re-pickled in Python 3 use str keys.
    if key in d:
        return d[key]
    return d.get(key.encode())


def _load_pickle(path: Path, what: str) -> dict[Any, Any]:
    obj = safe_pickle_load(path, what=what)
    if not isinstance(obj, dict):
        raise AugrobustValueError(
            f"{str(path)!r} holds a {type(obj).__name__}, expected a {what} dict; use the files of the official "
            "python-version archive."
        )
    return obj


class _CIFARPickles(Dataset[tuple[torch.Tensor, int]]):
    _subdir: str
    _train_files: Sequence[str]
    _test_files: Sequence[str]
    _label_key: str
    _meta_file: str
    _names_key: str
    _num_classes: int

    def __init__(self, root: str | os.PathLike[str], train: bool = True, *, num_classes: int | None = None) -> None:
        name = type(self).__name__
        root_dir = require_dir(root, name)
        # Accept the unpacked folder itself or its parent.
        base = root_dir / self._subdir if (root_dir / self._subdir).is_dir() else root_dir
        names = self._train_files if train else self._test_files
        missing = [n for n in names if not (base / n).is_file()]
        if missing:
            raise DatasetFileNotFoundError(
                f"{name}: missing {missing} in {str(base)!r}; expected the unpacked "
                f"'{self._subdir}' archive (files {list(names)})."
            )
        limit, classes_of = self._num_classes, f"{name}"
        if num_classes is not None and check_count(num_classes, "num_classes", minimum=1) < limit:
            limit, classes_of = int(num_classes), "the model"
        fix = "re-download and unpack the official python-version archive"
        if classes_of == "the model":
            fix = f"evaluate a model with {self._num_classes} classes on {name}"
        images, labels = [], []
        for n in names:
            path = base / n
            batch = _load_pickle(path, f"{name} batch")
            data, lab = _get(batch, "data"), _get(batch, self._label_key)
            if data is None or lab is None:
                raise AugrobustValueError(
                    f"{str(path)!r} lacks the 'data' or '{self._label_key}' entry of a {name} batch "
                    f"(it has {sorted(map(str, batch))}); {fix}."
                )
            data = np.asarray(data)
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise AugrobustValueError(
                    f"{str(path)!r}: 'data' must be a (N, 3072) uint8 array, got {data.shape} {data.dtype}; {fix}."
                )
            if data.shape[0] == 0:
                raise AugrobustValueError(f"{str(path)!r} holds no images (an empty 'data' array); {fix}.")
            lab = check_labels(lab, limit, source=repr(str(path)), classes_of=classes_of, fix=fix)
            if lab.shape != (data.shape[0],):
                raise AugrobustValueError(
                    f"{str(path)!r}: {data.shape[0]} images but {lab.size} labels; {fix}."
                )
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(lab)
        self.data = torch.from_numpy(np.concatenate(images))  # (N, 3, 32, 32) uint8
        self.targets: list[int] = np.concatenate(labels).tolist()
        self.classes: list[str] = self._read_class_names(base)

    def _read_class_names(self, base: Path) -> list[str]:
        meta = base / self._meta_file
        if meta.is_file():
            names = _get(_load_pickle(meta, f"{type(self).__name__} meta file"), self._names_key)
            if names is not None and len(names) == self._num_classes:
                return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        return [str(i) for i in range(self._num_classes)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.data[index], self.targets[index]


class CIFAR10(_CIFARPickles):
    """CIFAR-10 from the python pickles: items are ``(uint8 tensor (3, 32, 32), int label)``.

    Args:
        root: the ``cifar-10-batches-py`` folder or the folder that contains it.
        train: the 50,000 training images (``data_batch_1..5``) or the 10,000 test images (``test_batch``).
        num_classes: the classes of the model the data is for; labels must also be below it.

    Raises:
        DatasetFileNotFoundError: a batch file is missing (also a ``FileNotFoundError``).
        AugrobustValueError: a file is not a CIFAR batch (wrong shape or dtype, no image, a label count other
            than the image count, a label outside the classes), or a crafted pickle (refused, never run).

    Example:
        >>> import tempfile, pickle, numpy as np
        >>> from augrobust.data import CIFAR10
        >>> d = tempfile.mkdtemp()
        >>> with open(f"{d}/test_batch", "wb") as f:
        ...     pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 5]}, f)
        >>> ds = CIFAR10(d, train=False)
        >>> image, label = ds[1]
        >>> tuple(image.shape), image.dtype, label
        ((3, 32, 32), torch.uint8, 5)
    """

    _subdir = "cifar-10-batches-py"
    _train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    _test_files = ("test_batch",)
    _label_key = "labels"
    _meta_file = "batches.meta"
    _names_key = "label_names"
    _num_classes = 10


class CIFAR100(_CIFARPickles):
    """CIFAR-100 from the python pickles, with the 100 fine labels.

    Args:
        root: the ``cifar-100-python`` folder or the folder that contains it.
        train: the ``train`` file (50,000 images) or the ``test`` file (10,000 images).
        num_classes: the classes of the model the data is for; labels must also be below it.

    Raises:
        DatasetFileNotFoundError: the file is missing.
        AugrobustValueError: as :class:`CIFAR10`.

    Example:
        >>> import tempfile, pickle, numpy as np
        >>> from augrobust.data import CIFAR100
        >>> d = tempfile.mkdtemp()
        >>> with open(f"{d}/train", "wb") as f:
        ...     pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [99]}, f)
        >>> CIFAR100(d)[0][1]
        99
    """

    _subdir = "cifar-100-python"
    _train_files = ("train",)
    _test_files = ("test",)
    _label_key = "fine_labels"
    _meta_file = "meta"
    _names_key = "fine_label_names"
    _num_classes = 100
