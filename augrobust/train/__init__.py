"""Reference trainer: methods erm, gnt, ant, afa, afa_noaux, dfmx (and any registered one), optional DAMP,
DDP, exact-resume checkpoints.

A small, readable loop rather than a framework: see :func:`train` and the ``augrobust train`` command.
"""

from __future__ import annotations

from augrobust.train.ant import ANT
from augrobust.train.afa import AFA, AFANoAux, DualBatchNorm2d, auxiliary_route, convert_to_dual_bn
from augrobust.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from augrobust.train.damp import DAMP, damp_parameter_names, perturbable_modules
from augrobust.train.dfmx import DFMXMethod
from augrobust.train.methods import ERM, GNT, METHODS, Method, get_method, register_method
from augrobust.train.models import ARCHITECTURES, Normalize, build_model
from augrobust.train.trainer import CHECKPOINT_NAME, METRICS_NAME, TrainConfig, TrainResult, build_datasets, train

__all__ = [
    "AFA",
    "AFANoAux",
    "ANT",
    "ARCHITECTURES",
    "CHECKPOINT_NAME",
    "DAMP",
    "DFMXMethod",
    "DualBatchNorm2d",
    "ERM",
    "GNT",
    "METHODS",
    "METRICS_NAME",
    "Method",
    "Normalize",
    "TrainConfig",
    "TrainResult",
    "auxiliary_route",
    "build_datasets",
    "build_model",
    "capture_rng",
    "convert_to_dual_bn",
    "damp_parameter_names",
    "get_method",
    "load_checkpoint",
    "perturbable_modules",
    "register_method",
    "restore_rng",
    "save_checkpoint",
    "train",
]
