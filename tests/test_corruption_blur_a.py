"""gaussian_blur, defocus_blur, zoom_blur against the imagecorruptions 1.1.2 oracle.

Specification (all three are deterministic, so no shared randomness is needed):

* float64 path: ``floor(255 * corrupt(x64))`` equals the oracle's uint8 output, bit for bit, for all
  three. defocus_blur builds its kernels with ``cv2.GaussianBlur`` itself (a NumPy rebuild was one float32
  ulp off on a few taps, which moved values lying within ~1e-5 levels of an integer: 1 value in ~1e4 on
  grayscale photos); its FFT differs from OpenCV's DFT by ~1e-13 levels, never seen to matter.
* float32 path: at most 1 grey level, on at most 5% of the values (float32 FFT / matmul / bilinear
  rounding; the worst case is defocus severity 1 whose flat regions sit on grey-level boundaries).
* uint8 in, uint8 out through ``corrupt``: same bound as float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import augrobust
from augrobust.corruptions.defocus_blur import TABLES as DEFOCUS_TABLES
from augrobust.corruptions.defocus_blur import defocus_kernel, filter2d_reflect101
from augrobust.corruptions.zoom_blur import TABLES as ZOOM_TABLES
from augrobust.corruptions.zoom_blur import clipped_zoom, zoom_blur_factors
from tests.oracle import oracle_corrupt, photo

NAMES = ("gaussian_blur", "defocus_blur", "zoom_blur")
SIZES = ((224, 224), (32, 32), (96, 160))
F64_ALLOWED = {"gaussian_blur": (0, 0.0), "defocus_blur": (0, 0.0), "zoom_blur": (0, 0.0)}


def ours(img: np.ndarray, name: str, severity: int, dtype=torch.float64, **kw) -> np.ndarray:
    x = torch.from_numpy(img).permute(2, 0, 1).to(dtype) / 255
    y = augrobust.corrupt(x, name, severity, **kw)
    return np.floor(y.double().permute(1, 2, 0).numpy() * 255)


def assert_close_to_oracle(got: np.ndarray, ref: np.ndarray, max_level: int, max_fraction: float) -> None:
    diff = np.abs(got - ref.astype(np.float64))
    assert diff.max() <= max_level, f"max difference {diff.max()} grey levels"
    assert (diff > 0).mean() <= max_fraction, f"{(diff > 0).mean():.2e} of the values differ"


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", NAMES)
def test_float64_matches_oracle_on_real_photos(name, size):
    for photo_name in ("astronaut", "chelsea"):
        img = photo(photo_name, size)
        for severity in range(1, 6):
            ref = oracle_corrupt(img, name, severity)
            assert_close_to_oracle(ours(img, name, severity), ref, *F64_ALLOWED[name])


@pytest.mark.parametrize("name", NAMES)
def test_float64_matches_oracle_on_random_pixels(name):
    img = np.random.default_rng(3).integers(0, 256, (40, 33, 3), dtype=np.uint8)
    for severity in range(1, 6):
        assert_close_to_oracle(ours(img, name, severity), oracle_corrupt(img, name, severity), *F64_ALLOWED[name])


@pytest.mark.parametrize("name", NAMES)
def test_float32_and_uint8_within_one_grey_level(name):
    img = photo("coffee", (64, 96))
    x8 = torch.from_numpy(img).permute(2, 0, 1)
    for severity in range(1, 6):
        ref = oracle_corrupt(img, name, severity)
        assert_close_to_oracle(ours(img, name, severity, torch.float32), ref, 1, 0.05)
        y8 = augrobust.corrupt(x8, name, severity)
        assert y8.dtype == torch.uint8
        assert_close_to_oracle(y8.permute(1, 2, 0).numpy().astype(np.float64), ref, 1, 0.05)


def test_zoom_blur_reproduces_scipy_zeroed_last_column():
    """160 px wide, z = 1.27: SciPy's mode='constant' zeroes a last column whose coordinate rounds up."""
    img = photo("chelsea", (96, 160))
    np.testing.assert_array_equal(ours(img, "zoom_blur", 5), oracle_corrupt(img, "zoom_blur", 5))


@pytest.mark.parametrize("name", NAMES)
def test_mixed_severity_batch_equals_per_sample_calls(name):
    x = torch.rand(5, 3, 36, 44, dtype=torch.float64)
    sev = torch.tensor([3, 1, 5, 3, 2])
    batch = augrobust.corrupt(x, name, sev)
    singles = torch.stack([augrobust.corrupt(x[i], name, int(sev[i])) for i in range(5)])
    if name == "defocus_blur":  # batched FFTs may round differently from single ones (~1e-16)
        torch.testing.assert_close(batch, singles, rtol=0, atol=1e-12)
    else:
        assert torch.equal(batch, singles)


