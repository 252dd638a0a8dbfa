"""GNT: calibrated Gaussian noise, speckle noise, L2 calibration and their errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import augrobust
from augrobust.functional import (
    GNT_SIGMAS,
    apply_gaussian_noise,
    calibrate_l2,
    eps_for_sigma,
    parse_strength,
    sample_gaussian_noise,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- behaviour ---------------------------------------------------------------------------------------------


def test_sigma_mode_is_clip_of_x_plus_sigma_times_noise():
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    aug = augrobust.GaussianNoise(sigma=0.3, seed=0)
    y = aug(x)
    noise = aug._params["noise"].double()  # drawn in float32 whatever the input's dtype
    torch.testing.assert_close(y, (x + 0.3 * noise).clamp(0, 1), rtol=0, atol=0)


def test_noise_is_standard_normal_and_independent_per_pixel_and_channel():
    params = sample_gaussian_noise((64, 3, 32, 32), 0.5, generator=torch.Generator().manual_seed(0))
    n = params["noise"]
    assert abs(n.mean().item()) < 0.01 and abs(n.std().item() - 1) < 0.01
    flat = n.permute(1, 0, 2, 3).reshape(3, -1)
    corr = torch.corrcoef(flat)
    assert (corr - torch.eye(3)).abs().max() < 0.02  # channels independent
    lag = torch.corrcoef(torch.stack([n[..., :-1].flatten(), n[..., 1:].flatten()]))[0, 1]
    assert abs(lag) < 0.02  # neighbouring pixels independent


def test_sigma_set_is_drawn_uniformly_per_image():
    params = sample_gaussian_noise((6000, 1, 1, 1), list(GNT_SIGMAS), generator=torch.Generator().manual_seed(0))
    values, counts = params["sigma"].unique(return_counts=True)
    torch.testing.assert_close(values, torch.tensor(GNT_SIGMAS, dtype=torch.float64))
    expected = 6000 / 5
    chi2 = ((counts.float() - expected) ** 2 / expected).sum().item()
    assert chi2 < 18.5  # chi-square, 4 dof, p = 0.001


def test_sigma_range_is_uniform_between_its_bounds():
    s = sample_gaussian_noise((20000, 1, 1, 1), (0.1, 0.3), generator=torch.Generator().manual_seed(0))["sigma"]
    assert s.min() >= 0.1 and s.max() <= 0.3
    assert abs(s.mean().item() - 0.2) < 0.002 and abs(s.var().item() - 0.2**2 / 12) < 2e-4


def test_clean_fraction_follows_p():
    x = torch.full((4000, 1, 2, 2), 0.5)
    y = augrobust.GaussianNoise(sigma=0.2, p=0.5, seed=0)(x)
    noised = (y != x).flatten(1).any(1).float().mean().item()
    assert abs(noised - 0.5) < 0.03


def test_uint8_input_is_noised_in_unit_range_and_floored():
    x8 = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    aug = augrobust.GaussianNoise(sigma=0.1, seed=0)
    y8 = aug(x8)
    expected = ((x8.float() / 255 + 0.1 * aug._params["noise"]).clamp(0, 1) * 255).floor().to(torch.uint8)
    assert torch.equal(y8, expected)


def test_same_on_batch_uses_one_field_and_one_sigma():
    aug = augrobust.GaussianNoise(sigma=[0.1, 0.2, 0.3], same_on_batch=True, seed=0)
    x = torch.full((4, 3, 8, 8), 0.5)
    y = aug(x)
    assert all(torch.equal(y[0], y[i]) for i in range(4))


def test_speckle_is_multiplicative():
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    aug = augrobust.SpeckleNoise(sigma=0.35, seed=0)
    y = aug(x)
    torch.testing.assert_close(y, (x + x * (0.35 * aug._params["noise"].double())).clamp(0, 1), rtol=0, atol=0)


def test_eps_for_sigma_matches_the_gnt_budget_and_monte_carlo():
    assert eps_for_sigma(0.5, (3, 224, 224)) == pytest.approx(135, abs=1.0)
    x = torch.rand(16, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    n = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for sigma in (0.08, 0.5, 1.0):
        measured = ((x + sigma * n).clamp(0, 1) - x).flatten(1).norm(dim=1).mean().item()
        assert eps_for_sigma(sigma, (3, 64, 64), image=x) == pytest.approx(measured, rel=0.01)


def test_eps_mode_calibrates_every_noised_image():
    x = torch.rand(8, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    y = augrobust.GaussianNoise(eps=135.0, seed=0)(x)
    norms = (y.double() - x.double()).flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.full((8,), 135.0, dtype=torch.float64), rtol=1e-4, atol=0)


def test_calibration_is_differentiable_with_respect_to_the_direction():
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    d = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda d: calibrate_l2(x, d, 2.0).image, (d,))


def test_calibration_reports_saturation_when_the_budget_is_out_of_reach():
    x = torch.full((1, 3, 4, 4), 0.5)
    result = calibrate_l2(x, torch.randn(x.shape, generator=torch.Generator().manual_seed(0)), 100.0)
    assert bool(result.saturated[0])
    reachable = math.sqrt(48 * 0.25)  # every coordinate pushed 0.5 to a bound
    assert result.norm[0].item() == pytest.approx(reachable, rel=1e-5)
    assert ((result.image - x).abs() - 0.5).abs().max() < 1e-6


# -- properties (hypothesis) -------------------------------------------------------------------------------

shapes = st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(1, 12), st.integers(1, 12))
sigmas = st.one_of(
    st.floats(0, 2),
    st.lists(st.floats(0, 2), min_size=1, max_size=5),
    st.tuples(st.floats(0, 1), st.floats(1, 2)),
)


@SETTINGS
@given(shape=shapes, sigma=sigmas, p=st.floats(0, 1), seed=st.integers(0, 2**31), uint8=st.booleans())
def test_output_keeps_shape_dtype_and_valid_range(shape, sigma, p, seed, uint8):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    if uint8:
        x = (x * 255).to(torch.uint8)
    y = augrobust.GaussianNoise(sigma=sigma, p=p, seed=seed)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    if not uint8:
        assert bool((y >= 0).all()) and bool((y <= 1).all())


@SETTINGS
@given(
    batch=st.integers(1, 3),
    side=st.integers(2, 24),
    eps=st.floats(0.01, 60),
    seed=st.integers(0, 2**31),
    darkness=st.floats(0.0, 1.0),
)
def test_eps_mode_hits_the_target_norm_or_saturates_and_says_so(batch, side, eps, seed, darkness):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, side, side, generator=g) * (1 - darkness)  # from full range to all black
    d = torch.randn(x.shape, generator=g)
    result = calibrate_l2(x, d, eps)
    measured = (result.image.double() - x.double()).flatten(1).norm(dim=1)
    for i in range(batch):
        if result.saturated[i]:
            # the whole reachable norm is used, and it falls short of eps
            assert measured[i].item() < eps
            moved = d[i] != 0
            bound = torch.where(d[i] >= 0, 1 - x[i], x[i])[moved]
            assert measured[i].item() == pytest.approx(bound.double().norm().item(), rel=1e-4)
        else:
            assert measured[i].item() == pytest.approx(eps, rel=1e-4)
        assert result.norm[i].item() == pytest.approx(measured[i].item(), rel=1e-4, abs=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), low=st.floats(0.01, 1.0), factor=st.floats(1.2, 3.0))
def test_expected_l2_distance_grows_with_sigma(seed, low, factor):
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(seed))

    def mean_distance(sigma: float) -> float:
        y = augrobust.GaussianNoise(sigma=sigma, seed=seed)(x)
        return (y - x).flatten(1).norm(dim=1).mean().item()

    assert mean_distance(low * factor) > mean_distance(low)


# -- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [augrobust.GaussianNoise, augrobust.SpeckleNoise, augrobust.v2.GaussianNoise])
def test_unknown_keyword_names_the_valid_ones(cls):
    with pytest.raises(augrobust.AugrobustTypeError, match=r"'sigm' \(did you mean 'sigma'\?\).*valid: sigma"):
        cls(sigm=0.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sigma": -0.1}, r"sigma must be >= 0, got -0.1"),
        ({"sigma": [0.1, -1.0]}, r"sigma must be >= 0, got -1.0"),
        ({"sigma": (0.5, 0.1)}, r"min <= max"),
        ({"sigma": (0.1, 0.2, 0.3)}, r"a tuple means a \(min, max\) range.*pass a list"),
        ({"sigma": "0.5"}, r"sigma must be a number, a list of numbers"),
        ({"eps": 0.0}, r"eps must be > 0, got 0.0"),
        ({"eps": -3.0}, r"eps must be > 0"),
        ({"sigma": 0.5, "eps": 10.0}, r"either sigma .* or eps"),
        ({"p": 1.5}, r"p must be a probability in \[0, 1\], got 1.5"),
        ({"seed": -1}, r"seed must be >= 0"),
    ],
)
def test_bad_arguments_are_rejected_at_construction(kwargs, message):
    with pytest.raises(augrobust.AugrobustError, match=message):
        augrobust.GaussianNoise(**kwargs)


@pytest.mark.parametrize("shape", [(8, 8), (2, 2, 3, 8, 8), (8,)])
def test_rank_other_than_3_or_4_is_rejected(shape):
    with pytest.raises(augrobust.AugrobustValueError, match=rf"rank 3 \(C, H, W\) or 4 \(B, C, H, W\), got rank {len(shape)}"):
        augrobust.GaussianNoise()(torch.rand(shape))


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.complex64])
def test_unsupported_dtype_is_rejected(dtype):
    with pytest.raises(augrobust.AugrobustTypeError, match=r"dtype .* allowed: uint8, float16, bfloat16, float32, float64"):
        augrobust.GaussianNoise()(torch.zeros(3, 8, 8, dtype=dtype))


def test_non_tensor_input_is_rejected():
    with pytest.raises(augrobust.AugrobustTypeError, match=r"must be a torch.Tensor.*got ndarray"):
        import numpy as np

        augrobust.GaussianNoise()(np.zeros((8, 8, 3)))


def test_replayed_params_with_another_channel_count_are_rejected():
    aug = augrobust.GaussianNoise(seed=0)
    aug(torch.rand(2, 3, 8, 8))
    with pytest.raises(augrobust.AugrobustValueError, match=r"noise field has shape \(2, 3, 8, 8\).*\(2, 1, 8, 8\)"):
        aug(torch.rand(2, 1, 8, 8), params=aug._params)


def test_corruption_channel_mismatch_is_rejected():
    with pytest.raises(augrobust.AugrobustValueError, match=r"has 2 channels.*allowed: \[1, 3, 4\]"):
        augrobust.Corruption("gaussian_noise")(torch.rand(2, 2, 8, 8))


def test_unknown_call_keyword_is_rejected_not_swallowed():
    with pytest.raises(augrobust.AugrobustTypeError, match=r"unknown keyword argument\(s\) 'generatr'"):
        augrobust.GaussianNoise()(torch.rand(3, 8, 8), generatr=torch.Generator())


def test_parse_strength_kinds():
    assert parse_strength(0.5, "sigma").kind == "fixed"
    assert parse_strength([0.1, 0.2], "sigma").kind == "choice"
    assert parse_strength((0.1, 0.2), "sigma").kind == "range"
    with pytest.raises(augrobust.AugrobustValueError):
        parse_strength([], "sigma")
    with pytest.raises(augrobust.AugrobustValueError, match="finite"):
        parse_strength(float("nan"), "sigma")


def test_apply_reports_missing_params():
    with pytest.raises(augrobust.AugrobustValueError, match=r"missing \['sigma'\]"):
        apply_gaussian_noise(torch.rand(1, 3, 4, 4), {"noise": torch.zeros(1, 3, 4, 4)})


def test_functional_gaussian_noise_has_torchvision_meaning_and_values():
    # The name is torchvision's, so it takes torchvision's arguments (mean, sigma, clip) and, from the same
    # global RNG state, gives torchvision's values.
    from torchvision.transforms.v2 import functional as TF

    from augrobust.functional import gaussian_noise

    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for args in [(), (0.0, 0.2), (0.1, 0.3, False), (-0.2, 0.05, True)]:
        torch.manual_seed(7)
        want = TF.gaussian_noise(x, *args)
        torch.manual_seed(7)
        assert torch.equal(gaussian_noise(x, *args), want), args
