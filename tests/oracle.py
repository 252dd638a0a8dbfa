"""The fidelity oracle: ``imagecorruptions`` 1.1.2, made importable on current stacks by the shims in
:mod:`augrobust.benchmark.reference` (shared with the speed benchmarks; the library never imports them)."""

from __future__ import annotations

import numpy as np

from augrobust.benchmark.reference import load_imagecorruptions

# A missing oracle is an error, not a skip: it is a dev dependency and the fidelity tests must run.
imagecorruptions = load_imagecorruptions()
from imagecorruptions import corruptions as ic_corruptions  # noqa: E402,F401


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
