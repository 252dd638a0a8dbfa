"""The weather family (fog, frost, snow, spatter) against the imagecorruptions oracle.

Fidelity is shown under shared randomness: each test seeds NumPy, replays the oracle's own draws (same
calls, same order, same shapes) into ``params``, runs the oracle with the same seed, and compares the
uint8 results. The float64 path must be bit-identical; the float32 path is held to the bound stated
in ``FLOAT32_BOUND`` (the reference mixes float32 and float64 stages, so a float32 pipeline can move a
value across an integer).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import augrobust
from augrobust.corruptions import frost as frost_module
from augrobust.corruptions.fog import HENDRYCKS_MAPSIZE, fog_mapsize
from augrobust.corruptions.frost import frost_texture_sizes, set_frost_dir
from augrobust.errors import AugrobustValueError
from tests.oracle import oracle_corrupt, photo

WEATHER = ("fog", "frost", "snow", "spatter")
SEVERITIES = (1, 2, 3, 4, 5)
#: Max |float32 result - oracle| in grey levels, per corruption (fog: plasma in float32; frost: the
#: blend in float32; spatter: float32 mud blend; snow: measured exact, bound kept at 1).
FLOAT32_BOUND = {"fog": 1, "frost": 1, "snow": 1, "spatter": 1}

IMAGES = {
    "photo224": lambda: photo("astronaut", (224, 224)),
    "photo32": lambda: photo("coffee", (32, 32)),
    "photo96x160": lambda: photo("chelsea", (96, 160)),
    "random64x48": lambda: np.random.default_rng(7).integers(0, 256, (64, 48, 3), dtype=np.uint8),
}


# ---------------------------------------------------------------- replaying the oracle's draws


def replay_params(name: str, seed: int, hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    """The oracle's NumPy draws for one image, in its order, as augrobust params (batch of 1)."""
    h, w = hw
    if name == "frost":  # sizes first: they do not draw
        sizes = frost_texture_sizes(h, w).tolist()
    np.random.seed(seed)
    if name == "fog":
        size = fog_mapsize(h, w)
        parts, step = [], size
        while step >= 2:  # squares, row diamonds, column diamonds per level
            n = size // step
            parts += [np.random.random_sample((n, n)).ravel() for _ in range(3)]
            step //= 2
        return {"uniforms": torch.from_numpy(np.concatenate(parts))[None]}
    if name == "frost":
        idx = np.random.randint(5)
        top = np.random.randint(0, sizes[idx][0] - h)
        left = np.random.randint(0, sizes[idx][1] - w)
        return {"texture": torch.tensor([idx]), "top": torch.tensor([top]), "left": torch.tensor([left])}
    if name == "snow":
        noise = torch.from_numpy(np.random.standard_normal((h, w)))[None]
        angle = torch.tensor([np.random.uniform(-135, -45)], dtype=torch.float64)
        return {"snow_noise": noise, "angle": angle}
    if name == "spatter":
        return {"liquid_noise": torch.from_numpy(np.random.standard_normal((h, w)))[None]}
    raise AssertionError(name)


def to_chw(img: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).to(dtype) / 255


def to_uint8(y: torch.Tensor) -> np.ndarray:
    return np.floor(y.permute(1, 2, 0).double().numpy() * 255).astype(np.int64)


# ---------------------------------------------------------------- fidelity


@pytest.mark.parametrize(
    "image", [pytest.param(k, marks=pytest.mark.slow) if k == "photo224" else k for k in IMAGES]
)
@pytest.mark.parametrize("name", WEATHER)
def test_matches_oracle_under_shared_randomness(name: str, image: str) -> None:
    img = IMAGES[image]()
    hw = img.shape[:2]
    for severity in SEVERITIES:
        seed = 1000 * severity + len(image)
        expected = oracle_corrupt(img, name, severity, seed=seed).astype(np.int64)
        params = replay_params(name, seed, hw)
        y64 = augrobust.corrupt(to_chw(img), name, severity, params=params)
        np.testing.assert_array_equal(to_uint8(y64), expected, err_msg=f"{name} s{severity} {image} float64")
        y32 = augrobust.corrupt(to_chw(img, torch.float32), name, severity, params=params)
        assert y32.dtype == torch.float32
        diff = np.abs(to_uint8(y32) - expected).max()
        assert diff <= FLOAT32_BOUND[name], f"{name} s{severity} {image} float32 differs by {diff}"


