"""augrobust: GPU-native, kornia-style augmentations for corruption robustness.

* Transforms in kornia form (``augrobust.GaussianNoise``, ``augrobust.Corruption``, ...) and in
  torchvision v2 form (``augrobust.v2.GaussianNoise``, ...).
* Functional kernels in :mod:`augrobust.functional`, split into samplers and deterministic kernels.
* The 19 ImageNet-C corruptions, faithful to the reference code, batched on any device:
  :func:`augrobust.corrupt`, :mod:`augrobust.corruptions`, and a drop-in for ``imagecorruptions`` in
  :mod:`augrobust.compat`.

Example:
    >>> import torch, augrobust
    >>> x = torch.rand(8, 3, 32, 32)
    >>> augrobust.GaussianNoise(sigma=0.5, p=0.5)(x).shape
    torch.Size([8, 3, 32, 32])
    >>> augrobust.corrupt(x, "glass_blur", severity=2).shape
    torch.Size([8, 3, 32, 32])
"""

from __future__ import annotations

from augrobust import functional, v2
from augrobust.corruptions import corrupt, get_corruption_names, sample_corruption_params
from augrobust.errors import AugrobustError, AugrobustTypeError, AugrobustValueError
from augrobust.transforms import (
    DFMX,
    AdversarialNoise,
    Corruption,
    FourierNoise,
    GaussianNoise,
    RandomCorruption,
    RobustAugmentation,
    SpeckleNoise,
)

__version__ = "0.1.0"

__all__ = [
    "AdversarialNoise",
    "AugrobustError",
    "AugrobustTypeError",
    "AugrobustValueError",
    "Corruption",
    "DFMX",
    "FourierNoise",
    "GaussianNoise",
    "RandomCorruption",
    "RobustAugmentation",
    "SpeckleNoise",
    "__version__",
    "corrupt",
    "functional",
    "get_corruption_names",
    "sample_corruption_params",
    "v2",
]
