"""Fidelity and contract tests: brightness, contrast, saturate, pixelate, jpeg_compression, elastic_transform.

The bar: the float64 path floored to uint8 equals the imagecorruptions oracle bit for bit (stochastic
elastic_transform under shared randomness: the test replays the oracle's NumPy draws into ``params``);
the float32 path is within the bound stated per corruption. The hendrycks variants are checked against
the same library calls the original scripts make (PIL, cv2, scikit-image, SciPy).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import oracle_corrupt, photo

import augrobust
from augrobust.corruptions import elastic_transform as elastic_mod
from augrobust.corruptions import pixelate as pixelate_mod

DIGITAL = ("brightness", "contrast", "saturate", "pixelate", "jpeg_compression", "elastic_transform")
DETERMINISTIC = ("brightness", "contrast", "saturate", "pixelate", "jpeg_compression")
SEVERITIES = (1, 2, 3, 4, 5)


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    grey = rng.integers(0, 256, (40, 40, 1), dtype=np.uint8).repeat(3, axis=2)
    return {
        "astronaut224": photo("astronaut", (224, 224)),
        "coffee32": photo("coffee", (32, 32)),
        "chelsea96x160": photo("chelsea", (96, 160)),
        "random64x48": rng.integers(0, 256, (64, 48, 3), dtype=np.uint8),
        "grey40": grey,  # many ties between channels: HSV tie-breaking and grey hue
    }


IMAGES = _images()


def _to_tensor(img: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).to(dtype) / 255


def _floor_uint8(y: torch.Tensor) -> np.ndarray:
    return np.floor(y.permute(1, 2, 0).double().numpy() * 255).astype(np.int64)


# Float32 bound: at most 1 grey level (float32 rounding can land on the other side of an integer
# after the floor; brightness adds exact multiples of 1/255 to V), on at most this fraction of values.
# contrast, pixelate and jpeg_compression are exact in float32 too (measured worst fractions: brightness
# 0.068, saturate 0.21 at its 0.1 multiplier, elastic_transform 0.0015: its float32 path smooths in
# float32 and samples with grid_sample, values within 1.4e-5 of the float64 path).
FLOAT32_FRACTION = {"brightness": 0.1, "saturate": 0.25, "elastic_transform": 0.005}


@pytest.mark.slow
@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("image", list(IMAGES))
def test_deterministic_matches_oracle(name: str, image: str) -> None:
    img = IMAGES[image]
    for severity in SEVERITIES:
        ref = oracle_corrupt(img, name, severity).astype(np.int64)
        y64 = augrobust.corrupt(_to_tensor(img, torch.float64), name, severity)
        np.testing.assert_array_equal(_floor_uint8(y64), ref, err_msg=f"{name} s{severity} float64")
        y32 = _floor_uint8(augrobust.corrupt(_to_tensor(img, torch.float32), name, severity))
        assert np.abs(y32 - ref).max() <= 1
        assert (y32 != ref).mean() <= FLOAT32_FRACTION.get(name, 0.0), f"{name} s{severity} float32"
        # uint8 in, uint8 out: the same floor.
        y8 = augrobust.corrupt(torch.from_numpy(img).permute(2, 0, 1), name, severity)
        assert y8.dtype == torch.uint8
        assert np.abs(y8.permute(1, 2, 0).numpy().astype(np.int64) - ref).max() <= 1


def _elastic_oracle_params(h: int, w: int, seed: int) -> dict[str, torch.Tensor]:
    """Replay imagecorruptions' draws: uniform(-0.005 H, 0.005 H, (H, W)) for dx, then for dy."""
    np.random.seed(seed)
    bound = 0.005 * h
    nx = np.random.uniform(-bound, bound, size=(h, w))
    ny = np.random.uniform(-bound, bound, size=(h, w))
    return {"noise_x": torch.from_numpy(nx)[None], "noise_y": torch.from_numpy(ny)[None]}


@pytest.mark.slow
@pytest.mark.parametrize("image", list(IMAGES))
def test_elastic_matches_oracle_under_shared_randomness(image: str) -> None:
    img = IMAGES[image]
    h, w = img.shape[:2]
    for severity in SEVERITIES:
        seed = 100 + severity
        ref = oracle_corrupt(img, "elastic_transform", severity, seed=seed).astype(np.int64)
        params = _elastic_oracle_params(h, w, seed)
        y64 = augrobust.corrupt(_to_tensor(img, torch.float64), "elastic_transform", severity, params=params)
        np.testing.assert_array_equal(_floor_uint8(y64), ref)
        y32 = _floor_uint8(augrobust.corrupt(_to_tensor(img, torch.float32), "elastic_transform", severity, params=params))
        assert np.abs(y32 - ref).max() <= 1
        assert (y32 != ref).mean() <= FLOAT32_FRACTION["elastic_transform"]