@pytest.mark.parametrize("name", WEATHER)
def test_uint8_input_floors_like_the_reference(name: str) -> None:
    img = photo("rocket", (40, 56))
    params = replay_params(name, 3, img.shape[:2])
    out = augrobust.corrupt(torch.from_numpy(img).permute(2, 0, 1), name, 3, params=params)
    assert out.dtype == torch.uint8
    expected = oracle_corrupt(img, name, 3, seed=3).astype(np.int64)
    diff = np.abs(out.permute(1, 2, 0).numpy().astype(np.int64) - expected).max()
    assert diff <= FLOAT32_BOUND[name]


@pytest.mark.parametrize("name", WEATHER)
def test_mixed_severity_batch_equals_per_sample_calls(name: str) -> None:
    x = torch.rand(5, 3, 36, 44, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    severity = torch.tensor([5, 1, 3, 2, 4])
    params = augrobust.sample_corruption_params(
        name, x.shape, severity, generator=torch.Generator().manual_seed(2)
    )
    batch = augrobust.corrupt(x, name, severity, params=params)
    for i in range(5):
        single = augrobust.corrupt(
            x[i : i + 1], name, int(severity[i]), params={k: v[i : i + 1] for k, v in params.items()}
        )
        torch.testing.assert_close(batch[i : i + 1], single, rtol=0, atol=0)


@pytest.mark.parametrize("name", WEATHER)
def test_seeded_generator_reproduces_and_params_replay(name: str) -> None:
    x = torch.rand(3, 3, 32, 32)
    a = augrobust.corrupt(x, name, 3, generator=torch.Generator().manual_seed(5))
    b = augrobust.corrupt(x, name, 3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    params = augrobust.sample_corruption_params(name, x.shape, 3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(augrobust.corrupt(x, name, 3, params=params), a, rtol=0, atol=0)
    assert not x.isnan().any() and torch.equal(x, x.clone())


# ---------------------------------------------------------------- the hendrycks reference


def test_fog_hendrycks_uses_the_fixed_preset_map() -> None:
    # The original scripts crop a fixed-size map (32 at CIFAR); plasma_fractal itself is the same code.
    from imagecorruptions.corruptions import plasma_fractal

    img = photo("coffee", (32, 32))
    x = img / 255.0
    for severity in SEVERITIES:
        strength, decay = augrobust.corruptions.fog.TABLES["cifar"][severity - 1]
        np.random.seed(severity)
        plasma = plasma_fractal(mapsize=32, wibbledecay=decay)[:32, :32][..., None]
        expected = np.uint8(np.clip((x + strength * plasma) * x.max() / (x.max() + strength), 0, 1) * 255)
        params = {k: v for k, v in replay_params_fog_fixed(severity, 32).items()}
        y = augrobust.corrupt(to_chw(img), "fog", severity, preset="cifar", reference="hendrycks", params=params)
        np.testing.assert_array_equal(to_uint8(y), expected.astype(np.int64))
    assert HENDRYCKS_MAPSIZE == {"imagenet": 256, "inception": 512, "tinyimagenet": 64, "cifar": 32}


def replay_params_fog_fixed(seed: int, size: int) -> dict[str, torch.Tensor]:
    np.random.seed(seed)
    parts, step = [], size
    while step >= 2:
        n = size // step
        parts += [np.random.random_sample((n, n)).ravel() for _ in range(3)]
        step //= 2
    return {"uniforms": torch.from_numpy(np.concatenate(parts))[None]}


@pytest.mark.parametrize(("preset", "size", "scale"), [("cifar", 32, 0.2), ("tinyimagenet", 64, 0.3), ("imagenet", 224, None)])
def test_frost_hendrycks_matches_the_original_recipe(preset: str, size: int, scale: float | None) -> None:
    # The original: cv2.imread, cv2.resize(fx=fy=scale) (bilinear) at 32/64 px, no resize at 224,
    # crop at (randint(0, Ht - S), randint(0, Wt - S)), BGR -> RGB, clip(w_img * x + w_frost * crop).
    import cv2  # a runtime dependency: a missing cv2 must fail, not skip
    img = photo("astronaut", (size, size))
    folder = frost_module.frost_dir()
    for severity in SEVERITIES:
        np.random.seed(severity)
        idx = np.random.randint(5)
        tex = cv2.imread(str(folder / frost_module.FROST_FILES[idx]))
        if scale is not None:
            tex = cv2.resize(tex, (0, 0), fx=scale, fy=scale)
        top, left = np.random.randint(0, tex.shape[0] - size), np.random.randint(0, tex.shape[1] - size)
        crop = tex[top : top + size, left : left + size][..., [2, 1, 0]]
        w_img, w_frost = frost_module.TABLES[preset][severity - 1]
        expected = np.uint8(np.clip(w_img * img + w_frost * crop, 0, 255)).astype(np.int64)
        params = {"texture": torch.tensor([idx]), "top": torch.tensor([top]), "left": torch.tensor([left])}
        y = augrobust.corrupt(to_chw(img), "frost", severity, preset=preset, reference="hendrycks", params=params)
        np.testing.assert_array_equal(to_uint8(y), expected)


def test_snow_hendrycks_differs_from_imagecorruptions_by_rounding_only() -> None:
    # imagenet_c.md 4.6 measured 0.2-0.3 mean grey levels between the two on the same draws.
    img = to_chw(photo("astronaut", (224, 224)))
    params = augrobust.sample_corruption_params("snow", (1, 3, 224, 224), 3, generator=torch.Generator().manual_seed(0))
    a = augrobust.corrupt(img, "snow", 3, params=params)
    b = augrobust.corrupt(img, "snow", 3, params=params, reference="hendrycks")
    diff = (to_uint8(a[None][0]) - to_uint8(b[None][0])).__abs__()
    assert 0 < diff.mean() < 2.0


# ---------------------------------------------------------------- presets, shapes, ranges


@pytest.mark.parametrize("reference", ["imagecorruptions", "hendrycks"])
@pytest.mark.parametrize(("preset", "size"), [("imagenet", 224), ("inception", 299), ("tinyimagenet", 64), ("cifar", 32)])
@pytest.mark.parametrize("name", WEATHER)
def test_every_preset_gives_a_valid_image(name: str, preset: str, size: int, reference: str) -> None:
    if size > 64 and name != "fog":
        size = 96 if reference == "imagecorruptions" else size  # keep the test quick where size is free
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    y = augrobust.corrupt(x, name, torch.tensor([1, 5]), preset=preset, reference=reference,
                          generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    assert not torch.equal(y, x)


# ---------------------------------------------------------------- sampler distributions


def test_fog_uniforms_are_standard_uniform() -> None:
    p = augrobust.sample_corruption_params("fog", (8, 3, 64, 64), 3, generator=torch.Generator().manual_seed(0))
    u = p["uniforms"]
    assert u.shape == (8, 64 * 64 - 1) and u.dtype == torch.float32
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.01 and abs(u.var().item() - 1 / 12) < 0.003
    counts = torch.histc(u.float(), bins=10, min=0, max=1)
    assert (counts - u.numel() / 10).abs().max() < 0.05 * u.numel() / 10


def test_frost_sampler_covers_textures_and_crop_ranges_uniformly() -> None:
    n, h, w = 5000, 32, 40
    p = augrobust.sample_corruption_params("frost", (n, 3, h, w), 2, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(p["texture"], minlength=5).double()
    chi2 = ((counts - n / 5) ** 2 / (n / 5)).sum().item()
    assert chi2 < 20.5  # chi-square(4) at p = 0.9996
    sizes = frost_texture_sizes(h, w)
    span = sizes[p["texture"]] - torch.tensor([h, w])
    assert (p["top"] >= 0).all() and (p["left"] >= 0).all()
    assert (p["top"] < span[:, 0]).all() and (p["left"] < span[:, 1]).all()
    rel = p["top"].double() / span[:, 0]
    assert abs(rel.mean().item() - 0.5) < 0.02


def test_snow_and_spatter_samplers() -> None:
    g = torch.Generator().manual_seed(0)
    s = augrobust.sample_corruption_params("snow", (4000, 3, 8, 8), 2, generator=g)
    angle = s["angle"]
    assert (angle >= -135).all() and (angle < -45).all() and abs(angle.mean().item() + 90) < 1.5
    assert abs(angle.std().item() - 90 / math.sqrt(12)) < 1.0
    z = s["snow_noise"]
    assert z.shape == (4000, 8, 8) and abs(z.mean().item()) < 0.01 and abs(z.std().item() - 1) < 0.01
    p = augrobust.sample_corruption_params("spatter", (100, 3, 32, 32), 4, generator=g)["liquid_noise"]
    assert p.shape == (100, 32, 32) and abs(p.mean().item()) < 0.02 and abs(p.std().item() - 1) < 0.02


# ---------------------------------------------------------------- edge cases and errors


def test_spatter_water_without_any_liquid_leaves_the_image() -> None:
    # The reference divides by max(m) = 0 here (NaN); augrobust adds no water.
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    params = {"liquid_noise": torch.full((1, 32, 32), -10.0, dtype=torch.float64)}
    y = augrobust.corrupt(x, "spatter", 1, params=params)
    assert torch.isfinite(y).all()
    np.testing.assert_array_equal(to_uint8(y[0]), to_uint8(x[0]))


def test_frost_without_textures_names_both_remedies(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(frost_module, "_installed_frost_dir", lambda: None)
    monkeypatch.delenv("AUGROBUST_FROST_DIR", raising=False)
    set_frost_dir(None)
    with pytest.raises(AugrobustValueError, match="pip install imagecorruptions") as err:
        augrobust.corrupt(torch.rand(3, 32, 32), "frost", 1)
    assert "set_frost_dir" in str(err.value) and "AUGROBUST_FROST_DIR" in str(err.value)


def test_frost_reads_a_user_folder_and_rejects_unreadable_files(tmp_path, monkeypatch) -> None:
    source = frost_module.frost_dir()
    for name in frost_module.FROST_FILES:
        (tmp_path / name).write_bytes((source / name).read_bytes())
    monkeypatch.setenv("AUGROBUST_FROST_DIR", str(tmp_path))
    assert frost_module.frost_dir() == tmp_path
    x = torch.rand(1, 3, 32, 32)
    params = {"texture": torch.tensor([3]), "top": torch.tensor([5]), "left": torch.tensor([7])}
    expected = augrobust.corrupt(x, "frost", 2, params=params)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in frost_module.FROST_FILES:
        (broken / name).write_bytes(b"not an image")
    try:
        set_frost_dir(broken)
        with pytest.raises(AugrobustValueError, match="could not be decoded"):
            augrobust.corrupt(x, "frost", 2, params=params)
        set_frost_dir(tmp_path / "missing")
        with pytest.raises(AugrobustValueError, match="does not exist"):
            augrobust.corrupt(x, "frost", 2, params=params)
    finally:
        set_frost_dir(None)
    torch.testing.assert_close(augrobust.corrupt(x, "frost", 2, params=params), expected, rtol=0, atol=0)


def test_hendrycks_rejects_images_larger_than_its_texture_or_map() -> None:
    with pytest.raises(AugrobustValueError, match="at most"):
        augrobust.corrupt(torch.rand(3, 64, 64), "frost", 1, preset="cifar", reference="hendrycks")
    with pytest.raises(AugrobustValueError, match="at most 32x32"):
        augrobust.corrupt(torch.rand(3, 40, 32), "fog", 1, preset="cifar", reference="hendrycks")
    # imagecorruptions rescales the texture and sizes the map to any image
    assert augrobust.corrupt(torch.rand(3, 700, 40), "frost", 1).shape == (3, 700, 40)
    assert augrobust.corrupt(torch.rand(3, 40, 300), "fog", 1).shape == (3, 40, 300)


@pytest.mark.parametrize("name", WEATHER)
def test_grayscale_and_rgba_through_corrupt(name: str) -> None:
    gray = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    out = augrobust.corrupt(gray, name, 2, generator=torch.Generator().manual_seed(0))
    assert out.shape == gray.shape and out.dtype == torch.uint8
    rgba = torch.rand(2, 4, 32, 32)
    out = augrobust.corrupt(rgba, name, 2, generator=torch.Generator().manual_seed(0))
    assert out.shape == rgba.shape
    torch.testing.assert_close(out[:, 3], rgba[:, 3], rtol=0, atol=0)


@pytest.mark.parametrize("name", WEATHER)
def test_small_images_work(name: str) -> None:
    x = torch.rand(2, 3, 8, 8)
    y = augrobust.corrupt(x, name, 5, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_frost_resize_without_opencv_is_within_one_level(monkeypatch) -> None:
    # Without OpenCV the texture is resampled with the same coordinates and kernels in float64;
    # OpenCV's fixed-point arithmetic differs by at most one level of the texture.
    import cv2  # noqa: F401  (a runtime dependency: a missing cv2 must fail, not skip)
    with_cv2 = [frost_module._scaled_textures(48, 40, "cifar", ref) for ref in ("imagecorruptions", "hendrycks")]
    monkeypatch.setitem(__import__("sys").modules, "cv2", None)  # makes `import cv2` fail
    without = [frost_module._scaled_textures(48, 40, "cifar", ref) for ref in ("imagecorruptions", "hendrycks")]
    for a_list, b_list in zip(with_cv2, without, strict=True):
        for a, b in zip(a_list, b_list, strict=True):
            assert a.shape == b.shape
            assert (a.int() - b.int()).abs().max() <= 1


def test_frost_dir_keyword_reads_textures_from_that_folder(tmp_path, monkeypatch):
    import shutil

    import augrobust
    from augrobust.corruptions.frost import FROST_FILES

    source = frost_module.frost_dir()
    for name in FROST_FILES:
        shutil.copy(source / name, tmp_path / name)
    # Nothing else may be found: only the keyword can make this work.
    monkeypatch.setattr(frost_module, "_installed_frost_dir", lambda: None)
    monkeypatch.delenv("AUGROBUST_FROST_DIR", raising=False)
    set_frost_dir(None)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(augrobust.AugrobustValueError, match="frost_dir=folder"):
        augrobust.corrupt(x, "frost", 3)
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    y = augrobust.corrupt(x, "frost", 3, frost_dir=tmp_path, generator=g())
    z = augrobust.Corruption("frost", 3, frost_dir=tmp_path)(x, generator=g())
    r = augrobust.RandomCorruption(["frost"], 3, frost_dir=tmp_path)(x)
    assert y.shape == z.shape == r.shape == x.shape
    assert torch.equal(y, z)


def test_frost_dir_keyword_with_a_missing_file_names_it(tmp_path):
    import augrobust

    with pytest.raises(augrobust.AugrobustValueError, match="frost1.png' does not exist"):
        augrobust.corrupt(torch.rand(3, 32, 32), "frost", 1, frost_dir=tmp_path)


# Tall, wide, odd and 2-D grayscale shapes (issue 9), one severity per shape, under the oracle's own draws.
SHAPE_CASES = (((181, 64), 1), ((41, 150), 2), ((45, 71), 3), ((97, 37), 4), ((53, 40), 5))


@pytest.mark.parametrize("name", WEATHER)
@pytest.mark.parametrize("case", range(len(SHAPE_CASES)))
def test_matches_oracle_at_every_kind_of_shape(name: str, case: int) -> None:
    (h, w), severity = SHAPE_CASES[case]
    gray = photo("chelsea", (h, w)).mean(axis=2).astype(np.uint8)
    rand = np.random.default_rng(case).integers(0, 256, (h, w, 3), dtype=np.uint8)
    for label, img in (("photo", photo("rocket", (h, w))), ("random", rand), ("gray2d", gray)):
        rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img  # the oracle replicates (H, W)
        seed = 17 * case + severity
        expected = oracle_corrupt(img, name, severity, seed=seed).astype(np.int64)
        y64 = augrobust.corrupt(to_chw(rgb), name, severity, params=replay_params(name, seed, (h, w)))
        np.testing.assert_array_equal(to_uint8(y64), expected, err_msg=f"{name} s{severity} {label} {h}x{w}")
