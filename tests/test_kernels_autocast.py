"""Mixed precision: under ``torch.autocast`` every kernel returns its input's dtype and the same values.

Autocast lowers matrix products and convolutions to bfloat16; the kernels opt out
(``augrobust.functional.precision.autocast_exempt``), so a float32 batch comes back float32 and bit-identical
to the result outside the autocast region (a bfloat16 blur would be several grey levels off).
"""

from __future__ import annotations

import pytest
import torch

import augrobust
import augrobust.functional as F
from augrobust.corruptions import CORRUPTION_ORDER, apply_corruption, get_spec, sample_corruption_params
from augrobust.functional import color, filters


def _batch(seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", CORRUPTION_ORDER)
def test_corruption_kernel_under_cpu_autocast(name: str) -> None:
    spec = get_spec(name)
    x = _batch()
    severity = torch.tensor([2, 5])
    params = sample_corruption_params(name, x.shape, severity, generator=torch.Generator().manual_seed(1))
    kw = dict(preset="imagenet", reference="imagecorruptions")
    want = apply_corruption(spec, x, severity, params, **kw)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = apply_corruption(spec, x, severity, params, **kw)
        through_api = augrobust.corrupt(x, name, severity, params=params)
    assert got.dtype == through_api.dtype == torch.float32
    assert torch.equal(got, want) and torch.equal(through_api, want)


@pytest.mark.parametrize("names", ["all", ["gaussian_blur", "glass_blur", "defocus_blur"]])
def test_random_corruption_under_cpu_autocast(names: object) -> None:
    """Issue 9: a kernel returned bfloat16 into RandomCorruption's float32 buffer (and blurred in bfloat16)."""
    x = _batch(2).repeat(4, 1, 1, 1)
    for seed in range(2):
        want = augrobust.RandomCorruption(names, seed=seed)(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = augrobust.RandomCorruption(names, seed=seed)(x)
        assert got.dtype == torch.float32 and got.shape == x.shape
        assert torch.equal(got, want)


def _functional_cases() -> dict[str, object]:
    def seeded() -> torch.Generator:
        return torch.Generator().manual_seed(0)

    gen = F.NoiseGenerator(3, seed=0)
    shape = (2, 3, 40, 48)
    adversarial = F.sample_adversarial_noise(shape, gen, 3.0, generator=seeded())
    fourier = F.sample_fourier_noise(shape, generator=seeded())
    direction = torch.randn(shape, generator=seeded())
    mask = (torch.rand(40, 48, generator=seeded()) > 0.5).float()
    return {
        "apply_gaussian_noise": lambda x: F.apply_gaussian_noise(x, F.sample_gaussian_noise(
            x.shape, sigma=0.1, generator=seeded())),
        "apply_gaussian_noise_eps": lambda x: F.apply_gaussian_noise(x, F.sample_gaussian_noise(
            x.shape, eps=3.0, generator=seeded())),
        "apply_speckle_noise": lambda x: F.apply_speckle_noise(x, F.sample_speckle_noise(x.shape, generator=seeded())),
        "gaussian_noise": lambda x: F.gaussian_noise(x, sigma=0.1, generator=seeded()),
        "gaussian_noise_l2": lambda x: F.gaussian_noise_l2(x, 3.0, generator=seeded()),
        "speckle_noise": lambda x: F.speckle_noise(x, 0.3, generator=seeded()),
        "calibrate_l2": lambda x: F.calibrate_l2(x, direction, 3.0).image,
        "project_l2": lambda x: F.project_l2(x, direction, 3.0),
        "apply_adversarial_noise": lambda x: F.apply_adversarial_noise(x, adversarial, gen),
        "apply_fourier_noise": lambda x: F.apply_fourier_noise(x, fourier),
        "frequency_mask": lambda x: F.frequency_mask(x, mask),
        "separable_filter_nearest": lambda x: filters.separable_filter_nearest(x, filters.gaussian_kernels([1.0, 2.0])),
        "gaussian_blur_nearest": lambda x: filters.gaussian_blur_nearest(x, torch.tensor([0.5, 1.5])),
        "filter_with_banded_matrices": lambda x: filters.filter_with_banded_matrices(
            x, filters.banded_nearest_matrices(filters.gaussian_kernels([1.0, 2.0]).float(), 40),
            filters.banded_nearest_matrices(filters.gaussian_kernels([1.0, 2.0]).float(), 48)),
        "rgb_to_hsv": color.rgb_to_hsv,
        "hsv_to_rgb": color.hsv_to_rgb,
        "adjust_hsv": lambda x: color.adjust_hsv(x, saturation_scale=torch.tensor([0.3, 1.5])),
    }  # fmt: skip


FUNCTIONAL = _functional_cases()


@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_functional_kernel_under_cpu_autocast(name: str) -> None:
    fn = FUNCTIONAL[name]
    x = _batch(3)
    want = fn(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fn(x)
    assert got.dtype == torch.float32
    assert torch.equal(got, want)
