"""Image-folder dataset: one subfolder per class, any image format PIL decodes."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from augrobust._checks import check_count
from augrobust.data._common import read_rgb, require_dir
from augrobust.errors import AugrobustValueError

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataset"]

#: File name endings treated as images (case-insensitive); other files are ignored.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class ImageFolderDataset(Dataset[tuple[torch.Tensor, int]]):
    """Images in ``root/<class>/<file>``: items are ``(uint8 tensor (3, H, W), int label)``.

    Classes are the subfolder names in sorted order (as torchvision's ``ImageFolder``); images are
    converted to RGB.

    Args:
        root: folder with one subfolder per class.
        size: if given, every image is resized (bilinear, antialiased) to ``size x size`` (or ``(H, W)``) so that
            images of different sizes can be batched.
        num_classes: the classes of the model the data is for: more class folders than that is an error.

    Raises:
        DatasetFileNotFoundError: ``root`` does not exist.
        AugrobustValueError: no class folder or no image under ``root``, more class folders than
            ``num_classes``, or an undecodable image (on access).

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> from augrobust.data import ImageFolderDataset
        >>> d = tempfile.mkdtemp()
        >>> os.makedirs(f"{d}/cat"); Image.new("RGB", (40, 30)).save(f"{d}/cat/a.png")
        >>> ds = ImageFolderDataset(d)
        >>> ds.classes, tuple(ds[0][0].shape), ds[0][1]
        (['cat'], (3, 30, 40), 0)
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        size: int | tuple[int, int] | None = None,
        num_classes: int | None = None,
    ) -> None:
        base = require_dir(root, "image folder")
        if num_classes is not None:
            num_classes = check_count(num_classes, "num_classes", minimum=1)
        self.root = base
        self.classes: list[str] = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not self.classes:
            raise AugrobustValueError(
                f"no class subfolders in {str(base)!r}; expected root/<class>/<image files>."
            )
        self.samples: list[tuple[Path, int]] = []
        for label, name in enumerate(self.classes):
            for p in sorted((base / name).rglob("*")):
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                    self.samples.append((p, label))
        if not self.samples:
            raise AugrobustValueError(
                f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {str(base)!r}."
            )
        if num_classes is not None and len(self.classes) > num_classes:
            raise AugrobustValueError(
                f"{str(base)!r} has {len(self.classes)} class folders but the model has {num_classes} classes: "
                f"the images of {self.classes[num_classes:][:5]} would get labels {num_classes}.."
                f"{len(self.classes) - 1}, which it cannot predict; keep only the model's classes in the folder."
            )
        self.targets = [label for _, label in self.samples]
        if isinstance(size, int):
            size = (size, size)
        if size is not None:
            if not isinstance(size, tuple) or len(size) != 2:
                raise AugrobustValueError(f"size must be an int or a pair (H, W), got {size!r}.")
            size = (check_count(size[0], "size", minimum=1), check_count(size[1], "size", minimum=1))
        self.size = size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return read_rgb(path, self._resize), label

    def _resize(self, im: Image.Image) -> Image.Image:
        if self.size is None or im.size == (self.size[1], self.size[0]):
            return im
        return im.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
