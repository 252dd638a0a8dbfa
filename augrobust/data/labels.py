"""Label checks shared by the dataset readers and the evaluation: integer labels in ``0..num_classes-1``.

A label outside the classes of the model cannot be predicted: evaluated anyway, it counts as an error and
turns a wrong file into a plausible-looking number. Every reader checks its labels against the dataset's
classes (and against ``num_classes`` when given), and :func:`augrobust.evaluation.evaluate_corruptions`
checks them against the model's classes before any compute.

Example:
    >>> check_labels([0, 3, 9], 10, source="labels.npy").tolist()
    [0, 3, 9]
    >>> from torch.utils.data import Subset
    >>> from augrobust.data import SyntheticShapes
    >>> dataset_targets(Subset(SyntheticShapes(12), range(3, 6))).tolist()
    [3, 4, 5]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from augrobust.errors import AugrobustTypeError, AugrobustValueError

__all__ = ["check_labels", "dataset_targets"]


def check_labels(
    labels: Any,
    num_classes: int | None,
    *,
    source: str,
    classes_of: str = "the dataset",
    fix: str = "fix the labels or give the matching number of classes",
) -> np.ndarray:
    """Return ``labels`` as a 1-D ``int64`` array, or raise naming ``source`` and how to fix it.

    Args:
        labels: a sequence or array of labels.
        num_classes: the labels must be below it (``None``: only checked to be ``>= 0``).
        source: the file or dataset the labels come from, named in the error.
        classes_of: whose classes ``num_classes`` counts ("the dataset", "the model").
        fix: the remedy appended to the error.

    Raises:
        AugrobustTypeError: the labels are not integers.
        AugrobustValueError: not one label per item (not 1-D), or a label outside ``0..num_classes-1``.
    """
    array = np.asarray(labels)
    if array.ndim != 1:
        raise AugrobustValueError(
            f"{source}: labels must be a 1-D list of integers (one per image), got shape {array.shape}; {fix}."
        )
    if array.size and (array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer)):
        raise AugrobustTypeError(
            f"{source}: labels must be integers (class indices), got dtype {array.dtype}; {fix}."
        )
    array = array.astype(np.int64, copy=False)
    if not array.size:
        return array
    high = None if num_classes is None else int(num_classes)
    bad = (array < 0) if high is None else ((array < 0) | (array >= high))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        allowed = ">= 0" if high is None else f"in 0..{high - 1} ({high} classes of {classes_of})"
        raise AugrobustValueError(
            f"{source}: labels must be {allowed}; found {int(bad.sum())} outside, from {int(array.min())} to "
            f"{int(array.max())} (the first at index {first}: {int(array[first])}); {fix}."
        )
    return array


def dataset_targets(dataset: Dataset[Any]) -> np.ndarray | None:
    """The labels of ``dataset`` without reading its images, or ``None`` when it does not expose them.

    Reads a ``targets`` attribute (every augrobust reader, torchvision's datasets), through ``Subset`` too.
    """
    if isinstance(dataset, Subset):
        inner = dataset_targets(dataset.dataset)
        return None if inner is None else inner[np.asarray(list(dataset.indices), dtype=np.int64)]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    if isinstance(targets, torch.Tensor):
        targets = targets.cpu().numpy()
    return np.asarray(targets)
