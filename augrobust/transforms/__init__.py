"""Transforms in kornia form (``IntensityAugmentationBase2D`` subclasses) over the functional kernels."""

from __future__ import annotations

from augrobust.transforms.base import RobustAugmentation
from augrobust.transforms.corruption import Corruption, RandomCorruption
from augrobust.transforms.gaussian_noise import GaussianNoise
from augrobust.transforms.speckle_noise import SpeckleNoise

__all__ = ["Corruption", "GaussianNoise", "RandomCorruption", "RobustAugmentation", "SpeckleNoise"]