@pytest.mark.parametrize("scale", [1.0, 400.0])
def test_elastic_float32_path_matches_float64_path(scale: float) -> None:
    """float32 (float32 smoothing, grid_sample with reflection) against the exact float64 kernel.

    ``scale`` 400 makes displacements of many image sizes (several reflections at the borders), where
    float32 coordinates lose precision; the bounds are 5e-5 (ordinary fields) and 2e-3 (those).
    """
    g = torch.Generator().manual_seed(4)
    x = torch.rand(5, 3, 30, 44, generator=g, dtype=torch.float64)
    sev = torch.tensor([1, 2, 3, 4, 5])
    params = augrobust.sample_corruption_params("elastic_transform", x.shape, sev, generator=g)
    params = {k: v * scale for k, v in params.items()}
    y64 = augrobust.corrupt(x, "elastic_transform", sev, params=params)
    y32 = augrobust.corrupt(x.float(), "elastic_transform", sev, params=params)
    assert y32.dtype == torch.float32
    assert float((y32.double() - y64).abs().max()) <= (5e-5 if scale == 1.0 else 2e-3)


def _hendrycks_elastic(img: np.ndarray, alpha: float, sigma: float, jitter: float, seed: int) -> np.ndarray:
    """The original dataset scripts' elastic transform, written from their description (imagenet_c.md 3.13)."""
    import cv2
    from scipy.ndimage import map_coordinates
    from skimage.filters import gaussian

    np.random.seed(seed)
    image = np.array(img, dtype=np.float32) / 255.0
    h, w = image.shape[:2]
    centre = np.float32((h, w)) // 2
    size = min(h, w) // 3
    src = np.float32([centre + size, [centre[0] + size, centre[1] - size], centre - size])
    dst = src + np.random.uniform(-jitter, jitter, size=src.shape).astype(np.float32)
    image = cv2.warpAffine(image, cv2.getAffineTransform(src, dst), (w, h), borderMode=cv2.BORDER_REFLECT_101)
    fields = [
        (gaussian(np.random.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
        for _ in range(2)
    ]
    y, x, z = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    coords = (y + fields[1][..., None]).reshape(-1), (x + fields[0][..., None]).reshape(-1), z.reshape(-1)
    out = map_coordinates(image, coords, order=1, mode="reflect").reshape(image.shape)
    return np.uint8(np.clip(out, 0, 1) * 255).astype(np.int64)


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "size"), [("imagenet", 224), ("cifar", 32), ("tinyimagenet", 64)])
def test_elastic_hendrycks_matches_original_algorithm(preset: str, size: int) -> None:
    img = photo("chelsea", (size, size))
    for severity in SEVERITIES:
        alpha, sigma, jitter = elastic_mod.HENDRYCKS_TABLES[preset][severity - 1]
        seed = 7 + severity
        ref = _hendrycks_elastic(img, alpha, sigma, jitter, seed)
        np.random.seed(seed)
        affine = np.random.uniform(-jitter, jitter, size=(3, 2)).astype(np.float32)
        nx, ny = np.random.uniform(-1, 1, size=(size, size)), np.random.uniform(-1, 1, size=(size, size))
        params = {
            "affine": torch.from_numpy(affine)[None],
            "noise_x": torch.from_numpy(nx)[None],
            "noise_y": torch.from_numpy(ny)[None],
        }
        y = augrobust.corrupt(
            _to_tensor(img, torch.float64), "elastic_transform", severity, preset=preset, reference="hendrycks",
            params=params,
        )  # fmt: skip
        diff = np.abs(_floor_uint8(y) - ref)
        # OpenCV's warpAffine interpolates with 1/32-pixel positions and its own weight rounding, and the
        # smoothing sums in another order: a few grey levels on a small fraction of pixels.
        assert diff.mean() < 0.5, (severity, diff.mean())
        assert (diff > 2).mean() < 0.02, (severity, (diff > 2).mean())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_jpeg_float_round_trip_equals_uint8_round_trip(dtype: torch.dtype) -> None:
    """The chunked float path is exactly ``jpeg_roundtrip(round(255 x)) / 255`` in the input's dtype."""
    from augrobust.functional.jpeg import jpeg_roundtrip, jpeg_roundtrip_float, quantize_uint8

    x = torch.rand(7, 3, 40, 56, generator=torch.Generator().manual_seed(0), dtype=dtype)
    x = torch.cat([x, torch.from_numpy(photo("coffee", (40, 56))).permute(2, 0, 1)[None].to(dtype) / 255])
    quality = torch.tensor([7, 25, 7, 80, 15, 40, 25, 10])
    y = jpeg_roundtrip_float(x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2), quality)  # any strides
    assert y.dtype == dtype and y.is_contiguous()
    assert torch.equal(y, jpeg_roundtrip(quantize_uint8(x), quality).to(dtype) / 255)


