"""glass_blur and motion_blur: fidelity to imagecorruptions 1.1.2, samplers, presets, batching.

Fidelity is checked under shared randomness: the test seeds NumPy, replays the oracle's own draws
(``uniform(-45, 45)`` for the motion angle; ``randint(-d, d, size=2)`` per loop position for glass blur)
into ``params``, runs the oracle with the same seed, and compares ``floor(255 * y)`` with its uint8 output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from imagecorruptions import corruptions as ic  # noqa: E402  (after the oracle's shims)

import augrobust
from augrobust.corruptions import glass_blur as gb
from augrobust.corruptions import motion_blur as mb
from tests.oracle import oracle_corrupt, photo

SEVERITIES = (1, 2, 3, 4, 5)
PRESETS = ("imagenet", "inception", "tinyimagenet", "cifar")

# float32 computes the same algorithm in single precision; the blur sums or the 8-bit floor between
# the two glass blurs can then land on the other side of an integer: at most one grey level.
FLOAT32_MAX_LEVELS = 1


def to_tensor(img: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).to(dtype) / 255


def to_uint8_levels(y: torch.Tensor) -> np.ndarray:
    return np.floor(y.permute(1, 2, 0).double().numpy() * 255)


def random_image(shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


# --------------------------------------------------------------------------------------------- motion


def motion_params(seed: int) -> dict[str, torch.Tensor]:
    np.random.seed(seed)
    return {"angle": torch.tensor([np.random.uniform(-45, 45)], dtype=torch.float64)}


def check_motion(img: np.ndarray, severity: int, seed: int) -> None:
    ref = oracle_corrupt(img, "motion_blur", severity, seed).astype(np.float64)
    params = motion_params(seed)
    y64 = augrobust.corrupt(to_tensor(img), "motion_blur", severity, params=params)
    np.testing.assert_array_equal(to_uint8_levels(y64), ref)
    y32 = augrobust.corrupt(to_tensor(img, torch.float32), "motion_blur", severity, params=params)
    assert np.abs(to_uint8_levels(y32) - ref).max() <= FLOAT32_MAX_LEVELS


@pytest.mark.parametrize(
    ("name", "size"),
    [
        pytest.param("astronaut", (224, 224), marks=pytest.mark.slow),
        ("coffee", (224, 224)),
        ("astronaut", (32, 32)),
        ("coffee", (32, 32)),
        pytest.param("astronaut", (96, 160), marks=pytest.mark.slow),
    ],
)
def test_motion_blur_matches_oracle_on_photos(name: str, size: tuple[int, int]) -> None:
    img = photo(name, size)
    for severity in SEVERITIES:
        check_motion(img, severity, seed=100 * severity + size[1])


@pytest.mark.parametrize("size", [(32, 32), (40, 64)])
def test_motion_blur_matches_oracle_on_random_pixels(size: tuple[int, int]) -> None:
    for severity in SEVERITIES:
        check_motion(random_image(size, severity), severity, seed=severity)


def test_motion_blur_uint8_input_matches_oracle() -> None:
    img = photo("chelsea", (64, 64))
    ref = oracle_corrupt(img, "motion_blur", 4, 11)
    out = augrobust.corrupt(torch.from_numpy(img).permute(2, 0, 1), "motion_blur", 4, params=motion_params(11))
    assert out.dtype == torch.uint8
    assert np.abs(out.permute(1, 2, 0).numpy().astype(int) - ref.astype(int)).max() <= FLOAT32_MAX_LEVELS


@pytest.mark.parametrize("angle", [-45.0, -20.0, 0.0, 30.0, 44.9, -120.0, -90.0, 170.0])
def test_motion_blur_batch_equals_reference_function(angle: float) -> None:
    """The exported helper is imagecorruptions' `_motion_blur`, also on a [0, 1] 2-D layer (snow)."""
    layer = np.random.default_rng(3).random((48, 40))
    ref = ic._motion_blur(layer, radius=12, sigma=4, angle=angle)
    out = mb.motion_blur_batch(
        torch.from_numpy(layer)[None, None], torch.tensor([12]), torch.tensor([4.0]), torch.tensor([angle])
    )
    np.testing.assert_array_equal(out[0, 0].numpy(), ref)


def test_motion_blur_drops_taps_past_the_image_like_the_reference() -> None:
    """A 41-tap kernel on an 8 px image: the reference stops at the first shift >= the size."""
    img = np.random.default_rng(5).integers(0, 256, (8, 12, 3)).astype(np.uint8)
    for angle in (0.0, 40.0, -40.0):
        ref = ic._motion_blur(img, radius=20, sigma=15, angle=angle)
        out = mb.motion_blur_batch(
            torch.from_numpy(img).permute(2, 0, 1)[None].double(), torch.tensor([20]), torch.tensor([15.0]),
            torch.tensor([angle]),
        )  # fmt: skip
        np.testing.assert_array_equal(out[0].permute(1, 2, 0).numpy(), ref)
    _, _, keep = mb.motion_blur_shifts(torch.tensor([0.0]), torch.tensor([41]), 41, 8, 12)
    assert keep[0].tolist() == [True] * 12 + [False] * 29


