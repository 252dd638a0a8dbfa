"""The 19 ImageNet-C corruptions: registry, severity tables and kernels.

Each corruption is one module of this package (table, sampler and kernel together) that registers a
:class:`CorruptionSpec`; the modules are discovered and imported here, so adding a corruption means
adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil

from augrobust.corruptions._api import apply_corruption, check_severity, corrupt, sample_corruption_params
from augrobust.corruptions._spec import (
    CORRUPTION_ORDER,
    PRESETS,
    REFERENCES,
    SUBSETS,
    CorruptionSpec,
    get_corruption_names,
    get_spec,
    register,
    registered_names,
    severity_table,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "CORRUPTION_ORDER",
    "PRESETS",
    "REFERENCES",
    "SUBSETS",
    "CorruptionSpec",
    "apply_corruption",
    "check_severity",
    "corrupt",
    "get_corruption_names",
    "get_spec",
    "register",
    "registered_names",
    "sample_corruption_params",
    "severity_table",
]