@pytest.mark.parametrize("preset", ["imagenet", "cifar", "tinyimagenet", "inception"])
@pytest.mark.parametrize("size", [(224, 224), (32, 32), (96, 160)])
def test_pixelate_hendrycks_equals_pillow_box_box(preset: str, size: tuple[int, int]) -> None:
    from PIL import Image

    img = photo("rocket", size)
    h, w = size
    for severity in SEVERITIES:
        c = pixelate_mod.TABLES[preset][severity - 1]
        small = Image.fromarray(img).resize((int(w * c), int(h * c)), Image.BOX)
        ref = np.asarray(small.resize((w, h), Image.BOX))
        ours = augrobust.corrupt(
            torch.from_numpy(img).permute(2, 0, 1), "pixelate", severity, preset=preset, reference="hendrycks"
        )
        np.testing.assert_array_equal(ours.permute(1, 2, 0).numpy(), ref)


def test_pixelate_fixed_point_identity() -> None:
    """Pillow's ``(2**21 + k s) >> 22`` equals the kernel's ``floor(s / n + 1/2 +- 1/(4n))`` for every sum."""
    for n in range(1, 128):
        k = int(0.5 + (1.0 / n) * (1 << 22))
        s = np.arange(0, 255 * n + 1, dtype=np.int64)
        pillow = np.clip((2**21 + k * s) >> 22, 0, 255)
        bias = 0.5 + (0.25 if k * n >= 1 << 22 else -0.25) / n
        assert np.array_equal(np.floor(s / n + bias), pillow), n
        f32 = np.floor(s.astype(np.float32) * np.float32(1.0 / n) + np.float32(bias))
        assert np.array_equal(f32, pillow), n


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pixelate_equals_pillow_where_box_windows_skip_or_overlap(dtype: torch.dtype) -> None:
    """Pillow's float window bounds skip input pixels (33 -> 26) or share one (15 -> 14)."""
    from PIL import Image

    img = np.random.default_rng(5).integers(0, 256, (15, 33, 3), dtype=np.uint8)
    for preset, severity in (("tinyimagenet", 2), ("cifar", 1)):
        c = pixelate_mod.TABLES[preset][severity - 1]
        small = Image.fromarray(img).resize((int(33 * c), int(15 * c)), Image.BOX)
        ref = np.asarray(small.resize((33, 15), Image.NEAREST)).astype(np.int64)
        ours = augrobust.corrupt(_to_tensor(img, dtype), "pixelate", severity, preset=preset)
        np.testing.assert_array_equal(np.round(ours.permute(1, 2, 0).double().numpy() * 255), ref)


@pytest.mark.parametrize("name", DIGITAL)
@pytest.mark.parametrize("preset", ["imagenet", "cifar", "tinyimagenet", "inception"])
@pytest.mark.parametrize("reference", ["imagecorruptions", "hendrycks"])
def test_presets_shape_dtype_range(name: str, preset: str, reference: str) -> None:
    x = torch.rand(5, 3, 33, 40, generator=torch.Generator().manual_seed(0))
    sev = torch.tensor(SEVERITIES)
    g = torch.Generator().manual_seed(1)
    y = augrobust.corrupt(x, name, sev, preset=preset, reference=reference, generator=g)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.equal(x, torch.rand(5, 3, 33, 40, generator=torch.Generator().manual_seed(0)))  # not in place


