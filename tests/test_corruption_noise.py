"""The ImageNet-C noise family: gaussian_noise, shot_noise, impulse_noise, speckle_noise.

Specification:

* Fidelity under shared randomness: the test seeds NumPy, replays the oracle's own draws (same calls, same
  order, same shapes) into ``params``, and the float64 path floored to uint8 equals
  ``imagecorruptions.corrupt`` bit for bit, on real photographs (224x224, 32x32, 96x160) and random pixels,
  at all five severities. The float32 path (and the uint8 entry point, which computes in float32) stays
  within 1 grey level: float32 rounding may move a value across a floor boundary.
* shot_noise's own sampler maps one float64 uniform per element to a Poisson count with alias tables:
  the tables reproduce ``scipy.stats.poisson.pmf`` to 1e-13 for every preset, severity and level; the
  drawn counts pass chi-square tests against scipy on the fast (uint8-valued) path, the general path
  (any float level) and ``poisson_from_uniform`` for rates from 0 to 500; the two kernel paths give the
  same output on uint8-valued images.
* impulse_noise's own sampler decides flip and salt-vs-pepper from one uniform per element; the
  outcome frequencies pass a chi-square test against (a/2 salt, a/2 pepper, 1 - a kept).
* Samplers: shapes independent of severity, moments, supports, generator reproducibility; a mixed-severity
  batch equals per-sample calls; every preset's table gives in-range output of the right shape.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import skimage.util
import torch

import augrobust
from augrobust.corruptions import gaussian_noise as gaussian_mod
from augrobust.corruptions import impulse_noise as impulse_mod
from augrobust.corruptions import shot_noise as shot_mod
from augrobust.corruptions import speckle_noise as speckle_mod
from augrobust.corruptions._spec import PRESETS
from tests.oracle import oracle_corrupt, photo

NOISES = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
SEVERITIES = (1, 2, 3, 4, 5)
SIZES = ((224, 224), (32, 32), (96, 160))

#: The imagecorruptions parameter of each severity (the "imagenet" table) as the oracle's source has it.
ORACLE_C = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
    "speckle_noise": (0.15, 0.20, 0.35, 0.45, 0.60),
}


def _images() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(1234)
    images = [(f"astronaut-{h}x{w}", photo("astronaut", (h, w))) for h, w in SIZES]
    images += [("coffee-96x160", photo("coffee", (96, 160))), ("chelsea-32x32", photo("chelsea", (32, 32)))]
    images += [(f"random-{h}x{w}", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in SIZES]
    return images


IMAGES = _images()
_RANDOM_NOISE = skimage.util.random_noise  # the unpatched routine, for the seeded wrapper in _oracle


def _chw(a: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """HWC NumPy -> (1, C, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].to(dtype)


def _replay_params(name: str, img: np.ndarray, severity: int, seed: int) -> dict[str, torch.Tensor]:
    """The oracle's random draws for ``(img, severity)`` after seeding, as augrobust params.

    gaussian/speckle: ``np.random.normal(size=HxWx3)`` (the oracle's call with ``scale=c`` draws the same
    standard normals and multiplies by ``c``). shot: the oracle's ``np.random.poisson(x * c)`` counts.
    impulse: scikit-image's ``rng.random(shape)`` twice (flip, then salt) from ``default_rng(seed)``; the
    oracle is run with that same generator injected (see :func:`_oracle`).
    """
    x = np.array(img) / 255.0
    if name in ("gaussian_noise", "speckle_noise"):
        np.random.seed(seed)
        return {"noise": _chw(np.random.normal(size=x.shape))}
    if name == "shot_noise":
        np.random.seed(seed)
        c = ORACLE_C[name][severity - 1]
        return {"counts": _chw(np.random.poisson(x * c))}
    if name == "impulse_noise":
        rng = np.random.default_rng(seed)
        flip = rng.random(x.shape)
        salt = rng.random(x.shape)
        return {"flip_uniform": _chw(flip), "salt_uniform": _chw(salt)}
    raise AssertionError(name)


