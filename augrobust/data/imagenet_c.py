"""Readers of the released, pre-corrupted benchmarks: ImageNet-C, Tiny-ImageNet-C, CIFAR-10-C, CIFAR-100-C.

A *benchmark* (:class:`CorruptedBenchmark`) is a set of test sets, one per (corruption, severity); the
evaluation (:func:`augrobust.evaluate`) reads each instead of corrupting clean images, and reports in the
same schema.

* :class:`ImageNetC`: the released tree ``root/<corruption>/<severity>/<wnid>/<image>.JPEG`` (the tars also
  extract as ``root/<family>/<corruption>/...``, which is accepted). Each image is centre-cropped to 224 as
  the reference's ``ImageNet-C/test.py`` does (``CenterCrop(224)``; the released images are already 224, so
  this only matters for other trees); labels are the index of the wnid among the sorted wnid folders, as
  torchvision's ``ImageFolder`` gives them, or among ``classes`` when given. An optional list of image ids
  (``<wnid>/<file>`` per line, as RobustBench's 5,000-image subset) restricts every test set to those images.
* :class:`TinyImageNetC`: the same tree at 64 px (crop 64).
* :class:`CIFARC`: CIFAR-10-C / CIFAR-100-C ``<corruption>.npy`` files (:class:`~augrobust.data.CorruptedNpyDataset`).

Every error names the path: a missing root or severity folder, a folder that is no known corruption, an
image list entry that is not in the tree, an image that does not decode.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from augrobust._checks import check_count, check_severity
from augrobust._corruption_names import CORRUPTION_ORDER
from augrobust.data._common import DatasetFileNotFoundError, read_rgb, require_dir
from augrobust.data.npy import CorruptedNpyDataset, available_npy_corruptions
from augrobust.errors import AugrobustValueError

__all__ = ["CIFARC", "CorruptedBenchmark", "ImageNetC", "ImageNetCFolder", "TinyImageNetC", "read_image_ids"]

#: The family folders the released tars extract into (``noise.tar`` -> ``noise/gaussian_noise/...``).
_FAMILY_FOLDERS = ("noise", "blur", "weather", "digital", "extra")
_IMAGE_ENDINGS = (".jpeg", ".jpg", ".png")


class CorruptedBenchmark:
    """Pre-corrupted test sets, one per (corruption, severity) (the interface :func:`augrobust.evaluate` reads).

    Attributes:
        spec: a short description (``imagenet-c:/data/ImageNet-C``), kept in the report.
        preset: the severity table the files were made with (``imagenet``, ``tinyimagenet``, ``cifar``).
        layout: where the files of one corruption are, for error messages.
    """

    spec: str = ""
    preset: str = "imagenet"
    layout: str = "<corruption>/<severity>/<class>/<image>"

    def corruptions(self) -> list[str]:
        """The corruptions present, in benchmark order."""
        raise NotImplementedError

    def dataset(self, corruption: str, severity: int, num_classes: int | None = None) -> Dataset[Any]:
        """The test set of ``corruption`` at ``severity``: ``(uint8 tensor (3, H, W), int label)`` items."""
        raise NotImplementedError

    def fingerprint(self, corruptions: Sequence[str], severities: Sequence[int]) -> dict[str, Any]:
        """What identifies the files read (for a resumed evaluation to refuse other files)."""
        raise NotImplementedError


def read_image_ids(path: str | os.PathLike[str]) -> list[str]:
    """The image ids of a list file: one ``<wnid>/<file>`` (or bare ``<file>``) per line; blank lines and
    ``#`` comments are skipped.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        ...     _ = f.write("# subset\\nn01440764/a.JPEG\\n\\nb.JPEG\\n")
        >>> read_image_ids(f.name)
        ['n01440764/a.JPEG', 'b.JPEG']
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetFileNotFoundError(f"image id list not found: {str(p)!r}.")
    ids = [ln.strip() for ln in p.read_text().splitlines()]
    ids = [i for i in ids if i and not i.startswith("#")]
    if not ids:
        raise AugrobustValueError(f"the image id list {str(p)!r} is empty; give one <wnid>/<file> per line.")
    return ids


def _center_crop(im: Image.Image, size: int, path: Path) -> Image.Image:
    w, h = im.size
    if (w, h) == (size, size):
        return im
    if w < size or h < size:
        raise AugrobustValueError(
            f"image {str(path)!r} is {w} x {h}, smaller than the {size} x {size} centre crop; this is not an "
            "ImageNet-C-format tree of that size (give crop= its image size)."
        )
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))  # torchvision's CenterCrop
    return im.crop((left, top, left + size, top + size))


