"""Reference trainer: methods erm, gnt, ant, afa, afa_noaux, dfmx (and any registered one), optional DAMP,
optional dynamic sparse training (SET, RigL, MEST, GraNet), DDP, exact-resume checkpoints.

A small, readable loop rather than a framework: see :func:`train` and the ``augrobust train`` command.
Layout: ``trainer.py`` (the loop), ``methods/`` (the :class:`Method` base class and one module per method),
``checkpoint.py`` (save, load, :func:`load_model`), ``damp.py``, ``sparse.py``, ``models.py``,
``distributed.py``, ``metrics_file.py``, ``base_augmentations.py``.
"""

from __future__ import annotations

from augrobust.train.base_augmentations import BASE_AUGMENTATIONS, random_crop_flip
from augrobust.train.checkpoint import capture_rng, load_checkpoint, load_model, restore_rng, save_checkpoint
from augrobust.train.damp import DAMP, damp_parameter_names, perturbable_modules
from augrobust.train.methods import (
    AFA,
    ANT,
    ERM,
    GNT,
    METHODS,
    AFANoAux,
    DFMXMethod,
    FunctionMethod,
    Method,
    get_method,
    register_method,
)
from augrobust.train.methods.afa import DualBatchNorm2d, auxiliary_route, convert_to_dual_bn, strip_dual_bn
from augrobust.train.models import ARCHITECTURES, Normalize, build_model
from augrobust.train.sparse import SPARSE_ALGORITHMS, SparseTraining, layer_sparsity
from augrobust.train.trainer import (
    CHECKPOINT_NAME,
    METRICS_NAME,
    NonFiniteLossError,
    TrainConfig,
    TrainResult,
    build_datasets,
    train,
)

__all__ = [
    "AFA",
    "AFANoAux",
    "ANT",
    "ARCHITECTURES",
    "BASE_AUGMENTATIONS",
    "CHECKPOINT_NAME",
    "DAMP",
    "DFMXMethod",
    "DualBatchNorm2d",
    "ERM",
    "FunctionMethod",
    "GNT",
    "METHODS",
    "METRICS_NAME",
    "Method",
    "NonFiniteLossError",
    "Normalize",
    "SPARSE_ALGORITHMS",
    "SparseTraining",
    "TrainConfig",
    "TrainResult",
    "auxiliary_route",
    "build_datasets",
    "build_model",
    "capture_rng",
    "convert_to_dual_bn",
    "damp_parameter_names",
    "get_method",
    "layer_sparsity",
    "load_checkpoint",
    "load_model",
    "perturbable_modules",
    "random_crop_flip",
    "register_method",
    "restore_rng",
    "save_checkpoint",
    "strip_dual_bn",
    "train",
]