@pytest.mark.parametrize("size", [(8, 12), (37, 29), (96, 160)])
def test_motion_blur_fft_equals_the_tap_sum_within_float32_rounding(size: tuple[int, int]) -> None:
    """The float32 path's FFT formulation is the same linear map as the tap-order sum.

    Checked in float64 (agreement to 1e-12: the formulation is exact in maths, incl. merged duplicate
    taps, clamped edges and taps dropped past the image, at any angle) and in float32 against the
    float64 tap sum (within 2e-5 on the [0, 1] scale: float32 FFT rounding).
    """
    gen = torch.Generator().manual_seed(11)
    x = torch.rand(6, 3, *size, generator=gen, dtype=torch.float64)
    kernel = mb.motion_blur_kernels([(20, 15.0), (10, 3.0), (15, 8.0), (6, 1.0), (20, 15.0), (1, 1.0)], taps=41)
    width = torch.tensor([41, 21, 31, 13, 41, 3])
    angle = torch.tensor([44.9, -45.0, 10.0, 120.0, -170.0, 0.0], dtype=torch.float64)
    exact = mb.motion_blur_taps(x, kernel, width, angle)
    torch.testing.assert_close(mb.motion_blur_fft(x, kernel, width, angle), exact, rtol=0, atol=1e-12)
    single = mb.motion_blur_fft(x.float(), kernel, width, angle)
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), exact, rtol=0, atol=2e-5)


def test_motion_blur_kernels_are_the_reference_kernels() -> None:
    pairs = sorted({row for table in mb.TABLES.values() for row in table})
    table = mb.motion_blur_kernels(pairs)
    for row, (radius, sigma) in zip(table, pairs, strict=True):
        ref = ic.getMotionBlurKernel(2 * radius + 1, sigma)
        np.testing.assert_array_equal(row[: len(ref)].numpy(), ref)
        assert not row[len(ref) :].any()


def test_motion_blur_hendrycks_rounds_to_the_nearest_level() -> None:
    """Wand/ImageMagick returns 8-bit output: the same blur rounded, so within 1 level of the default."""
    x = to_tensor(photo("rocket", (64, 96)))[None].expand(5, -1, -1, -1)
    sev = torch.arange(1, 6)
    params = {"angle": torch.tensor([-40.0, -10.0, 0.0, 25.0, 44.0], dtype=torch.float64)}
    default = augrobust.corrupt(x, "motion_blur", sev, params=params)
    hendrycks = augrobust.corrupt(x, "motion_blur", sev, params=params, reference="hendrycks")
    levels = hendrycks * 255
    assert torch.equal(levels, levels.round())
    assert torch.equal(levels, (default * 255).round())
    assert (levels - (default * 255).floor()).abs().max() <= 1
    assert (levels != (default * 255).floor()).any()


def test_motion_blur_mixed_severity_batch_equals_single_calls() -> None:
    x = torch.stack([to_tensor(photo(n, (48, 56))) for n in ("astronaut", "coffee", "chelsea", "rocket", "coffee")])
    sev = torch.tensor([5, 1, 3, 2, 4])
    params = augrobust.sample_corruption_params("motion_blur", x.shape, sev, generator=torch.Generator().manual_seed(0))
    batch = augrobust.corrupt(x, "motion_blur", sev, params=params)
    for i in range(5):
        single = augrobust.corrupt(x[i : i + 1], "motion_blur", int(sev[i]), params={"angle": params["angle"][i : i + 1]})
        assert torch.equal(batch[i : i + 1], single)


def test_motion_blur_angle_sampler_is_uniform_on_the_reference_range() -> None:
    gen = torch.Generator().manual_seed(1234)
    angle = mb.sample_motion_blur_angle(
        (20000, 3, 32, 32), torch.full((20000,), 3), preset="imagenet", reference="imagecorruptions",
        generator=gen, device=torch.device("cpu"),
    )["angle"]  # fmt: skip
    assert angle.shape == (20000,) and angle.dtype == torch.float64
    assert angle.min() >= -45 and angle.max() < 45
    assert abs(angle.mean().item()) < 0.6  # sd of the mean: 26 / sqrt(20000) = 0.18
    assert abs(angle.var().item() - 90**2 / 12) < 25
    counts = torch.histc(angle, bins=9, min=-45, max=45)
    chi2 = ((counts - 20000 / 9) ** 2 / (20000 / 9)).sum().item()
    assert chi2 < 26.1  # chi-square, 8 degrees of freedom, p = 0.001