@pytest.mark.parametrize("preset", ["imagenet", "tinyimagenet", "cifar", "inception"])
@pytest.mark.parametrize("name", NAMES)
def test_presets_and_references_keep_shape_dtype_range(name, preset):
    x = torch.rand(2, 3, 32, 40)
    x0 = x.clone()
    for reference in ("imagecorruptions", "hendrycks"):
        y = augrobust.corrupt(x, name, torch.tensor([1, 5]), preset=preset, reference=reference)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert y.min() >= 0 and y.max() <= 1
        assert not torch.equal(y, x)
    assert torch.equal(x, x0)


@pytest.mark.parametrize("name", NAMES)
def test_grayscale_small_and_no_params(name):
    assert augrobust.sample_corruption_params(name, (2, 3, 16, 16), 3) == {}
    g = torch.rand(2, 1, 8, 8)
    assert augrobust.corrupt(g, name, 5).shape == (2, 1, 8, 8)
    # per-channel: a grey image blurred as one channel equals each channel of its RGB copy blurred
    rgb = augrobust.corrupt(g.expand(-1, 3, -1, -1), name, 5)
    assert torch.allclose(augrobust.corrupt(g, name, 5), rgb[:, :1], atol=1e-6)


def test_defocus_kernels_equal_opencv():
    import cv2  # a runtime dependency: a missing cv2 must fail, not skip
    from imagecorruptions.corruptions import disk

    for rows in DEFOCUS_TABLES.values():
        for radius, alias in rows:
            ref = disk(radius, alias)
            ours_k = defocus_kernel(radius, alias).numpy()
            assert ours_k.shape == ref.shape
            np.testing.assert_array_equal(ours_k, ref)
    assert cv2 is not None


def test_filter2d_reflect101_equals_opencv_on_tiny_and_odd_images():
    import cv2  # a runtime dependency: a missing cv2 must fail, not skip
    rng = np.random.default_rng(4)
    kernel = defocus_kernel(10, 0.5)  # 21 x 21: wider than the images, so reflections repeat
    for h, w in ((8, 8), (13, 31), (40, 33)):
        img = rng.random((h, w))
        ref = cv2.filter2D(img, -1, kernel.float().numpy(), borderType=cv2.BORDER_REFLECT_101)
        got = filter2d_reflect101(torch.from_numpy(img)[None, None], kernel[None])[0, 0].numpy()
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_zoom_factor_lists_are_numpys_aranges():
    assert len(zoom_blur_factors(1)) == 12 and zoom_blur_factors(1)[-1] == np.arange(1, 1.11, 0.01)[-1]
    assert [len(f) for f in ZOOM_TABLES["imagenet"]] == [12, 16, 11, 13, 11]
    assert [len(f) for f in ZOOM_TABLES["cifar"]] == [7, 12, 16, 21, 26]
    assert ZOOM_TABLES["inception"] == ZOOM_TABLES["imagenet"] and ZOOM_TABLES["tinyimagenet"] == ZOOM_TABLES["cifar"]


def test_clipped_zoom_matches_scipy_within_one_float32_ulp():
    from imagecorruptions.corruptions import clipped_zoom as reference_clipped_zoom

    rng = np.random.default_rng(5)
    for h, w in ((32, 32), (33, 57), (96, 160), (8, 15)):
        img = rng.random((h, w, 3)).astype(np.float32)
        for z in ZOOM_TABLES["imagenet"][4] + ZOOM_TABLES["cifar"][4]:
            ref = reference_clipped_zoom(img, z)[:h, :w]
            got = clipped_zoom(torch.from_numpy(img).permute(2, 0, 1)[None].double(), z)[0].permute(1, 2, 0)
            np.testing.assert_allclose(got.float().numpy(), ref, rtol=0, atol=6e-8)


def test_hendrycks_zoom_trims_the_centre_and_equals_imagecorruptions_at_224():
    img = photo("rocket", (224, 224))
    x = torch.from_numpy(img).permute(2, 0, 1).double() / 255
    for severity in (1, 5):
        a = augrobust.corrupt(x, "zoom_blur", severity)
        b = augrobust.corrupt(x, "zoom_blur", severity, reference="hendrycks")
        assert torch.equal(a, b)  # imagenet_c.md 3.8: identical at 224
    small = torch.rand(1, 3, 33, 33, dtype=torch.float64)
    centred = clipped_zoom(small, 1.3, centred=True)
    assert centred.shape == small.shape
