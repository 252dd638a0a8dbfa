"""augrobust.functional.filters: the shared Gaussian filter is skimage.filters.gaussian(mode='nearest').

The reference is ``skimage.filters.gaussian(img, sigma, mode='nearest', truncate=4.0, channel_axis=-1)``
on a float64 HWC array. The ``"direct"`` method (the float64 default) must agree bit for bit; the
``"matmul"`` method (the float32 default) to 1e-12 in float64 and 1e-5 in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.filters
import torch

from augrobust.errors import AugrobustError
from augrobust.functional.filters import (
    gaussian_blur_nearest,
    gaussian_kernel1d,
    gaussian_kernels,
    gaussian_radius,
    separable_filter_nearest,
)

SIGMAS = (0.0, 0.05, 0.4, 0.7, 0.9, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 12.0)
SIZES = ((32, 32), (96, 160), (7, 13), (3, 2), (1, 1), (57, 31))


def skimage_reference(img_hwc: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    return skimage.filters.gaussian(img_hwc, sigma, mode="nearest", truncate=truncate, channel_axis=-1)


def to_bchw(img_hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img_hwc).permute(2, 0, 1).unsqueeze(0)


def to_hwc(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("sigma", SIGMAS)
def test_direct_float64_is_bit_identical_to_skimage(size, sigma):
    """Includes tiny images whose side is shorter than the kernel radius (edge replication)."""
    img = np.random.default_rng(hash(size) % 2**32).random((*size, 3))
    y = gaussian_blur_nearest(to_bchw(img), torch.tensor([sigma], dtype=torch.float64))
    np.testing.assert_array_equal(to_hwc(y), skimage_reference(img, sigma))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("sigma", SIGMAS)
def test_matmul_float64_within_1e12_of_skimage(size, sigma):
    img = np.random.default_rng(1).random((*size, 3))
    y = gaussian_blur_nearest(to_bchw(img), sigma, method="matmul")
    np.testing.assert_allclose(to_hwc(y), skimage_reference(img, sigma), rtol=0, atol=1e-12)


def test_float32_default_within_1e5_of_skimage():
    img = np.random.default_rng(2).random((40, 56, 3))
    x = to_bchw(img).float()
    for sigma in (0.7, 2.0, 6.0):
        y = gaussian_blur_nearest(x, sigma)
        assert y.dtype == torch.float32
        np.testing.assert_allclose(to_hwc(y.double()), skimage_reference(img, sigma), rtol=0, atol=1e-5)


def test_real_photo_224_bit_identical():
    from tests.oracle import photo

    img = photo("astronaut", (224, 224)) / 255.0
    for sigma in (1.0, 6.0):
        y = gaussian_blur_nearest(to_bchw(img), sigma)
        np.testing.assert_array_equal(to_hwc(y), skimage_reference(img, sigma))


def test_mixed_sigmas_in_one_batch_equal_per_sample_calls():
    x = torch.rand(5, 3, 20, 24, dtype=torch.float64)
    sigma = torch.tensor([0.0, 1.0, 6.0, 1.0, 2.5], dtype=torch.float64)
    for method in ("direct", "matmul"):
        batch = gaussian_blur_nearest(x, sigma, method=method)
        singles = torch.cat([gaussian_blur_nearest(x[i : i + 1], sigma[i : i + 1], method=method) for i in range(5)])
        assert torch.equal(batch, singles)
    assert torch.equal(batch[0], x[0])  # sigma 0 is the identity


def test_sigma_zero_is_identity_in_every_method_and_dtype():
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(2, 3, 9, 9, dtype=dtype)
        for method in ("direct", "matmul"):
            assert torch.equal(gaussian_blur_nearest(x, 0.0, method=method), x)


def test_any_channel_count_and_dtype_and_no_in_place_change():
    x = torch.rand(3, 5, 11, 7)
    x0 = x.clone()
    y = gaussian_blur_nearest(x, torch.tensor([1.0, 2.0, 3.0]))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(x, x0)
    ref = np.stack([skimage_reference(x[i].permute(1, 2, 0).double().numpy(), s) for i, s in enumerate((1, 2, 3))])
    np.testing.assert_allclose(y.permute(0, 2, 3, 1).double().numpy(), ref, atol=1e-5)


def test_blur_preserves_a_constant_image_and_the_mean_range():
    x = torch.full((1, 3, 16, 16), 0.25, dtype=torch.float64)
    np.testing.assert_allclose(gaussian_blur_nearest(x, 3.0, method="matmul").numpy(), 0.25, atol=1e-15)
    z = torch.rand(1, 3, 16, 16)
    y = gaussian_blur_nearest(z, 2.0)
    assert y.min() >= z.min() - 1e-6 and y.max() <= z.max() + 1e-6


def test_gaussian_kernel1d_is_scipys_kernel():
    from scipy.ndimage._filters import _gaussian_kernel1d

    for sigma in (0.4, 1.0, 1.5, 6.0, 12.0):
        r = gaussian_radius(sigma)
        np.testing.assert_array_equal(gaussian_kernel1d(sigma).numpy(), _gaussian_kernel1d(sigma, 0, r))
    assert gaussian_radius(6.0) == 24 and gaussian_radius(0.1) == 0 and gaussian_radius(1.0, truncate=3.0) == 3


def test_kernel_table_is_centred_and_zero_padded():
    table = gaussian_kernels([1.0, 3.0])
    assert table.shape == (2, 25)
    np.testing.assert_array_equal(table[0, 8:17].numpy(), gaussian_kernel1d(1.0).numpy())
    assert torch.all(table[0, :8] == 0) and torch.all(table[0, 17:] == 0)
    x = torch.rand(2, 3, 10, 10, dtype=torch.float64)
    assert torch.equal(separable_filter_nearest(x, table), gaussian_blur_nearest(x, torch.tensor([1.0, 3.0])))


def test_bad_arguments_raise_augrobust_errors():
    with pytest.raises(AugrobustError):
        gaussian_blur_nearest(torch.rand(3, 8, 8), 1.0)
    with pytest.raises(AugrobustError):
        gaussian_blur_nearest(torch.rand(2, 3, 8, 8), torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(AugrobustError):
        gaussian_blur_nearest(torch.rand(1, 3, 8, 8), -1.0)
    with pytest.raises(AugrobustError):
        gaussian_blur_nearest(torch.rand(1, 3, 8, 8), 1.0, method="fft")
    with pytest.raises(AugrobustError):
        separable_filter_nearest(torch.rand(1, 3, 8, 8), torch.ones(1, 4))


@pytest.mark.parametrize("size", SIZES)
def test_scipy_method_equals_the_direct_taps_in_float64_and_scipy_in_float32(size):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(3, 2, *size, generator=gen, dtype=torch.float64)
    table = gaussian_kernels([0.7, 2.0, 0.0])
    assert torch.equal(separable_filter_nearest(x, table, method="scipy"), separable_filter_nearest(x, table, method="direct"))
    x32 = x.float()
    got = separable_filter_nearest(x32, table, method="scipy")
    assert got.dtype == torch.float32
    for b, sigma in enumerate((0.7, 2.0, 0.0)):  # SciPy stores each pass in float32 with float64 weights
        expected = skimage.filters.gaussian(x32[b].numpy(), sigma, mode="nearest", truncate=4.0, channel_axis=0)
        assert np.array_equal(got[b].numpy(), expected.astype(np.float32)), sigma


def test_scipy_method_refuses_tensors_scipy_cannot_read():
    with pytest.raises(AugrobustError, match="CPU tensors in eager mode"):
        separable_filter_nearest(torch.zeros(1, 1, 4, 4, device="meta"), gaussian_kernels([1.0]), method="scipy")