@pytest.mark.parametrize("preset", PRESETS)
def test_motion_blur_presets_shape_and_range(preset: str) -> None:
    x = torch.rand(5, 3, 32, 40)
    for reference in ("imagecorruptions", "hendrycks"):
        y = augrobust.corrupt(x, "motion_blur", torch.arange(1, 6), preset=preset, reference=reference)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert y.min() >= 0 and y.max() <= 1
        assert not torch.equal(y, x)


def test_motion_blur_grayscale_is_one_channel() -> None:
    x = torch.rand(2, 1, 32, 32)
    params = {"angle": torch.tensor([10.0, -30.0], dtype=torch.float64)}
    y = augrobust.corrupt(x, "motion_blur", 2, params=params)
    rgb = augrobust.corrupt(x.expand(-1, 3, -1, -1), "motion_blur", 2, params=params)
    assert y.shape == (2, 1, 32, 32) and torch.equal(y[:, 0], rgb[:, 1])


# ---------------------------------------------------------------------------------------------- glass


def glass_params(seed: int, shape: tuple[int, int], severity: int, preset: str = "imagenet") -> dict[str, torch.Tensor]:
    """NumPy's draws in the oracle's loop order, placed on the (B, T, H-2, W-2, 2) field."""
    h, w = shape
    _, d, iterations = gb.TABLES[preset][severity - 1]
    t = max(row[2] for row in gb.TABLES[preset])
    field = np.zeros((1, t, h - 2, w - 2, 2), np.int8)
    nh, nw = h - 2 * d, w - 2 * d
    np.random.seed(seed)
    for it in range(iterations):
        # One randint(size=2) per position, rows then columns descending: the same stream as one
        # call of size (n, 2) (checked by the fidelity tests themselves).
        draws = np.random.randint(-d, d, size=(nh * nw, 2)).reshape(nh, nw, 2)[::-1, ::-1]
        field[0, it, d - 1 : d - 1 + nh, d - 1 : d - 1 + nw] = draws  # rows d+1 .. h-d
    return {"offsets": torch.from_numpy(field)}


def check_glass(img: np.ndarray, severity: int, seed: int) -> None:
    ref = oracle_corrupt(img, "glass_blur", severity, seed).astype(np.float64)
    params = glass_params(seed, img.shape[:2], severity)
    y64 = augrobust.corrupt(to_tensor(img), "glass_blur", severity, params=params)
    np.testing.assert_array_equal(to_uint8_levels(y64), ref)
    y32 = augrobust.corrupt(to_tensor(img, torch.float32), "glass_blur", severity, params=params)
    assert np.abs(to_uint8_levels(y32) - ref).max() <= FLOAT32_MAX_LEVELS


@pytest.mark.parametrize(
    ("name", "size"),
    [("astronaut", (32, 32)), ("chelsea", (32, 32)), pytest.param("chelsea", (96, 160), marks=pytest.mark.slow)],
)
def test_glass_blur_matches_oracle_on_photos(name: str, size: tuple[int, int]) -> None:
    img = photo(name, size)
    for severity in SEVERITIES:
        check_glass(img, severity, seed=7 * severity + size[1])


@pytest.mark.slow
def test_glass_blur_matches_oracle_at_224() -> None:
    img = photo("coffee", (224, 224))
    for severity in SEVERITIES:
        check_glass(img, severity, seed=severity)


def test_glass_blur_matches_oracle_on_random_pixels() -> None:
    for severity in SEVERITIES:
        check_glass(random_image((36, 33), severity), severity, seed=50 + severity)


def sequential_copy_loop(img: np.ndarray, field: np.ndarray, d: int, iterations: int) -> np.ndarray:
    """The reference's loop, reading (dx, dy) from the field instead of the RNG."""
    x = img.copy()
    h_, w_ = x.shape[:2]
    for it in range(iterations):
        for h in range(h_ - d, d, -1):
            for w in range(w_ - d, d, -1):
                dx, dy = field[it, h - 2, w - 2]
                x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx], x[h, w]
    return x


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
def test_glass_shuffle_equals_the_sequential_loop(d: int) -> None:
    rng = np.random.default_rng(d)
    img = rng.integers(0, 256, (23, 29, 3), dtype=np.uint8)
    field = rng.integers(-d, d, (2, 21, 27, 2)).astype(np.int8)
    ref = sequential_copy_loop(img, field, d, 2)
    out = gb.glass_shuffle(
        torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(field)[None], torch.tensor([d]), torch.tensor([2])
    )
    np.testing.assert_array_equal(out[0].permute(1, 2, 0).numpy(), ref)


