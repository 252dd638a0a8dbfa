"""augrobust: GPU-native, kornia-style augmentations for corruption robustness.

Transforms (kornia form here, torchvision v2 form in :mod:`augrobust.v2`), functional kernels in
:mod:`augrobust.functional`, the 19 ImageNet-C corruptions in :mod:`augrobust.corruptions`.
"""

from __future__ import annotations

from augrobust.corruptions import corrupt, get_corruption_names, sample_corruption_params
from augrobust.errors import AugrobustError, AugrobustTypeError, AugrobustValueError

__version__ = "0.1.0"

__all__ = [
    "AugrobustError",
    "AugrobustTypeError",
    "AugrobustValueError",
    "__version__",
    "corrupt",
    "get_corruption_names",
    "sample_corruption_params",
]