def _oracle(name: str, img: np.ndarray, severity: int, seed: int, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """Run the oracle with shared randomness.

    imagecorruptions calls ``sk.util.random_noise(..., mode='s&p', amount=c)`` without a seed, so
    scikit-image draws from a fresh ``np.random.default_rng()``; the wrapper injects
    ``rng=np.random.default_rng(seed)`` (looked up at call time through ``skimage.util``), leaving the
    algorithm itself untouched.
    """
    if name == "impulse_noise":

        def seeded_random_noise(image, mode="gaussian", rng=None, clip=True, **kwargs):
            return _RANDOM_NOISE(image, mode=mode, rng=np.random.default_rng(seed), clip=clip, **kwargs)

        monkeypatch.setattr(skimage.util, "random_noise", seeded_random_noise)
    return oracle_corrupt(img, name, severity, seed)


def _floor_uint8(y: torch.Tensor) -> np.ndarray:
    """augrobust float output -> uint8 HWC, floored as ``np.uint8`` does in the oracle."""
    return np.floor(y[0].permute(1, 2, 0).numpy().astype(np.float64) * 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Fidelity against imagecorruptions 1.1.2
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", NOISES)
def test_float64_path_is_bit_identical_to_oracle(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for index, (label, img) in enumerate(IMAGES):
        for severity in SEVERITIES:
            seed = 1000 * index + severity
            params = _replay_params(name, img, severity, seed)
            expected = _oracle(name, img, severity, seed, monkeypatch)
            y = augrobust.corrupt(_chw(img) / 255.0, name, severity, params=params)
            assert y.dtype == torch.float64
            got = _floor_uint8(y)
            assert np.array_equal(got, expected), (
                f"{name} {label} s{severity}: {np.count_nonzero(got != expected)} elements differ"
            )


@pytest.mark.parametrize("name", NOISES)
def test_float32_and_uint8_paths_are_within_one_grey_level(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Bound 1: float32 rounding of x, sigma*z or counts/c can cross a floor boundary; nothing else differs.
    for index, (label, img) in enumerate(IMAGES[:3] + IMAGES[-1:]):
        for severity in (1, 3, 5):
            seed = 77 + 10 * index + severity
            params = _replay_params(name, img, severity, seed)
            expected = _oracle(name, img, severity, seed, monkeypatch).astype(int)
            # Normal fields go to float32; replayed counts and float64 uniforms stay exact.
            params32 = {k: v.float() if k == "noise" else v for k, v in params.items()}
            y32 = augrobust.corrupt(_chw(img, torch.float32) / 255.0, name, severity, params=params32)
            assert y32.dtype == torch.float32
            assert np.abs(_floor_uint8(y32).astype(int) - expected).max() <= 1, (label, severity)
            y8 = augrobust.corrupt(_chw(img, torch.uint8), name, severity, params=params32)
            assert y8.dtype == torch.uint8
            assert np.abs(y8[0].permute(1, 2, 0).numpy().astype(int) - expected).max() <= 1, (label, severity)


def test_oracle_impulse_draw_order_is_flip_then_salt() -> None:
    # The replay in _replay_params relies on scikit-image's s&p drawing the flip field first.
    x = np.full((16, 16, 3), 0.5)
    rng = np.random.default_rng(5)
    flip, salt = rng.random(x.shape) <= 0.3, rng.random(x.shape) <= 0.5
    expected = np.where(flip, np.where(salt, 1.0, 0.0), x)
    got = skimage.util.random_noise(x, mode="s&p", amount=0.3, rng=np.random.default_rng(5))
    assert np.array_equal(got, expected)


# --------------------------------------------------------------------------------------------------
# shot_noise: the exact Poisson sampler
# --------------------------------------------------------------------------------------------------


def _chi_square_pvalue(observed: np.ndarray, pmf: np.ndarray, min_expected: float = 20.0) -> float:
    """Chi-square p-value of counts per outcome against a pmf over the same outcomes.

    Outcomes with fewer than ``min_expected`` expected draws are pooled into one bin.
    """
    n = observed.sum()
    expected = pmf / pmf.sum() * n
    big = expected >= min_expected
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    assert obs[~keep].sum() == 0, "draws where the pmf is zero"
    if keep.sum() < 2:
        return 1.0
    return scipy.stats.chisquare(obs[keep], exp[keep] * obs[keep].sum() / exp[keep].sum()).pvalue


def _poisson_pmf_clipped(rate: float, top: int) -> np.ndarray:
    """pmf of ``min(Poisson(rate), top)`` over 0..top."""
    pmf = scipy.stats.poisson.pmf(np.arange(top + 1), rate)
    pmf[top] = scipy.stats.poisson.sf(top - 1, rate)
    return pmf


@pytest.mark.parametrize("rate", [0.0, 1e-3, 0.3, 1.0, 2.7, 13.0, 59.9, 149.93, 500.0])
def test_poisson_from_uniform_pmf_matches_scipy(rate: float) -> None:
    n = 200_000
    g = torch.Generator().manual_seed(int(rate * 1000) + 7)
    u = torch.rand(n, dtype=torch.float64, generator=g)
    k = shot_mod.poisson_from_uniform(torch.full((n,), rate, dtype=torch.float64), u).numpy()
    assert np.array_equal(k, np.round(k)) and k.min() >= 0
    if rate == 0.0:
        assert k.max() == 0
        return
    top = int(rate + 12 * np.sqrt(rate) + 30)
    observed = np.bincount(np.minimum(k.astype(np.int64), top), minlength=top + 1)
    assert _chi_square_pvalue(observed, _poisson_pmf_clipped(rate, top)) > 1e-3
    # Moments, a second check that does not depend on binning.
    assert abs(k.mean() - rate) < 5 * np.sqrt(rate / n) + 1e-9
    # Var of the sample variance of Poisson(r) is (mu4 - r^2) / n = (r + 2 r^2) / n.
    assert abs(k.var() - rate) < 6 * np.sqrt((rate + 2 * rate**2) / n)


@pytest.mark.parametrize("preset", PRESETS)
def test_level_alias_tables_reproduce_the_poisson_pmf(preset: str) -> None:
    # Exact law of the alias draw: atom k gets (prob of its own columns + 1 - prob of columns aliasing
    # to it) / K; compare with scipy for every severity and level 0..255 (tails folded: < 1e-20).
    tables = shot_mod._level_tables(preset, torch.device("cpu"))
    for s, c in enumerate(shot_mod.TABLES[preset]):
        width, start = int(tables["width"][s]), int(tables["start"][s])
        assert width & (width - 1) == 0  # a power of two: u * K splits into column and fraction exactly
        prob = tables["prob"][start : start + 256 * width].view(256, width)
        counts = tables["counts"][2 * start : 2 * (start + 256 * width)].view(256, width, 2).long()
        assert prob.min() >= 0 and prob.max() <= 1
        size = int(counts.max()) + 1
        pmf = torch.zeros(256, size, dtype=torch.float64)
        pmf.scatter_add_(1, counts[..., 0], prob / width).scatter_add_(1, counts[..., 1], (1 - prob) / width)
        expected = scipy.stats.poisson.pmf(np.arange(size)[None], np.arange(256)[:, None] * c / 255)
        assert np.abs(pmf.numpy() - expected).max() < 1e-13, (preset, c)


@pytest.mark.parametrize("path", ["fast", "general"])
def test_shot_noise_kernel_reads_the_alias_table(path: str) -> None:
    # u = (j + f) / K selects column j; the count is its own atom when f < prob[j], else its alias.
    preset, severity, level = "imagenet", 2, 200
    tables = shot_mod._level_tables(preset, torch.device("cpu"))
    c, width, start = shot_mod.TABLES[preset][severity - 1], int(tables["width"][1]), int(tables["start"][1])
    prob = tables["prob"][start + level * width : start + (level + 1) * width]
    counts = tables["counts"][2 * (start + level * width) : 2 * (start + (level + 1) * width)].view(width, 2)
    j = torch.arange(width, dtype=torch.float64)
    below, above = (prob - 1e-9).clamp(min=0), (prob + 1e-9).clamp(max=1 - 2**-40)
    u = torch.cat([(j + below) / width, (j + above) / width]).view(1, 1, 2, width)
    # f < prob: the own atom (index 0), else the alias (index 1); the 1e-9 margins survive rounding.
    pick = torch.cat([(below >= prob).long(), (above >= prob).long()])
    expected = counts.repeat(2, 1).gather(1, pick[:, None]).view(1, 1, 2, width)
    assert 0 < pick.sum() < 2 * width  # both branches are exercised
    x = torch.full((1, 1, 2, width), level / 255, dtype=torch.float64)
    y = shot_mod.shot_noise(x, torch.tensor([severity]), {"u": u}, preset=preset, reference="imagecorruptions",
                            general=path == "general")  # fmt: skip
    assert torch.equal(y, (expected.double() / c).clamp(max=1))


@pytest.mark.parametrize(
    ("preset", "severity", "level"),
    [("imagenet", 1, 255), ("imagenet", 3, 128), ("imagenet", 5, 7), ("imagenet", 2, 1), ("cifar", 1, 200),
     ("cifar", 5, 255), ("tinyimagenet", 4, 90), ("inception", 2, 33)],
)  # fmt: skip
@pytest.mark.parametrize("path", ["fast", "general"])
def test_shot_noise_kernel_draws_poisson_counts(preset: str, severity: int, level: int, path: str) -> None:
    # Constant uint8-valued images (fast path) or a level off the lattice (general path): y * c are
    # counts, clipped at c, with the law of min(Poisson(level / 255 * c), c).
    c = shot_mod.TABLES[preset][severity - 1]
    t = level if path == "fast" else level - 0.37
    x = torch.full((8, 3, 64, 64), t / 255, dtype=torch.float64)
    y = augrobust.corrupt(x, "shot_noise", severity, preset=preset, generator=torch.Generator().manual_seed(level))
    k = (y * c).numpy()
    assert np.abs(k - np.round(k)).max() < 1e-9
    observed = np.bincount(np.round(k).astype(np.int64).ravel(), minlength=c + 1)
    rate = float(x[0, 0, 0, 0]) * c
    assert _chi_square_pvalue(observed, _poisson_pmf_clipped(rate, c)) > 1e-3, (rate, observed[:10])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("preset", ["imagenet", "cifar"])
def test_shot_noise_fast_and_general_paths_agree_on_uint8_valued_images(dtype: torch.dtype, preset: str) -> None:
    # The general path's residual rate is exactly 0 on integral levels, so both paths map u alike.
    x = torch.randint(0, 256, (3, 3, 40, 50), generator=torch.Generator().manual_seed(8)).to(dtype) / 255
    severity = torch.tensor([1, 3, 5])
    p = augrobust.sample_corruption_params("shot_noise", x.shape, severity, generator=torch.Generator().manual_seed(9))
    kw = {"preset": preset, "reference": "imagecorruptions"}
    fast = shot_mod.shot_noise(x, severity, p, general=False, **kw)
    assert torch.equal(fast, shot_mod.shot_noise(x, severity, p, general=True, **kw))
    assert torch.equal(fast, shot_mod.shot_noise(x, severity, p, **kw))  # the automatic choice
    # A non-integral element sends its block through the general path; the others are unchanged.
    x2 = x.clone()
    x2[0, 0, 0, 0] += 0.3 / 255
    y2 = shot_mod.shot_noise(x2, severity, p, **kw)
    y2[0, 0, 0, 0] = fast[0, 0, 0, 0]
    assert torch.equal(fast, y2)


def test_shot_noise_sampler_gives_clipped_poisson_counts_on_images() -> None:
    # Through the public API: y = min(Poisson(x c) / c, 1); compare its mean and variance with scipy's.
    g = torch.Generator().manual_seed(3)
    x = torch.full((16, 3, 32, 32), 0.3, dtype=torch.float64)
    for severity, c in zip(SEVERITIES, ORACLE_C["shot_noise"]):
        y = augrobust.corrupt(x, "shot_noise", severity, generator=g)
        assert torch.allclose(y * c, (y * c).round(), atol=1e-9)
        k = np.arange(200)
        pmf = scipy.stats.poisson.pmf(k, 0.3 * c)
        values = np.minimum(k / c, 1.0)
        mean = (pmf * values).sum()
        var = (pmf * values**2).sum() - mean**2
        n = y.numel()
        assert abs(y.mean().item() - mean) < 5 * np.sqrt(var / n)
        assert abs(y.var().item() / var - 1) < 0.06


# --------------------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NOISES)
def test_params_shape_does_not_depend_on_severity_and_generator_replays(name: str) -> None:
    shapes = set()
    for severity in (1, 5, torch.tensor([1, 5, 3])):
        p = augrobust.sample_corruption_params(name, (3, 3, 16, 24), severity)
        shapes.add(tuple((k, tuple(v.shape)) for k, v in sorted(p.items())))
    assert len(shapes) == 1
    for _, shape in next(iter(shapes)):
        assert shape == (3, 3, 16, 24)
    a = augrobust.sample_corruption_params(name, (2, 3, 8, 8), 2, generator=torch.Generator().manual_seed(9))
    b = augrobust.sample_corruption_params(name, (2, 3, 8, 8), 2, generator=torch.Generator().manual_seed(9))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["gaussian_noise", "speckle_noise"])
def test_normal_field_is_standard_normal(name: str) -> None:
    g = torch.Generator().manual_seed(11)
    z = augrobust.sample_corruption_params(name, (16, 3, 64, 64), 3, generator=g)["noise"].double()
    n = z.numel()
    assert abs(z.mean().item()) < 5 / np.sqrt(n)
    assert abs(z.var().item() - 1) < 5 * np.sqrt(2 / n)
    assert scipy.stats.kstest(z.flatten()[:50_000].numpy(), "norm").pvalue > 1e-3


@pytest.mark.parametrize(("name", "dtype"), [("shot_noise", torch.float64), ("impulse_noise", torch.float32)])
def test_uniform_field_is_uniform(name: str, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(12)
    p = augrobust.sample_corruption_params(name, (8, 3, 64, 64), 4, generator=g)
    assert sorted(p) == ["u"] and p["u"].dtype == dtype
    u = p["u"].double().flatten()
    assert u.min() >= 0 and u.max() < 1
    hist = torch.histc(u, bins=20, min=0, max=1).numpy()
    assert scipy.stats.chisquare(hist).pvalue > 1e-3
    if dtype == torch.float64:  # the alias draw needs more than float32's 24 bits
        assert not torch.equal(u * 2**24, (u * 2**24).round())


@pytest.mark.parametrize("preset", PRESETS)
def test_impulse_single_field_law_is_salt_pepper_keep(preset: str) -> None:
    # One uniform per element: salt (u < a/2), pepper (a/2 <= u < a), kept: chi-square against
    # (a/2, a/2, 1 - a), the law of scikit-image's two fields (flip <= a, then salt <= 0.5).
    g = torch.Generator().manual_seed(14)
    x = torch.full((16, 3, 64, 64), 0.5)
    for severity, amount in enumerate(impulse_mod.TABLES[preset], start=1):
        y = augrobust.corrupt(x, "impulse_noise", severity, preset=preset, generator=g)
        observed = np.array([(y == 1).sum().item(), (y == 0).sum().item(), (y == 0.5).sum().item()])
        assert observed.sum() == y.numel()
        p = scipy.stats.chisquare(observed, np.array([amount / 2, amount / 2, 1 - amount]) * y.numel()).pvalue
        assert p > 1e-3, (preset, severity, observed)


def test_impulse_noise_rates_and_colour_impulses() -> None:
    g = torch.Generator().manual_seed(13)
    x = torch.full((32, 3, 32, 32), 0.5)
    for severity, amount in zip(SEVERITIES, ORACLE_C["impulse_noise"]):
        y = augrobust.corrupt(x, "impulse_noise", severity, generator=g)
        assert set(torch.unique(y).tolist()) <= {0.0, 0.5, 1.0}
        n = y.numel()
        flipped = (y != 0.5).double().mean().item()
        assert abs(flipped - amount) < 5 * np.sqrt(amount * (1 - amount) / n)
        salt = ((y == 1).sum() / (y != 0.5).sum()).item()
        assert abs(salt - 0.5) < 5 * np.sqrt(0.25 / (amount * n))
    # Per element, not per pixel: channels flip independently (P(all three) = a^3, not a).
    y = augrobust.corrupt(x, "impulse_noise", 5, generator=g)
    all_three = (y != 0.5).all(dim=1).double().mean().item()
    assert all_three < 0.27**2


# --------------------------------------------------------------------------------------------------
# Batching, presets, channels
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("uint8_valued", [False, True])
@pytest.mark.parametrize("name", NOISES)
@pytest.mark.parametrize("preset", PRESETS)
def test_mixed_severity_batch_equals_per_sample_calls(name: str, preset: str, uint8_valued: bool) -> None:
    x = torch.rand(5, 3, 12, 20, generator=torch.Generator().manual_seed(1))
    if uint8_valued:  # shot_noise's fast path
        x = (x * 255).round() / 255
    severity = torch.tensor([3, 1, 5, 2, 4])
    params = augrobust.sample_corruption_params(
        name, x.shape, severity, preset=preset, generator=torch.Generator().manual_seed(2)
    )
    batch = augrobust.corrupt(x, name, severity, preset=preset, params=params)
    for i in range(5):
        one = augrobust.corrupt(
            x[i : i + 1], name, int(severity[i]), preset=preset, params={k: v[i : i + 1] for k, v in params.items()}
        )
        assert torch.equal(batch[i : i + 1], one), (name, preset, i)


@pytest.mark.parametrize("name", NOISES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_gives_in_range_output(name: str, preset: str) -> None:
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    y = augrobust.corrupt(x, name, torch.arange(1, 6), preset=preset, generator=torch.Generator().manual_seed(5))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    assert not torch.equal(y, x)
    assert torch.equal(x, torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(4)))  # not in place


@pytest.mark.parametrize("name", NOISES)
def test_tables_have_five_increasing_severities_per_preset(name: str) -> None:
    tables = {
        "gaussian_noise": gaussian_mod.TABLES,
        "shot_noise": shot_mod.TABLES,
        "impulse_noise": impulse_mod.TABLES,
        "speckle_noise": speckle_mod.TABLES,
    }[name]
    assert set(tables) == set(PRESETS)
    assert tuple(tables["imagenet"]) == pytest.approx(ORACLE_C[name])
    for row in tables.values():
        assert len(row) == 5
        # Severity grows: more noise (sigma, amount) or fewer photons (shot noise's c).
        assert list(row) == sorted(row, reverse=name == "shot_noise")


@pytest.mark.parametrize("name", NOISES)
def test_grayscale_is_one_noisy_channel_and_rgba_keeps_alpha(name: str) -> None:
    g = torch.Generator().manual_seed(6)
    gray = torch.rand(2, 1, 16, 16, generator=g)
    assert augrobust.corrupt(gray, name, 3, generator=g).shape == (2, 1, 16, 16)
    rgba = torch.rand(2, 4, 16, 16, generator=g)
    y = augrobust.corrupt(rgba, name, 3, generator=g)
    assert y.shape == rgba.shape and torch.equal(y[:, 3], rgba[:, 3])


def test_shot_noise_counts_replay_reproduces_the_sampler_output() -> None:
    # The two params forms meet: the sampler's counts (y * c, clipped at c) replay to the same image.
    x = torch.randint(0, 256, (2, 3, 8, 8), generator=torch.Generator().manual_seed(8)).double() / 255
    p = augrobust.sample_corruption_params("shot_noise", x.shape, 2, generator=torch.Generator().manual_seed(9))
    y = augrobust.corrupt(x, "shot_noise", 2, params=p)
    counts = (y * 25).round()
    assert torch.equal(y, augrobust.corrupt(x, "shot_noise", 2, params={"counts": counts}))


# Tall, wide, odd and 2-D grayscale shapes (issue 9: fidelity was tested at square and wide sizes only), one
# severity per shape, photos and random arrays, under the oracle's own draws.
SHAPE_CASES = (((181, 64), 1), ((41, 150), 2), ((45, 71), 3), ((97, 37), 4), ((53, 40), 5))


@pytest.mark.parametrize("name", NOISES)
@pytest.mark.parametrize("case", range(len(SHAPE_CASES)))
def test_float64_bit_identical_at_every_kind_of_shape(name: str, case: int, monkeypatch: pytest.MonkeyPatch) -> None:
    (h, w), severity = SHAPE_CASES[case]
    rng = np.random.default_rng(case)
    gray = photo("rocket", (h, w)).mean(axis=2).astype(np.uint8)
    images = {"photo": photo("chelsea", (h, w)), "random": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
              "gray2d": gray}  # fmt: skip
    for label, img in images.items():
        seed = 31 * case + severity
        rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img  # the oracle replicates (H, W)
        params = _replay_params(name, rgb, severity, seed)
        expected = _oracle(name, img, severity, seed, monkeypatch)
        got = _floor_uint8(augrobust.corrupt(_chw(rgb) / 255.0, name, severity, params=params))
        assert np.array_equal(got, expected), f"{name} {label} {h}x{w} s{severity}: {np.count_nonzero(got != expected)}"
