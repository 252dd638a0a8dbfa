"""One parser for the data specs every command accepts (``--data``): :func:`from_spec`.

=================  ================================================================================
spec               dataset
=================  ================================================================================
``synthetic``      :class:`SyntheticShapes`: 10,000 training images, 2,000 test images
``synthetic:N``    :class:`SyntheticShapes`: N training images, ``max(N // 5, 1)`` test images
``cifar10:DIR``    :class:`CIFAR10` from the unpacked ``cifar-10-batches-py`` folder (or its parent)
``cifar100:DIR``   :class:`CIFAR100` from the unpacked ``cifar-100-python`` folder (or its parent)
``folder:DIR``     :class:`ImageFolderDataset`: ``DIR/<class>/<image>``, the same folder for either split
``imagenet-c:DIR``      :class:`~augrobust.data.ImageNetC`: the released ImageNet-C tree (test only)
``tinyimagenet-c:DIR``  :class:`~augrobust.data.TinyImageNetC`: Tiny-ImageNet-C (test only)
``cifar10-c:DIR``       :class:`~augrobust.data.CIFARC`: CIFAR-10-C ``<corruption>.npy`` files (test only)
``cifar100-c:DIR``      :class:`~augrobust.data.CIFARC`: CIFAR-100-C (test only)
=================  ================================================================================

The last four are pre-corrupted benchmarks (:class:`~augrobust.data.CorruptedBenchmark`), not datasets: they
are read by the evaluation and have no training split.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset, Subset

from augrobust._checks import check_bool, check_count, closest
from augrobust.data.cifar import CIFAR10, CIFAR100
from augrobust.data.folder import ImageFolderDataset
from augrobust.data.imagenet_c import CIFARC, CorruptedBenchmark, ImageNetC, TinyImageNetC
from augrobust.data.synthetic import SyntheticShapes
from augrobust.errors import AugrobustTypeError, AugrobustValueError

__all__ = ["DATA_SPECS", "SYNTHETIC_TRAIN_IMAGES", "from_spec"]

#: The spec forms :func:`from_spec` accepts, as shown in errors and help texts.
DATA_SPECS: tuple[str, ...] = (
    "synthetic", "synthetic:N", "cifar10:DIR", "cifar100:DIR", "folder:DIR",
    "imagenet-c:DIR", "tinyimagenet-c:DIR", "cifar10-c:DIR", "cifar100-c:DIR",
)  # fmt: skip

#: Training images of ``synthetic`` without ``:N`` (the test split has a fifth of it).
SYNTHETIC_TRAIN_IMAGES = 10_000


class _Head(Subset):  # type: ignore[type-arg]
    """The first ``n`` items of a dataset, keeping its ``classes`` and ``targets``."""

    def __init__(self, dataset: Dataset[Any], n: int) -> None:
        super().__init__(dataset, range(n))
        self.classes = getattr(dataset, "classes", None)
        targets = getattr(dataset, "targets", None)
        self.targets = None if targets is None else list(targets[:n])


def from_spec(
    spec: str,
    *,
    train: bool,
    seed: int = 0,
    image_size: int | None = None,
    num_images: int | None = None,
    num_classes: int | None = None,
    benchmarks: bool = False,
) -> Dataset[Any] | CorruptedBenchmark:
    """The dataset (or pre-corrupted benchmark) a ``--data`` spec names (see :data:`DATA_SPECS` and the module's table).

    Args:
        spec: ``synthetic``, ``synthetic:N``, ``cifar10:DIR``, ``cifar100:DIR`` or ``folder:DIR``.
        train: the training split (else the test split); a ``folder`` is the same for both.
        seed: the synthetic images' seed (files ignore it).
        image_size: synthetic image side (default 32) or the side every folder image is resized to (default:
            no resize); CIFAR images are 32 px, another size is an error.
        num_images: keep the first ``num_images`` images only (for ``synthetic``: exactly that many, the
            split's images being the same whatever its length).
        num_classes: the classes of the model the data is for: labels outside them are an error now rather
            than a wrong number later.
        benchmarks: accept the pre-corrupted ``*-c`` specs (the evaluation does; training and the DFM sweep,
            which need clean images, do not).

    Returns:
        A dataset of ``(uint8 tensor (3, H, W), int label)`` with ``classes`` and ``targets``; for the
        ``*-c`` specs a :class:`~augrobust.data.CorruptedBenchmark` (``train=False`` only).

    Raises:
        AugrobustValueError: an unknown spec (the valid ones are listed), a missing ``DIR``, a bad ``N``, or
            what the reader raises for the files (a missing folder is a ``DatasetFileNotFoundError``).

    Example:
        >>> from augrobust.data import from_spec
        >>> len(from_spec("synthetic:50", train=True)), len(from_spec("synthetic:50", train=False))
        (50, 10)
        >>> len(from_spec("synthetic", train=False)), len(from_spec("synthetic", train=False, num_images=8))
        (2000, 8)
        >>> import tempfile, numpy as np
        >>> d = tempfile.mkdtemp(); np.save(f"{d}/fog.npy", np.zeros((5, 32, 32, 3), np.uint8))
        >>> np.save(f"{d}/labels.npy", np.zeros(1, np.int64))
        >>> from_spec(f"cifar10-c:{d}", train=False, benchmarks=True).corruptions()
        ['fog']
    """
    if not isinstance(spec, str):
        raise AugrobustTypeError(f"a data spec must be a string such as 'cifar10:/data/cifar', got {spec!r}.")
    train = check_bool(train, "train")
    seed = check_count(seed, "seed")
    if image_size is not None:
        image_size = check_count(image_size, "image_size", minimum=1)
    if num_images is not None:
        num_images = check_count(num_images, "num_images", minimum=1)
    if num_classes is not None:
        num_classes = check_count(num_classes, "num_classes", minimum=1)
    kind, sep, arg = spec.partition(":")
    if kind not in _BUILDERS and kind not in _BENCHMARKS:
        raise AugrobustValueError(
            f"unknown data spec {spec!r}{closest(kind, [*_BUILDERS, *_BENCHMARKS])}; valid: {', '.join(DATA_SPECS)}."
        )
    if kind in _NEEDS_FOLDER and not arg:
        raise AugrobustValueError(f"data spec {spec!r} needs a folder: write '{kind}:DIR' (e.g. '{kind}:/data/x').")
    if kind in _BENCHMARKS:
        if not benchmarks:
            raise AugrobustValueError(
                f"{spec!r} is a pre-corrupted test benchmark: only the evaluation (augrobust eval, "
                "augrobust.evaluate) reads it; this needs clean images (e.g. 'cifar10:DIR')."
            )
        if train:
            raise AugrobustValueError(
                f"{spec!r} is a corrupted test benchmark; it has no training split. Train on the clean data "
                "(e.g. 'cifar10:DIR') and evaluate on it with `augrobust eval`."
            )
        if image_size is not None or num_images is not None:
            raise AugrobustValueError(
                f"{spec!r} holds pre-made files of a fixed size and set: image_size / num_images (--image-size, "
                "--num-images) do not apply; to evaluate a subset of ImageNet-C give an image id list "
                "(augrobust.data.ImageNetC(root, image_ids=...))."
            )
        return _BENCHMARKS[kind](arg, kind)
    ds = _BUILDERS[kind](
        spec, arg if sep else None, train=train, seed=seed, image_size=image_size, num_classes=num_classes,
        num_images=num_images,
    )  # fmt: skip
    if kind not in _EXACT_LENGTH and num_images is not None and num_images < len(ds):  # type: ignore[arg-type]
        ds = _Head(ds, num_images)
    return ds


def _synthetic(
    spec: str, arg: str | None, *, train: bool, seed: int, image_size: int | None, num_classes: int | None,
    num_images: int | None,
) -> Dataset[Any]:  # fmt: skip
    if arg is None:
        n_train = SYNTHETIC_TRAIN_IMAGES
    else:
        try:
            n_train = int(arg)
        except ValueError:
            n_train = 0
        if n_train < 1:
            raise AugrobustValueError(
                f"bad data spec {spec!r}: 'synthetic:N' needs a positive integer N (e.g. 'synthetic:5000')."
            )
    n = n_train if train else max(n_train // 5, 1)
    if num_images is not None:  # the split's images do not depend on its length: exactly num_images of them
        n = num_images
    ds = SyntheticShapes(n, seed=seed, train=train, size=image_size or 32)
    if num_classes is not None and num_classes < len(ds.classes):
        # Labels cycle through all classes: any model with fewer classes cannot predict some of them.
        raise AugrobustValueError(
            f"the synthetic data has {len(ds.classes)} classes but the model has {num_classes}; use a model with "
            f"{len(ds.classes)} classes."
        )
    return ds


def _cifar(
    spec: str, arg: str | None, *, train: bool, seed: int, image_size: int | None, num_classes: int | None,
    num_images: int | None,
) -> Dataset[Any]:  # fmt: skip
    if image_size not in (None, 32):
        raise AugrobustValueError(
            f"CIFAR images are 32 x 32; image_size={image_size} is not supported for {spec!r} (leave it unset)."
        )
    cls = CIFAR100 if spec.startswith("cifar100:") else CIFAR10
    return cls(arg, train=train, num_classes=num_classes)  # type: ignore[arg-type]


def _folder(
    spec: str, arg: str | None, *, train: bool, seed: int, image_size: int | None, num_classes: int | None,
    num_images: int | None,
) -> Dataset[Any]:  # fmt: skip
    return ImageFolderDataset(arg, size=image_size, num_classes=num_classes)  # type: ignore[arg-type]


# One entry per spec kind (later kinds, e.g. "imagenet-c", add a builder here and a form to DATA_SPECS).
_BUILDERS: dict[str, Callable[..., Dataset[Any]]] = {
    "synthetic": _synthetic,
    "cifar10": _cifar,
    "cifar100": _cifar,
    "folder": _folder,
}
# The pre-corrupted benchmarks: test sets only, read by the evaluation.
_BENCHMARKS: dict[str, Callable[[str, str], CorruptedBenchmark]] = {
    "imagenet-c": lambda root, kind: ImageNetC(root),
    "tinyimagenet-c": lambda root, kind: TinyImageNetC(root),
    "cifar10-c": lambda root, kind: CIFARC(root, kind=kind),
    "cifar100-c": lambda root, kind: CIFARC(root, kind=kind),
}
_NEEDS_FOLDER = frozenset({"cifar10", "cifar100", "folder", *_BENCHMARKS})
_EXACT_LENGTH = frozenset({"synthetic"})  # builders that apply num_images themselves