class ImageNetCFolder(Dataset[tuple[torch.Tensor, int]]):
    """One corruption at one severity of an ImageNet-C tree: ``folder/<wnid>/<image>``, centre-cropped.

    Args:
        folder: ``root/<corruption>/<severity>``.
        classes: the class (wnid) folder names in label order.
        crop: the side of the centre crop.
        image_ids: keep only these ``<wnid>/<file>`` (or ``<file>``) images, in this order.

    Raises:
        DatasetFileNotFoundError: ``folder`` is missing.
        AugrobustValueError: a wnid folder not in ``classes``, no image, an id not in the folder, an
            undecodable image (on access; the message names the file).
    """

    def __init__(
        self, folder: Path, classes: Sequence[str], *, crop: int, image_ids: Sequence[str] | None = None
    ) -> None:
        if not folder.is_dir():
            raise DatasetFileNotFoundError(
                f"severity folder not found: {str(folder)!r} (expected <root>/<corruption>/<severity>/<wnid>/*.JPEG)."
            )
        index = {c: i for i, c in enumerate(classes)}
        self.folder, self.crop, self.classes = folder, crop, list(classes)
        samples: list[tuple[Path, int]] = []
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if sub.name not in index:
                raise AugrobustValueError(
                    f"class folder {str(sub)!r} is not one of the {len(classes)} classes ({', '.join(classes[:3])}, "
                    "...); every severity folder must hold the same wnid folders."
                )
            samples += [
                (p, index[sub.name])
                for p in sorted(sub.iterdir())
                if p.is_file() and p.suffix.lower() in _IMAGE_ENDINGS
            ]
        if not samples:
            raise AugrobustValueError(f"no images (.JPEG) under {str(folder)!r}; expected <wnid>/<image>.JPEG.")
        if image_ids is not None:
            by_id: dict[str, tuple[Path, int]] = {}
            for p, label in samples:
                by_id[f"{p.parent.name}/{p.name}"] = (p, label)
                by_id.setdefault(p.name, (p, label))
            missing = [i for i in image_ids if i not in by_id]
            if missing:
                raise AugrobustValueError(
                    f"{len(missing)} listed image ids are not under {str(folder)!r} (e.g. {missing[:3]}); give a list "
                    "of this tree's images (<wnid>/<file> per line)."
                )
            samples = [by_id[i] for i in image_ids]
        self.samples = samples
        self.targets = [label for _, label in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return read_rgb(path, lambda im: _center_crop(im, self.crop, path)), label


class ImageNetC(CorruptedBenchmark):
    """The released ImageNet-C tree (see the module notes).

    Args:
        root: the folder holding ``<corruption>/`` (or ``<family>/<corruption>/``) folders.
        crop: centre-crop side (224, as the reference's test script).
        image_ids: a list file (or a list) of ``<wnid>/<file>`` ids to evaluate, e.g. RobustBench's 5,000.
        classes: the wnids in label order (default: the sorted wnid folders of the tree, as ``ImageFolder``).

    Raises:
        DatasetFileNotFoundError: ``root`` is missing.
        AugrobustValueError: a folder that is no known corruption (its path named), no corruption folder.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> d = tempfile.mkdtemp()
        >>> os.makedirs(f"{d}/fog/1/n01"); Image.new("RGB", (224, 224)).save(f"{d}/fog/1/n01/a.JPEG")
        >>> bench = ImageNetC(d)
        >>> bench.corruptions(), tuple(bench.dataset("fog", 1)[0][0].shape)
        (['fog'], (3, 224, 224))
    """

    preset = "imagenet"
    _kind = "imagenet-c"
    _default_crop = 224

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        crop: int | None = None,
        image_ids: str | os.PathLike[str] | Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        base = require_dir(root, f"{self._kind} dataset")
        self.root = base
        self.crop = check_count(self._default_crop if crop is None else crop, "crop", minimum=1)
        self.spec = f"{self._kind}:{base}"
        if isinstance(image_ids, (str, os.PathLike)):
            image_ids = read_image_ids(image_ids)
        self.image_ids = None if image_ids is None else list(image_ids)
        self._folders: dict[str, Path] = {}
        for p in sorted(base.iterdir()):
            if not p.is_dir() or p.name.startswith("."):
                continue
            if p.name in CORRUPTION_ORDER:
                self._folders[p.name] = p
            elif p.name in _FAMILY_FOLDERS:
                for q in sorted(p.iterdir()):
                    if q.is_dir() and not q.name.startswith("."):
                        if q.name not in CORRUPTION_ORDER:
                            raise AugrobustValueError(self._unknown(q))
                        self._folders[q.name] = q
            else:
                raise AugrobustValueError(self._unknown(p))
        if not self._folders:
            raise AugrobustValueError(
                f"no corruption folders in {str(base)!r}; expected {self._kind} folders such as "
                f"{str(base / 'gaussian_noise' / '1')!r}/<wnid>/*.JPEG."
            )
        self._classes = None if classes is None else list(classes)
        self._datasets: dict[tuple[str, int], ImageNetCFolder] = {}

    def _unknown(self, path: Path) -> str:
        return (
            f"folder {str(path)!r} is not an ImageNet-C corruption; a {self._kind} tree holds only "
            f"<corruption>/<severity>/<wnid>/ folders with the 19 names ({', '.join(CORRUPTION_ORDER[:3])}, ...). "
            "Move it out of the tree."
        )

    def corruptions(self) -> list[str]:
        return [n for n in CORRUPTION_ORDER if n in self._folders]

    def _folder(self, corruption: str, severity: int) -> Path:
        if corruption not in self._folders:
            raise DatasetFileNotFoundError(
                f"no folder for corruption {corruption!r} in {str(self.root)!r}; available: "
                f"{', '.join(self.corruptions())}."
            )
        return self._folders[corruption] / str(check_severity(severity))

    def classes(self) -> list[str]:
        """The wnids in label order: as given, else the sorted wnid folders of the first test set."""
        if self._classes is None:
            first = self._folder(self.corruptions()[0], 1)
            for sev in range(1, 6):
                first = self._folder(self.corruptions()[0], sev)
                if first.is_dir():
                    break
            if not first.is_dir():
                raise DatasetFileNotFoundError(f"no severity folder 1..5 in {str(first.parent)!r}.")
            self._classes = sorted(p.name for p in first.iterdir() if p.is_dir() and not p.name.startswith("."))
        return self._classes

    def dataset(self, corruption: str, severity: int, num_classes: int | None = None) -> ImageNetCFolder:
        classes = self.classes()
        if num_classes is not None and len(classes) > check_count(num_classes, "num_classes", minimum=1):
            raise AugrobustValueError(
                f"{str(self.root)!r} has {len(classes)} class folders but the model has {num_classes} classes; "
                "evaluate a model with the tree's classes."
            )
        key = (corruption, int(severity))
        if key not in self._datasets:  # listing a 50,000-image folder once is enough
            self._datasets[key] = ImageNetCFolder(
                self._folder(corruption, severity), classes, crop=self.crop, image_ids=self.image_ids
            )
        return self._datasets[key]

    def fingerprint(self, corruptions: Sequence[str], severities: Sequence[int]) -> dict[str, Any]:
        # The listed names and labels, and the sizes of each folder's first and last file: one stat per
        # folder, not per image (ImageNet-C has 4.75 million files).
        h = hashlib.sha256()
        for name in corruptions:
            for s in severities:
                samples = self.dataset(name, s).samples
                for p, label in samples:
                    h.update(f"{p.parent.name}/{p.name}:{label}\n".encode())
                for p, _ in (samples[0], samples[-1]):
                    h.update(f"{p.relative_to(self.root)}:{p.stat().st_size}\n".encode())
        return {"spec": self.spec, "crop": self.crop, "files_sha256": h.hexdigest()}


class TinyImageNetC(ImageNetC):
    """Tiny-ImageNet-C: the ImageNet-C tree layout at 64 px (crop 64); see :class:`ImageNetC`."""

    preset = "tinyimagenet"
    _kind = "tinyimagenet-c"
    _default_crop = 64


class CIFARC(CorruptedBenchmark):
    """CIFAR-10-C / CIFAR-100-C: ``root/<corruption>.npy`` and ``root/labels.npy``.

    Example:
        >>> import tempfile, numpy as np
        >>> d = tempfile.mkdtemp()
        >>> np.save(f"{d}/fog.npy", np.zeros((10, 32, 32, 3), np.uint8)); np.save(f"{d}/labels.npy", np.arange(2))
        >>> bench = CIFARC(d)
        >>> bench.corruptions(), len(bench.dataset("fog", 5))
        (['fog'], 2)
    """

    preset = "cifar"
    layout = "<corruption>.npy"

    def __init__(self, root: str | os.PathLike[str], *, kind: str = "cifar10-c") -> None:
        self.root = require_dir(root, f"{kind} dataset")
        self.spec = f"{kind}:{self.root}"
        names = available_npy_corruptions(self.root)
        order = {n: i for i, n in enumerate(CORRUPTION_ORDER)}
        self._names = sorted(names, key=lambda n: (order.get(n, len(order)), n))
        if not self._names:
            raise DatasetFileNotFoundError(f"no <corruption>.npy file in {str(self.root)!r}.")

    def corruptions(self) -> list[str]:
        return list(self._names)

    def dataset(self, corruption: str, severity: int, num_classes: int | None = None) -> CorruptedNpyDataset:
        return CorruptedNpyDataset(self.root, corruption, severity, num_classes=num_classes)

    def fingerprint(self, corruptions: Sequence[str], severities: Sequence[int]) -> dict[str, Any]:
        h = hashlib.sha256()
        for f in sorted({*(f"{n}.npy" for n in corruptions), "labels.npy"}):
            path = self.root / f
            size = path.stat().st_size
            with path.open("rb") as fh:
                h.update(f.encode() + str(size).encode() + fh.read(2**20))
                fh.seek(max(size - 2**20, 0))
                h.update(fh.read(2**20))
        return {"spec": self.spec, "files_sha256": h.hexdigest()}