def test_glass_shuffle_resolves_the_longest_chains() -> None:
    """dy = 0, dx = +1 everywhere chains a whole row; dy = +1 chains a whole column: the bound holds."""
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for dx, dy in ((1, 0), (0, 1), (-2, 1)):
        field = np.zeros((1, 18, 28, 2), np.int8)
        field[..., 0], field[..., 1] = dx, dy
        ref = sequential_copy_loop(img, field, 3, 1)
        out = gb.glass_shuffle(
            torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(field)[None], torch.tensor([3]),
            torch.tensor([1]),
        )  # fmt: skip
        np.testing.assert_array_equal(out[0].permute(1, 2, 0).numpy(), ref)


def test_glass_offset_sampler_is_uniform_on_minus_d_to_d_minus_1() -> None:
    sev = torch.tensor([1, 2, 4, 5])  # d = 1, 2, 3, 4 in the imagenet table
    offsets = gb.sample_glass_offsets(
        (4, 3, 66, 66), sev, preset="imagenet", reference="imagecorruptions",
        generator=torch.Generator().manual_seed(7), device=torch.device("cpu"),
    )["offsets"]  # fmt: skip
    assert offsets.shape == (4, 3, 64, 64, 2) and offsets.dtype == torch.int8
    for i, d in enumerate((1, 2, 3, 4)):
        values = offsets[i].flatten().long()
        assert values.min() == -d and values.max() == d - 1  # +d is never drawn, as with randint
        counts = torch.bincount(values + d, minlength=2 * d).double()
        expected = values.numel() / (2 * d)
        chi2 = ((counts - expected) ** 2 / expected).sum().item()
        assert chi2 < [10.8, 16.3, 20.5, 24.3][d - 1]  # chi-square, 2d - 1 dof, p = 0.001
    # inception's d = 5 (severity 5) also draws from {-5, ..., 4}
    five = gb.sample_glass_offsets(
        (1, 3, 40, 40), torch.tensor([5]), preset="inception", reference="imagecorruptions",
        generator=torch.Generator().manual_seed(1), device=torch.device("cpu"),
    )["offsets"]  # fmt: skip
    assert five.min() == -5 and five.max() == 4


def test_glass_blur_mixed_severity_batch_equals_single_calls() -> None:
    x = torch.stack([to_tensor(photo(n, (40, 48))) for n in ("astronaut", "coffee", "chelsea", "rocket", "coffee")])
    sev = torch.tensor([3, 1, 5, 2, 4])
    params = augrobust.sample_corruption_params("glass_blur", x.shape, sev, generator=torch.Generator().manual_seed(3))
    batch = augrobust.corrupt(x, "glass_blur", sev, params=params)
    for i in range(5):
        single = augrobust.corrupt(
            x[i : i + 1], "glass_blur", int(sev[i]), params={"offsets": params["offsets"][i : i + 1]}
        )
        assert torch.equal(batch[i : i + 1], single)


@pytest.mark.parametrize("preset", PRESETS)
def test_glass_blur_presets_shape_and_range(preset: str) -> None:
    x = torch.rand(5, 3, 32, 36)
    y = augrobust.corrupt(x, "glass_blur", torch.arange(1, 6), preset=preset, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    assert math.isfinite(float(y.sum()))


def test_glass_blur_is_reproducible_with_a_generator() -> None:
    x = torch.rand(2, 3, 32, 32)
    a = augrobust.corrupt(x, "glass_blur", 4, generator=torch.Generator().manual_seed(5))
    b = augrobust.corrupt(x, "glass_blur", 4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


# Tall, wide, odd and 2-D grayscale shapes (issue 9), one severity per shape, under the oracle's own draws.
SHAPE_CASES = (((181, 64), 1), ((41, 150), 2), ((45, 71), 3), ((97, 37), 4), ((53, 40), 5))


@pytest.mark.parametrize("case", range(len(SHAPE_CASES)))
def test_motion_and_glass_blur_match_oracle_at_every_kind_of_shape(case: int) -> None:
    (h, w), severity = SHAPE_CASES[case]
    gray = photo("astronaut", (h, w)).mean(axis=2).astype(np.uint8)
    for img in (photo("coffee", (h, w)), random_image((h, w), case), gray):
        rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img  # the oracle replicates (H, W)
        seed = 13 * case + severity
        ref = oracle_corrupt(img, "motion_blur", severity, seed).astype(np.float64)
        y = augrobust.corrupt(to_tensor(rgb), "motion_blur", severity, params=motion_params(seed))
        np.testing.assert_array_equal(to_uint8_levels(y), ref, err_msg=f"motion_blur {h}x{w} s{severity}")
        ref = oracle_corrupt(img, "glass_blur", severity, seed).astype(np.float64)
        y = augrobust.corrupt(to_tensor(rgb), "glass_blur", severity, params=glass_params(seed, (h, w), severity))
        np.testing.assert_array_equal(to_uint8_levels(y), ref, err_msg=f"glass_blur {h}x{w} s{severity}")
