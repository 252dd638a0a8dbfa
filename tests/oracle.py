"""The fidelity oracle: ``imagecorruptions`` 1.1.2, made importable on current stacks.

Shims (test code only, never in the library):
* NumPy 2 removed ``np.float_``; fog uses it.
* scikit-image removed ``multichannel=``; ``gaussian`` is called with ``multichannel=True`` in
  glass_blur and gaussian_blur, which means ``channel_axis=-1``.
* ``pkg_resources`` (frost textures) comes from ``setuptools<81``, a dev dependency.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

if not hasattr(np, "float_"):
    np.float_ = np.float64  # type: ignore[attr-defined]

import skimage.filters

_gaussian = skimage.filters.gaussian


@functools.wraps(_gaussian)
def _gaussian_compat(*args, multichannel=None, **kwargs):
    if multichannel is not None and "channel_axis" not in kwargs:
        kwargs["channel_axis"] = -1 if multichannel else None
    return _gaussian(*args, **kwargs)


skimage.filters.gaussian = _gaussian_compat

imagecorruptions = pytest.importorskip("imagecorruptions")
from imagecorruptions import corruptions as ic_corruptions  # noqa: E402

ic_corruptions.gaussian = _gaussian_compat  # the module imported the name before the shim


def real_photos() -> dict[str, np.ndarray]:
    """Colour photographs that ship with scikit-image (uint8 HWC RGB)."""
    import skimage.data

    return {
        "astronaut": skimage.data.astronaut(),
        "coffee": skimage.data.coffee(),
        "chelsea": skimage.data.chelsea(),
        "rocket": skimage.data.rocket(),
    }


def photo(name: str = "astronaut", size: tuple[int, int] = (224, 224)) -> np.ndarray:
    """A real photograph resized (PIL bilinear) to ``size = (H, W)``, uint8 HWC."""
    from PIL import Image

    img = Image.fromarray(real_photos()[name]).resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8).copy()


def oracle_corrupt(image: np.ndarray, name: str, severity: int, seed: int | None = None) -> np.ndarray:
    """Run the oracle on a uint8 HWC image; ``seed`` seeds NumPy's global RNG first."""
    if seed is not None:
        np.random.seed(seed)
    return imagecorruptions.corrupt(image, severity=severity, corruption_name=name)