@pytest.mark.parametrize("name", DIGITAL)
@pytest.mark.parametrize("reference", ["imagecorruptions", "hendrycks"])
def test_mixed_severity_batch_equals_per_sample_calls(name: str, reference: str) -> None:
    x = torch.from_numpy(np.stack([photo(n, (48, 40)) for n in ("astronaut", "coffee", "chelsea", "rocket", "astronaut")]))
    x = x.permute(0, 3, 1, 2).double() / 255
    sev = torch.tensor([3, 1, 5, 2, 4])
    params = augrobust.sample_corruption_params(
        name, x.shape, sev, reference=reference, generator=torch.Generator().manual_seed(3)
    )
    batch = augrobust.corrupt(x, name, sev, reference=reference, params=params)
    for i in range(5):
        one = augrobust.corrupt(
            x[i : i + 1], name, int(sev[i]), reference=reference, params={k: v[i : i + 1] for k, v in params.items()}
        )
        torch.testing.assert_close(batch[i : i + 1], one, rtol=0, atol=1e-12)


def test_elastic_sample_params_distribution() -> None:
    g = torch.Generator().manual_seed(0)
    p = augrobust.sample_corruption_params("elastic_transform", (4, 3, 200, 100), 2, generator=g)
    bound = 0.005 * 200
    for key in ("noise_x", "noise_y"):
        u = p[key]
        assert u.shape == (4, 200, 100) and u.dtype == torch.float64
        assert float(u.min()) >= -bound and float(u.max()) <= bound
        # U(-b, b): mean 0, variance b^2 / 3, flat histogram.
        assert abs(float(u.mean())) < 0.01 * bound
        assert abs(float(u.var()) - bound**2 / 3) < 0.02 * bound**2
        counts = torch.histc(u, bins=10, min=-bound, max=bound)
        assert float((counts / counts.mean() - 1).abs().max()) < 0.05
    assert not torch.equal(p["noise_x"], p["noise_y"])

    sev = torch.tensor([1, 3, 5, 1, 3, 5] * 500)
    h = augrobust.sample_corruption_params(
        "elastic_transform", (3000, 3, 8, 8), sev, reference="hendrycks", generator=torch.Generator().manual_seed(1)
    )
    assert h["affine"].shape == (3000, 3, 2) and h["affine"].dtype == torch.float32
    for s in (1, 3, 5):
        a = elastic_mod.HENDRYCKS_TABLES["imagenet"][s - 1][2]
        vals = h["affine"][sev == s]
        assert float(vals.abs().max()) <= a
        assert abs(float(vals.var()) - a**2 / 3) < 0.05 * a**2
    assert float(h["noise_x"].abs().max()) <= 1.0


