"""AFA: Fourier-basis noise (functional + FourierNoise) and the auxiliary-BN training method.

Specification proven here:
- at square sizes S = 32, 64, 224 the output equals an independent float64 numpy transcription of the
  reference formula (grid linspace(-S/2, S/2, S), u along rows, k/S cycles, -pi/4 phase, unit L2 norm,
  S/32 scale, clamp), aliased frequencies k > S/2 included; with the same global seed the sampler draws
  the reference's own k, theta and sigma (same order, same calls);
- non-square images follow the documented rule (per-axis reference grids, k / max(H, W), sqrt(HW)/32) and
  every wave has per-pixel RMS exactly 1/32 per unit strength, at any size;
- k ~ U{1..S} (U{1..S//2} with "nyquist"), theta uniform on the 448-point grid of [-pi, 0],
  sigma ~ Exp(mean) + min (chi-square / KS tests at a fixed seed), independent across channels and samples;
- the clamp, replay, gating, same_on_batch, differentiability w.r.t. x, and clear errors;
- DualBatchNorm2d routes: only the routed BN's statistics and parameters change, evaluation uses main;
  convert_to_dual_bn / auxiliary_route; AFA's loss equals 1/2 [CE(f_M(x)) + CE(f_A(aug(x)))] computed on two
  plain copies of the network; a short training run with method "afa" (and with DAMP) works.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

import augrobust
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional import apply_fourier_noise, fourier_basis_waves, sample_fourier_noise
from augrobust.train import (
    AFA,
    DAMP,
    METHODS,
    AFANoAux,
    DualBatchNorm2d,
    Method,
    TrainConfig,
    auxiliary_route,
    build_model,
    convert_to_dual_bn,
    get_method,
    perturbable_modules,
    strip_dual_bn,
    train,
)

# -- an independent float64 transcription of the reference formula --------------------------------------


def reference_wave(k: float, theta: float, height: int, width: int) -> np.ndarray:
    """sin(2 pi (k/S)(u cos th + v sin th) - pi/4), unit L2 norm, times sqrt(HW)/32 (= S/32 when square)."""
    size = max(height, width)
    u = np.linspace(-height / 2, height / 2, height)
    v = np.linspace(-width / 2, width / 2, width)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    w = np.sin(2 * np.pi * (k / size) * (uu * np.cos(theta) + vv * np.sin(theta)) - np.pi / 4)
    return w / np.sqrt((w**2).sum()) * math.sqrt(height * width) / 32


def reference_output(x: np.ndarray, k: np.ndarray, theta: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    b, c, h, w = x.shape
    for i in range(b):
        for j in range(c):
            out[i, j] = np.clip(x[i, j] + sigma[i, j] * reference_wave(k[i, j], theta[i, j], h, w), 0.0, 1.0)
    return out


@pytest.mark.parametrize("size", [32, 64, 224])
def test_matches_the_reference_formula_at_square_sizes(size):
    g = torch.Generator().manual_seed(size)
    x = torch.rand(2, 3, size, size, generator=g, dtype=torch.float64)
    params = sample_fourier_noise(x.shape, mean_strength=10.0, generator=g)
    # Include aliased frequencies (k > S/2, k = S) and the orientation grid's end points.
    params["frequency"][0] = torch.tensor([size, size - 1, size // 2 + 1])
    params["orientation"][1, :2] = torch.tensor([0.0, -math.pi], dtype=torch.float64)
    expected = reference_output(
        x.numpy(), params["frequency"].numpy(), params["orientation"].numpy(), params["strength"].numpy()
    )
    np.testing.assert_allclose(apply_fourier_noise(x, params).numpy(), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(apply_fourier_noise(x.float(), params).double().numpy(), expected, rtol=0, atol=1e-6)


def test_draws_the_references_parameters_from_the_same_seed():
    size, granularity, b, c = 32, 448, 6, 3
    torch.manual_seed(123)
    ours = sample_fourier_noise((b, c, size, size), mean_strength=5.0, min_strength=0.5, granularity=granularity)
    # The reference: freqs[randint(0, S, (b, c, 1, 1))], then phases[randint(0, G, ...)], then a float32
    # exponential of the same shape, all from the global RNG.
    torch.manual_seed(123)
    freqs = torch.tensor([f / size for f in range(1, size + 1)], dtype=torch.float32)
    phases = torch.tensor(-np.pi * np.linspace(0, 1, num=granularity), dtype=torch.float32)
    f_s = freqs[torch.randint(0, size, (b, c, 1, 1))].reshape(b, c)
    p_s = phases[torch.randint(0, granularity, (b, c, 1, 1))].reshape(b, c)
    strengths = torch.empty(b, c, 1, 1).exponential_(1 / 5.0).reshape(b, c) + 0.5
    torch.testing.assert_close(ours["frequency"].float() / size, f_s, rtol=0, atol=0)
    torch.testing.assert_close(ours["orientation"].float(), p_s, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours["strength"].float(), strengths, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(17, 40), (40, 17), (64, 32), (1, 9), (9, 1), (8, 8)])
def test_non_square_rule_and_rms_invariant(shape):
    h, w = shape
    g = torch.Generator().manual_seed(h * 100 + w)
    k = torch.randint(1, max(h, w) + 1, (12,), generator=g)
    theta = -math.pi * torch.rand(12, generator=g, dtype=torch.float64)
    waves = fourier_basis_waves(k, theta, h, w, dtype=torch.float64)
    assert waves.shape == (12, h, w)
    rms = waves.pow(2).mean(dim=(-2, -1)).sqrt()
    torch.testing.assert_close(rms, torch.full_like(rms, 1 / 32), rtol=1e-12, atol=0)
    for i in range(12):
        np.testing.assert_allclose(waves[i].numpy(), reference_wave(int(k[i]), float(theta[i]), h, w), atol=1e-12)
    # And through the kernel: a mid-grey image and a small strength (no clamping) moves by RMS sigma / 32.
    x = torch.full((1, 2, h, w), 0.5, dtype=torch.float64)
    params = {
        "frequency": k[:2].reshape(1, 2),
        "orientation": theta[:2].reshape(1, 2),
        "strength": torch.tensor([[2.0, 3.0]], dtype=torch.float64),
    }
    delta = apply_fourier_noise(x, params) - x
    torch.testing.assert_close(delta.pow(2).mean(dim=(-2, -1)).sqrt(), torch.tensor([[2 / 32, 3 / 32]], dtype=torch.float64))


def test_pixel_grid_puts_nyquist_waves_on_dft_bins_and_reference_grid_does_not():
    size, k = 32, 5
    for grid, on_bin in (("pixel", True), ("reference", False)):
        wave = fourier_basis_waves(k, 0.0, size, grid=grid, dtype=torch.float64)  # varies along the rows only
        power = torch.fft.fft(wave[:, 0]).abs() ** 2
        share = float((power[k] + power[size - k]) / power.sum())
        assert (1 - share < 1e-12) if on_bin else (1 - share > 0.01)


# -- the sampler's distribution -------------------------------------------------------------------------


def test_frequency_orientation_and_strength_distributions():
    size, granularity = 32, 448
    g = torch.Generator().manual_seed(0)
    params = sample_fourier_noise(
        (40_000, 3, size, size), mean_strength=5.0, min_strength=2.0, granularity=granularity, generator=g
    )
    k = params["frequency"].flatten()
    assert k.dtype == torch.int64 and int(k.min()) == 1 and int(k.max()) == size
    assert stats.chisquare(torch.bincount(k - 1, minlength=size).numpy()).pvalue > 1e-3
    theta = params["orientation"].flatten().numpy()
    t = -theta / np.pi * (granularity - 1)  # the grid index
    np.testing.assert_allclose(t, np.round(t), atol=1e-9)
    assert stats.chisquare(np.bincount(np.round(t).astype(int), minlength=granularity)).pvalue > 1e-3
    assert np.round(t).min() == 0 and np.round(t).max() == granularity - 1
    sigma = params["strength"].flatten().numpy()
    assert sigma.min() >= 2.0
    assert stats.kstest(sigma - 2.0, "expon", args=(0, 5.0)).pvalue > 1e-3
    nyquist = sample_fourier_noise((5000, 3, 20, 33), frequencies="nyquist", generator=g)["frequency"]
    assert int(nyquist.min()) == 1 and int(nyquist.max()) == 33 // 2
    assert int(sample_fourier_noise((5000, 3, 20, 33), generator=g)["frequency"].max()) == 33
    fixed = sample_fourier_noise((10, 3, 8, 8), mean_strength=0.0, min_strength=1.5, generator=g)["strength"]
    assert bool((fixed == 1.5).all())


@pytest.mark.parametrize("axis", ["channel", "sample"])
def test_draws_are_independent_across_channels_and_samples(axis):
    size = 32
    params = sample_fourier_noise((30_000, 3, size, size), generator=torch.Generator().manual_seed(1))
    for key in ("frequency", "orientation", "strength"):
        v = params[key].double()
        a, b = (v[:, 0], v[:, 1]) if axis == "channel" else (v[:-1, 0], v[1:, 0])
        assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.03  # 5 standard errors
    k = params["frequency"]
    a, b = (k[:, 0], k[:, 1]) if axis == "channel" else (k[:-1, 2], k[1:, 2])
    table = torch.zeros(4, 4)  # quartiles of k x quartiles of k: a contingency test of independence
    table.index_put_(((a - 1) // 8, (b - 1) // 8), torch.ones(len(a)), accumulate=True)
    assert stats.chi2_contingency(table.numpy()).pvalue > 1e-3


def test_same_on_batch_and_gate():
    g = torch.Generator().manual_seed(2)
    params = sample_fourier_noise((5, 3, 16, 16), same_on_batch=True, generator=g)
    for value in params.values():
        assert bool((value == value[:1]).all())
    x = torch.rand(400, 1, 8, 8, generator=g)
    gated = sample_fourier_noise(x.shape, p=0.3, generator=g)
    y = apply_fourier_noise(x, gated)
    changed = (y != x).flatten(1).any(1)
    assert torch.equal(changed, gated["batch_prob"] > 0.5)
    assert 0.2 < float(changed.float().mean()) < 0.4


# -- the kernel -----------------------------------------------------------------------------------------


def test_clamp_saturates_without_touching_in_range_values():
    x = torch.full((1, 1, 32, 32), 0.5, dtype=torch.float64)
    params = {
        "frequency": torch.tensor([[3]]),
        "orientation": torch.tensor([[-0.7]], dtype=torch.float64),
        "strength": torch.tensor([[20.0]], dtype=torch.float64),
    }
    y = apply_fourier_noise(x, params)
    raw = 0.5 + 20.0 * torch.from_numpy(reference_wave(3, -0.7, 32, 32))
    assert bool((y == 0).any()) and bool((y == 1).any())
    inside = (raw > 0) & (raw < 1)
    torch.testing.assert_close(y[0, 0][inside], raw[inside], rtol=0, atol=1e-12)
    assert bool((y[0, 0][raw >= 1] == 1).all()) and bool((y[0, 0][raw <= 0] == 0).all())


def test_kernel_is_differentiable_in_x_and_leaves_the_input_alone():
    x = torch.full((2, 3, 16, 16), 0.5, requires_grad=True)
    params = sample_fourier_noise(x.shape, mean_strength=1.0, generator=torch.Generator().manual_seed(3))
    y = apply_fourier_noise(x, params)
    y.sum().backward()
    inside = ((y > 0) & (y < 1)).float()
    torch.testing.assert_close(x.grad, inside)
    assert bool((x == 0.5).all())


def test_transform_replay_uint8_and_functional_agree():
    x = torch.rand(4, 3, 24, 40, generator=torch.Generator().manual_seed(4))
    aug = augrobust.FourierNoise(seed=9)
    y = aug(x)
    assert torch.equal(aug(x, params=aug._params), y)
    assert torch.equal(apply_fourier_noise(x, aug._params), y)
    assert tuple(aug._params["frequency"].shape) == (4, 3)
    xu = (x * 255).round().to(torch.uint8)
    yu = aug(xu)
    expected = (apply_fourier_noise(xu.float() / 255, aug._params) * 255).floor().to(torch.uint8)
    assert yu.dtype == torch.uint8 and torch.equal(yu, expected)
    other = augrobust.FourierNoise(seed=9, grid="pixel")(x)
    assert not torch.equal(other, y)
    v2_out = augrobust.v2.FourierNoise(seed=9)(x)
    assert v2_out.shape == x.shape


def test_defaults_follow_the_papers_configs():
    aug = augrobust.FourierNoise()
    assert (aug.mean_strength, aug.min_strength, aug.granularity, aug.p) == (10.0, 0.0, 448, 1.0)
    assert (aug.frequencies, aug.grid) == ("reference", "reference")
    assert "mean_strength=10.0" in repr(aug)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mean_strength": -1.0}, AugrobustValueError, "mean_strength"),
        ({"mean_strength": float("nan")}, AugrobustValueError, "mean_strength"),
        ({"mean_strength": "5"}, AugrobustTypeError, "mean_strength"),
        ({"min_strength": -0.1}, AugrobustValueError, "min_strength"),
        ({"granularity": 0}, AugrobustValueError, "granularity"),
        ({"granularity": 4.5}, AugrobustValueError, "granularity"),
        ({"frequencies": "all"}, AugrobustValueError, "nyquist"),
        ({"grid": "dft"}, AugrobustValueError, "pixel"),
        ({"mean_strenght": 5.0}, AugrobustTypeError, "mean_strength"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        augrobust.FourierNoise(**kwargs)


def test_bad_params_and_inputs_raise_clear_errors():
    x = torch.rand(2, 3, 8, 8)
    params = sample_fourier_noise(x.shape)
    with pytest.raises(AugrobustValueError, match=r"\(B, C\)"):
        apply_fourier_noise(torch.rand(2, 1, 8, 8), params)
    with pytest.raises(AugrobustValueError, match="missing"):
        apply_fourier_noise(x, {"frequency": params["frequency"]})
    with pytest.raises(AugrobustTypeError, match="float"):
        apply_fourier_noise((x * 255).to(torch.uint8), params)
    with pytest.raises(AugrobustValueError, match=r"\(B, C, H, W\)"):
        sample_fourier_noise((3, 8, 8))
    with pytest.raises(AugrobustValueError, match="height"):
        fourier_basis_waves(1, 0.0, 0)


# -- dual BatchNorm and the AFA method --------------------------------------------------------------------


def _stats(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    return bn.running_mean.clone(), bn.running_var.clone()


def test_dual_batchnorm_updates_only_the_routed_copy_and_evaluates_with_main():
    torch.manual_seed(0)
    bn = DualBatchNorm2d(3)
    x = torch.randn(16, 3, 4, 4) * 2 + 1
    for route, used, unused in (("M", bn.main, bn.aux), ("A", bn.aux, bn.main)):
        bn.route = route
        before_used, before_unused = _stats(used), _stats(unused)
        out = bn(x)
        (out * torch.randn_like(out)).sum().backward()
        assert not torch.equal(_stats(used)[0], before_used[0])
        assert all(torch.equal(a, b) for a, b in zip(_stats(unused), before_unused))
        assert used.weight.grad is not None and unused.weight.grad is None
        used.weight.grad = used.bias.grad = None
    bn.eval()
    bn.route = "A"
    with torch.no_grad():
        bn.aux.running_mean.fill_(100.0)
        expected = F.batch_norm(x, bn.main.running_mean, bn.main.running_var, bn.main.weight, bn.main.bias, False)
        torch.testing.assert_close(bn(x), expected)
    with pytest.raises(AugrobustValueError, match="'M'"):
        bn.route = "B"


def test_convert_to_dual_bn_replaces_every_batchnorm_and_keeps_the_function():
    torch.manual_seed(0)
    model = build_model("resnet8_cifar", 5)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.weight.uniform_(0.5, 1.5)
    count = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    reference = copy.deepcopy(model)
    x = torch.rand(4, 3, 16, 16)
    converted = convert_to_dual_bn(model)
    assert converted is model
    duals = [m for m in model.modules() if isinstance(m, DualBatchNorm2d)]
    assert len(duals) == count and not any(
        isinstance(m, nn.BatchNorm2d) for m in model.modules() if not any(m is d.main or m is d.aux for d in duals)
    )
    for d in duals:
        assert torch.equal(d.main.weight, d.aux.weight) and d.main.weight is not d.aux.weight
        assert torch.equal(d.main.running_mean, d.aux.running_mean)
    model.eval(), reference.eval()
    torch.testing.assert_close(model(x), reference(x))
    assert convert_to_dual_bn(model) is model and len(
        [m for m in model.modules() if isinstance(m, DualBatchNorm2d)]
    ) == count  # idempotent
    assert isinstance(convert_to_dual_bn(nn.BatchNorm2d(2)), DualBatchNorm2d)
    # Back to a plain network with the main copies: same function, loads into the unconverted architecture.
    with torch.no_grad():
        for d in duals:
            d.aux.running_mean.add_(5.0)
    expected = model(x)
    plain = strip_dual_bn(model)
    assert not any(isinstance(m, DualBatchNorm2d) for m in plain.modules())
    torch.testing.assert_close(plain(x), expected)
    build_model("resnet8_cifar", 5).load_state_dict(plain.state_dict())


def test_auxiliary_route_switches_and_restores_even_on_error():
    model = convert_to_dual_bn(nn.Sequential(nn.BatchNorm2d(2), nn.Sequential(nn.BatchNorm2d(2))))
    model[0].route = "A"  # a previous route that is not the default must come back too
    with pytest.raises(RuntimeError):
        with auxiliary_route(model):
            assert [m.route for m in model.modules() if isinstance(m, DualBatchNorm2d)] == ["A", "A"]
            raise RuntimeError("boom")
    assert [m.route for m in model.modules() if isinstance(m, DualBatchNorm2d)] == ["A", "M"]


def _tiny_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )


def _flip(x: torch.Tensor) -> torch.Tensor:
    return 1.0 - x  # a deterministic stand-in for FourierNoise, so both computations see the same images


def test_afa_loss_equals_the_ace_formula_on_two_plain_copies():
    torch.manual_seed(0)
    plain = _tiny_net()
    x, y = torch.rand(8, 3, 6, 6), torch.randint(0, 3, (8,))
    main_copy, aux_copy = copy.deepcopy(plain), copy.deepcopy(plain)  # same weights, separate BNs
    method = AFA(augmentation=_flip)
    model = method.prepare_model(plain)
    loss, logits = method.loss(model, model, x, y)
    expected_main, expected_aux = main_copy(x), aux_copy(_flip(x))
    expected = 0.5 * (F.cross_entropy(expected_main, y) + F.cross_entropy(expected_aux, y))
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(logits, expected_main)
    torch.testing.assert_close(model[1].main.running_mean, main_copy[1].running_mean)
    torch.testing.assert_close(model[1].aux.running_mean, aux_copy[1].running_mean)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(model[0].weight.grad, main_copy[0].weight.grad + aux_copy[0].weight.grad)
    torch.testing.assert_close(model[1].main.weight.grad, main_copy[1].weight.grad)
    torch.testing.assert_close(model[1].aux.weight.grad, aux_copy[1].weight.grad)
    assert all(m.route == "M" for m in model.modules() if isinstance(m, DualBatchNorm2d))


def test_afa_with_main_augmentation_and_without_dual_bn():
    torch.manual_seed(0)
    net = _tiny_net()
    x, y = torch.rand(8, 3, 6, 6), torch.randint(0, 3, (8,))
    reference = copy.deepcopy(net)
    method = AFA(augmentation=_flip, main_augmentation=lambda t: t * 0.5)
    loss, logits = method.loss(net, net, x, y)  # no DualBatchNorm2d: both passes share the BN
    main = reference(x * 0.5)
    expected = 0.5 * (F.cross_entropy(main, y) + F.cross_entropy(reference(_flip(x)), y))
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(logits, main)
    torch.testing.assert_close(net[1].running_mean, reference[1].running_mean)  # updated by both passes


def test_methods_are_registered_and_call_returns_fourier_noise():
    assert isinstance(get_method("afa"), AFA) and isinstance(get_method("afa_noaux"), AFANoAux)
    assert type(get_method("afa_noaux")).loss is Method.loss  # single stream: the plain cross-entropy
    assert {"afa", "afa_noaux"} <= set(METHODS)
    x = torch.rand(4, 3, 16, 16)
    for method in (AFA(mean_strength=5.0), AFANoAux(mean_strength=5.0)):
        torch.manual_seed(11)
        out = method(None, x, None)
        torch.manual_seed(11)
        assert torch.equal(out, augrobust.FourierNoise(5.0)(x))


def test_afa_under_damp_respects_the_route():
    """DAMP patches the two BatchNorm2d inside each dual BN; with sigma 0 it must equal the plain AFA loss."""
    torch.manual_seed(0)
    model = convert_to_dual_bn(build_model("resnet8_cifar", 4))
    names = [name for name, _ in perturbable_modules(model)]
    assert "1.stem.1.main" in names and "1.stem.1.aux" in names
    twin = copy.deepcopy(model)
    x, y = torch.rand(8, 3, 16, 16), torch.randint(0, 4, (8,))
    method = AFA(augmentation=_flip)
    damp = DAMP(sigma=0.0, num_subbatches=4)
    loss_damp, _ = method.loss(model, functools.partial(damp.forward, model), x, y)
    loss_plain, _ = method.loss(twin, twin, x, y)
    torch.testing.assert_close(loss_damp, loss_plain)
    torch.testing.assert_close(model[1].stem[1].aux.running_mean, twin[1].stem[1].aux.running_mean)
    torch.testing.assert_close(model[1].stem[1].main.running_mean, twin[1].stem[1].main.running_mean)
    assert not torch.equal(model[1].stem[1].aux.running_mean, model[1].stem[1].main.running_mean)


@pytest.mark.slow
@pytest.mark.parametrize("damp_sigma", [None, 0.1])
def test_a_short_training_run_with_method_afa(tmp_path, damp_sigma):
    """The trainer gives the model its dual BNs (AFA.prepare_model); the saved checkpoint evaluates as plain."""
    from augrobust.data import SyntheticShapes

    config = TrainConfig(
        arch="resnet8_cifar", method="afa", data="synthetic16", epochs=1, batch_size=8, lr=0.05,
        damp_sigma=damp_sigma, damp_m=4,
    )  # fmt: skip
    data = (SyntheticShapes(16, seed=1, train=True, size=16), SyntheticShapes(8, seed=1, train=False, size=16))
    result = train(config, tmp_path / "run", datasets=data, log=None)
    assert [row["epoch"] for row in result.history] == [1]
    assert math.isfinite(result.history[0]["train_loss"]) and 0 <= result.history[0]["test_acc"] <= 1
    dual = result.model[1].stem[1]
    assert isinstance(dual, DualBatchNorm2d) and dual.route == "M"
    assert not torch.equal(dual.aux.running_mean, dual.main.running_mean)  # the aux route saw its own batches


@pytest.mark.slow
def test_an_afa_checkpoint_evaluates_with_augrobust_eval(tmp_path):
    """``augrobust eval`` rebuilds the dual-BN form the trainer saved and evaluates its main route."""
    from augrobust.train import CHECKPOINT_NAME
    from augrobust.train.checkpoint import load_model

    config = TrainConfig(arch="resnet8_cifar", method="afa", data="synthetic:32", epochs=1, batch_size=16, lr=0.05)
    result = train(config, tmp_path / "run", log=None)
    model, stored = load_model(tmp_path / "run" / CHECKPOINT_NAME, device="cpu")
    assert stored["method"] == "afa"
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(model(x), result.model.eval()(x))
