"""Functional kernels: pure functions, batched, device-agnostic (one module per family).

``noise`` (GNT / speckle and L2 calibration), ``adversarial_noise`` (ANT's noise generators and L2 projection),
``fourier_basis`` (AFA's planar waves), ``frequency_mask`` (DFM-X's spectral masking), ``filters`` (Gaussian
filters matching scikit-image), ``color`` (scikit-image-exact HSV) and ``jpeg`` (the libjpeg round trip).
"""

from __future__ import annotations

from augrobust.functional.adversarial_noise import (
    NoiseGenerator,
    apply_adversarial_noise,
    project_l2,
    sample_adversarial_noise,
)
from augrobust.functional.fourier_basis import apply_fourier_noise, fourier_basis_waves, sample_fourier_noise
from augrobust.functional.frequency_mask import frequency_mask
from augrobust.functional.noise import (
    GNT_SIGMAS,
    SPECKLE_SIGMAS,
    L2Calibration,
    apply_gaussian_noise,
    apply_speckle_noise,
    calibrate_l2,
    eps_for_sigma,
    gaussian_noise,
    gaussian_noise_l2,
    parse_strength,
    sample_gaussian_noise,
    sample_speckle_noise,
    speckle_noise,
)

__all__ = [
    "GNT_SIGMAS",
    "SPECKLE_SIGMAS",
    "L2Calibration",
    "NoiseGenerator",
    "apply_adversarial_noise",
    "project_l2",
    "sample_adversarial_noise",
    "apply_fourier_noise",
    "apply_gaussian_noise",
    "apply_speckle_noise",
    "calibrate_l2",
    "eps_for_sigma",
    "fourier_basis_waves",
    "frequency_mask",
    "gaussian_noise",
    "gaussian_noise_l2",
    "parse_strength",
    "sample_fourier_noise",
    "sample_gaussian_noise",
    "sample_speckle_noise",
    "speckle_noise",
]
