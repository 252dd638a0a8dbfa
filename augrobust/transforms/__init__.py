"""Transforms in kornia form (``IntensityAugmentationBase2D`` subclasses) over the functional kernels."""

from __future__ import annotations

from augrobust.transforms.adversarial_noise import AdversarialNoise
from augrobust.transforms.base import RobustAugmentation
from augrobust.transforms.corruption import Corruption, RandomCorruption
from augrobust.transforms.dfmx import DFMX
from augrobust.transforms.fourier_noise import FourierNoise
from augrobust.transforms.gaussian_noise import GaussianNoise
from augrobust.transforms.speckle_noise import SpeckleNoise

__all__ = [
    "DFMX",
    "AdversarialNoise",
    "Corruption",
    "FourierNoise",
    "GaussianNoise",
    "RandomCorruption",
    "RobustAugmentation",
    "SpeckleNoise",
]
