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

import importlib
from typing import TYPE_CHECKING, Any

from augrobust.errors import AugrobustError, AugrobustFileNotFoundError, AugrobustTypeError, AugrobustValueError

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and IDEs
    from augrobust import functional, v2
    from augrobust.corruptions import corrupt, get_corruption_names, sample_corruption_params
    from augrobust.evaluation import evaluate
    from augrobust.perturbation_eval import evaluate_perturbation_files, evaluate_perturbations
    from augrobust.perturbations import perturb
    from augrobust.report import CorruptionReport
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
    "AugrobustFileNotFoundError",
    "AugrobustTypeError",
    "AugrobustValueError",
    "Corruption",
    "CorruptionReport",
    "DFMX",
    "FourierNoise",
    "GaussianNoise",
    "RandomCorruption",
    "RobustAugmentation",
    "SpeckleNoise",
    "__version__",
    "corrupt",
    "evaluate",
    "evaluate_perturbation_files",
    "evaluate_perturbations",
    "functional",
    "get_corruption_names",
    "perturb",
    "sample_corruption_params",
    "v2",
]

# Public name -> the module that defines it. They are imported on first use (PEP 562), so that
# ``import augrobust`` (and with it the ``augrobust`` command's ``--help``) does not load torch.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("corrupt", "get_corruption_names", "sample_corruption_params"), "augrobust.corruptions"),
    # A function, not the module: the evaluation module is augrobust.evaluation, so nothing shadows it.
    "evaluate": "augrobust.evaluation",
    "CorruptionReport": "augrobust.report",
    **dict.fromkeys(
        ("AdversarialNoise", "Corruption", "DFMX", "FourierNoise", "GaussianNoise", "RandomCorruption",
         "RobustAugmentation", "SpeckleNoise"),
        "augrobust.transforms",
    ),
    "perturb": "augrobust.perturbations",
    **dict.fromkeys(("evaluate_perturbation_files", "evaluate_perturbations"), "augrobust.perturbation_eval"),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # dunder probes (copy, pickle, inspect) are never submodules
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        # A subpackage (``augrobust.functional``, ``augrobust.corruptions``...), as the eager imports made
        # them available after ``import augrobust``.
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