def test_elastic_seeded_sampling_is_reproducible() -> None:
    shape = (2, 3, 32, 32)
    a = augrobust.sample_corruption_params("elastic_transform", shape, 1, generator=torch.Generator().manual_seed(5))
    b = augrobust.sample_corruption_params("elastic_transform", shape, 1, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gaussian_reflect_matrix_equals_scipy() -> None:
    from scipy.ndimage import gaussian_filter1d

    v = np.random.default_rng(0).uniform(-1, 1, 50)
    for sigma in (0.32, 2.24, 19.52, 170.8):
        ours = elastic_mod.gaussian_reflect_matrix(50, sigma) @ v
        np.testing.assert_allclose(ours, gaussian_filter1d(v, sigma, mode="reflect", truncate=3), atol=1e-12)


def test_hsv_round_trip_matches_skimage() -> None:
    from skimage.color import hsv2rgb, rgb2hsv

    from augrobust.functional.color import hsv_to_rgb, rgb_to_hsv

    rng = np.random.default_rng(0)
    img = rng.integers(0, 4, (30, 30, 3)).astype(np.float64) / 3  # many ties and grey pixels
    img = np.concatenate([img, rng.random((30, 30, 3))])
    hsv = rgb_to_hsv(torch.from_numpy(img).permute(2, 0, 1))
    np.testing.assert_array_equal(hsv.permute(1, 2, 0).numpy(), rgb2hsv(img))
    back = hsv_to_rgb(hsv)
    np.testing.assert_array_equal(back.permute(1, 2, 0).numpy(), hsv2rgb(rgb2hsv(img)))


def test_jpeg_differentiable_option_has_gradients() -> None:
    from augrobust.corruptions.jpeg_compression import jpeg_compression

    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    y = jpeg_compression(
        x, torch.tensor([1, 5]), {}, preset="imagenet", reference="imagecorruptions", differentiable=True
    )
    y.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_contrast_uses_per_channel_mean() -> None:
    x = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    x[0, 0] = 1.0  # red channel all 1: its own mean is 1, so it stays 1
    y = augrobust.corrupt(x, "contrast", 1)
    assert torch.equal(y, x)


# Tall, wide, odd and 2-D grayscale shapes (issue 9), one severity per shape, under the oracle's own draws
# (the deterministic corruptions of this file are covered at these shapes in test_kernels_fidelity_shapes.py).
SHAPE_CASES = (((181, 64), 1), ((41, 150), 2), ((45, 71), 3), ((97, 37), 4), ((53, 40), 5))


@pytest.mark.parametrize("case", range(len(SHAPE_CASES)))
def test_elastic_matches_oracle_at_every_kind_of_shape(case: int) -> None:
    (h, w), severity = SHAPE_CASES[case]
    gray = photo("coffee", (h, w)).mean(axis=2).astype(np.uint8)
    rand = np.random.default_rng(case).integers(0, 256, (h, w, 3), dtype=np.uint8)
    for label, img in (("photo", photo("astronaut", (h, w))), ("random", rand), ("gray2d", gray)):
        rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img  # the oracle replicates (H, W)
        seed = 23 * case + severity
        ref = oracle_corrupt(img, "elastic_transform", severity, seed=seed).astype(np.int64)
        params = _elastic_oracle_params(h, w, seed)
        y64 = augrobust.corrupt(_to_tensor(rgb, torch.float64), "elastic_transform", severity, params=params)
        np.testing.assert_array_equal(_floor_uint8(y64), ref, err_msg=f"elastic s{severity} {label} {h}x{w}")


def test_pixelate_equals_pillow_at_every_small_size_whichever_upsampling_path_it_takes() -> None:
    """The CPU kernel upsamples with torch's nearest-exact where a probe shows it picks Pillow's pixels
    (224 -> 134, ...) and with gathers elsewhere (9 -> 6, 10 -> 8, ...): both must equal Pillow."""
    from PIL import Image

    rng = np.random.default_rng(9)
    paths = set()
    for h, w in [(n, n) for n in range(8, 48)] + [(8, 30), (31, 10), (224, 224)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for severity in SEVERITIES:
            c = pixelate_mod.TABLES["imagenet"][severity - 1]
            sh, sw = max(1, int(h * c)), max(1, int(w * c))
            paths.add(
                pixelate_mod._nearest_exact_picks(h, sh, "nearest") and pixelate_mod._nearest_exact_picks(w, sw, "nearest")
            )
            ref = np.asarray(Image.fromarray(img).resize((sw, sh), Image.BOX).resize((w, h), Image.NEAREST))
            ours = augrobust.corrupt(torch.from_numpy(img).permute(2, 0, 1), "pixelate", severity)
            np.testing.assert_array_equal(ours.permute(1, 2, 0).numpy(), ref, err_msg=f"{h}x{w} severity {severity}")
    assert paths == {True, False}  # both paths were exercised


def test_pixelate_upsampling_choice_is_per_mode_whatever_ran_before() -> None:
    """Pillow's BOX and NEAREST upsampling pick different pixels at some sizes (10 -> 4, 14 -> 8, ...): a
    hendrycks call (BOX) must not decide how a later imagecorruptions call (NEAREST) upsamples, nor the reverse."""
    from PIL import Image

    rng = np.random.default_rng(4)
    for n, severity in ((10, 3), (11, 1), (14, 1), (14, 4), (15, 3)):
        img = rng.integers(0, 256, (n, n, 3), dtype=np.uint8)
        s = max(1, int(n * pixelate_mod.TABLES["imagenet"][severity - 1]))
        small = Image.fromarray(img).resize((s, s), Image.BOX)
        expected = {"hendrycks": small.resize((n, n), Image.BOX), "imagecorruptions": small.resize((n, n), Image.NEAREST)}
        for order in (("hendrycks", "imagecorruptions"), ("imagecorruptions", "hendrycks")):
            pixelate_mod._nearest_exact_picks.cache_clear()
            for reference in order:
                ours = augrobust.corrupt(torch.from_numpy(img).permute(2, 0, 1), "pixelate", severity, reference=reference)
                np.testing.assert_array_equal(ours.permute(1, 2, 0).numpy(), np.asarray(expected[reference]), err_msg=f"{n} {order}")
