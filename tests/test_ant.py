"""ANT (adversarial noise training, the "Game of Noise", Rusak et al. 2020): generator, projection, transform, method.

Specification proven here:
- the generator has the reference architecture: parameter counts 983 (1x1) / 4183 (3x3), the layer order and
  residual of an independent NumPy transcription, a k x k receptive field (noise is local), and the reference
  initialisation (a zero-std init outputs exactly its latent);
- ``project_l2`` gives exactly ``eps`` after clipping, equals an independent float64 transcription of the
  reference's ``fix_perturbation_size`` (image and norm), and has the same gradient w.r.t. the direction
  (the reference differentiates through its rescaling; so do we);
- ``AdversarialNoise`` equals generator + projection computed by hand, draws snapshots uniformly per sample,
  replays, and sends no gradient into its generators unless asked;
- the ``ant`` method: the generator step raises the classifier's loss (the sign is right) without touching the
  classifier (no ``.grad``, BN statistics unchanged), the classifier's loss sends no gradient to the generators,
  the batch is laid out as the reference's (21 / 7 / 7 / 35 at B = 70; all noisy images current in the first
  cycle), history snapshots are distinct per batch and drawn uniformly, cycles restart the generator and grow
  the history, the state survives a weights-only save/load exactly, and a short training run works.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import augrobust
from augrobust.data import SyntheticShapes
from augrobust.errors import AugrobustError
from augrobust.functional.adversarial_noise import (
    NoiseGenerator,
    apply_adversarial_noise,
    generator_directions,
    project_l2,
    sample_adversarial_noise,
)
from augrobust.train import METHODS, TrainConfig, get_method, train
from augrobust.train.methods.ant import ANT, batch_layout


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: one intra-op thread avoids OpenMP contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _images(batch: int = 4, size: int = 16, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Gradients plus texture with many pixels at or near 0 and 1 (so clipping matters)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = torch.stack([xx, yy, 1 - xx])
    x = (1.2 * base - 0.1 + 0.3 * torch.rand(batch, 3, size, size, generator=g)).clamp(0, 1)
    return x.to(dtype)


# -- an independent transcription of the reference (bethgelab/game-of-noise, evaluation_utils.py) ---------------


def reference_fix_perturbation_size(x0: torch.Tensor, delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    """The reference's clipping-aware rescaling, step by step: sort the saturation points t_i = r_i^2 / d_i^2,
    accumulate the clipped squared norm piece by piece, take the first breakpoint where it reaches eps^2 and
    solve that linear piece (or the largest t_i if eps is out of reach). Written with torch ops so that autograd
    gives the reference's gradient."""
    n = x0.shape[0]
    d2 = delta.pow(2).flatten(1)
    room = torch.where(delta >= 0, 1 - x0, x0).flatten(1)
    t_sat = room.pow(2) / torch.clamp(d2, min=1e-20)
    t_sorted, order = torch.sort(t_sat, dim=1)
    # slope of the piece ending at breakpoint k: the d^2 of every coordinate not yet saturated before it
    slope = torch.flip(torch.cumsum(torch.flip(d2.gather(1, order), [1]), 1), [1])
    widths = torch.cat([t_sorted[:, :1], t_sorted[:, 1:] - t_sorted[:, :-1]], 1)
    f_at = torch.cumsum(slope * widths, 1)  # clipped squared norm at each breakpoint
    reached = f_at >= epsilon**2
    first = torch.where(reached.any(1), reached.float().argmax(1), torch.full((n,), -1))
    rows = torch.arange(n)
    k = first.clamp_min(0)
    t = t_sorted[rows, k] - (f_at[rows, k] - epsilon**2) / slope[rows, k]
    t = torch.where(first < 0, t_sorted[:, -1], t)
    eta = t.sqrt().reshape(-1, 1, 1, 1)
    return torch.clamp(x0 + eta * delta, 0, 1)


def numpy_generator(z: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]], k: int) -> np.ndarray:
    """The reference generator in NumPy: 1x1 -> ReLU -> k x k (valid) -> ReLU -> 1x1 -> ReLU -> 1x1, + crop(z)."""

    def conv(h: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        kk = w.shape[-1]
        ho, wo = h.shape[2] - kk + 1, h.shape[3] - kk + 1
        out = np.zeros((h.shape[0], w.shape[0], ho, wo))
        for dy in range(kk):
            for dx in range(kk):
                out += np.einsum("oc,bchw->bohw", w[:, :, dy, dx], h[:, :, dy : dy + ho, dx : dx + wo])
        return out + b[None, :, None, None]

    h = z
    for i, (w, b) in enumerate(weights):
        h = conv(h, w, b)
        if i < 3:
            h = np.maximum(h, 0)
    m = k // 2
    return h + z[:, :, m : z.shape[2] - m, m : z.shape[3] - m]


def _weights(gen: NoiseGenerator) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(c.weight.detach().double().numpy(), c.bias.detach().double().numpy()) for c in gen.layers]


def _randomise(gen: NoiseGenerator, seed: int, scale: float = 0.3) -> NoiseGenerator:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in gen.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return gen


# -- the generator -------------------------------------------------------------------------------------------


def test_generator_parameter_counts_match_the_reference():
    assert sum(p.numel() for p in NoiseGenerator(3, kernel_size=1).parameters()) == 983
    assert sum(p.numel() for p in NoiseGenerator(3, kernel_size=3).parameters()) == 4183


@pytest.mark.parametrize("k", [1, 3])
def test_generator_equals_a_numpy_transcription_of_the_reference(k):
    gen = _randomise(NoiseGenerator(3, kernel_size=k), seed=k).double()
    z = gen.sample_latent((2, 3, 7, 9), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert z.shape == (2, 3, 7 + 2 * (k // 2), 9 + 2 * (k // 2))
    expected = numpy_generator(z.numpy(), _weights(gen), k)
    np.testing.assert_allclose(gen(z).detach().numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3])
def test_noise_is_local_a_latent_pixel_moves_only_its_k_by_k_neighbourhood(k):
    gen = _randomise(NoiseGenerator(3, kernel_size=k), seed=5).double()
    z = gen.sample_latent((1, 3, 9, 9), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z2 = z.clone()
    m = k // 2
    z2[0, 1, 4 + m, 4 + m] += 3.0  # latent pixel above output pixel (4, 4)
    changed = (gen(z2) - gen(z)).abs().sum(1)[0] > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert changed[4, 4]
    assert (rows - 4).abs().max() <= m and (cols - 4).abs().max() <= m


def test_reference_initialisation_starts_as_gaussian_noise():
    gen = NoiseGenerator(3, kernel_size=3, init_std=0.0)
    z = gen.sample_latent((2, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    assert torch.equal(gen(z), z[:, :, 1:-1, 1:-1])
    default = NoiseGenerator(3, seed=0)
    weights = torch.cat([c.weight.flatten() for c in default.layers])
    assert abs(weights.std().item() - 0.01) < 0.001 and all((c.bias == 0).all() for c in default.layers)
    assert torch.equal(default.layers[1].weight, NoiseGenerator(3, seed=0).layers[1].weight)


def test_generator_errors_are_clear():
    with pytest.raises(AugrobustError, match="odd"):
        NoiseGenerator(3, kernel_size=2)
    with pytest.raises(AugrobustError, match="channels"):
        NoiseGenerator(0)
    with pytest.raises(AugrobustError, match="have 1 channels"):
        NoiseGenerator(3).latent_shape((2, 1, 8, 8))


# -- the projection ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.5, 4.0, 12.0])
def test_projection_reaches_eps_exactly_after_clipping_and_equals_the_reference(eps):
    x = _images(6, 16, seed=3, dtype=torch.float64)
    direction = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    direction[:2] += 2.0  # mostly positive: heavy clipping against 1
    ours = project_l2(x, direction, eps)
    assert ours.min() >= 0 and ours.max() <= 1
    torch.testing.assert_close((ours - x).flatten(1).norm(dim=1), torch.full((6,), eps, dtype=torch.float64), rtol=1e-10, atol=0)
    ref = reference_fix_perturbation_size(x, direction, eps)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-10)


def test_projection_in_float32_is_within_the_reference_tolerance():
    x = _images(4, 32, seed=5)
    direction = torch.randn(x.shape, generator=torch.Generator().manual_seed(6))
    ours = project_l2(x, direction, 19.3)
    ref = reference_fix_perturbation_size(x.double(), direction.double(), 19.3)
    np.testing.assert_allclose((ours - x).double().flatten(1).norm(dim=1), (ref - x.double()).flatten(1).norm(dim=1), rtol=2e-5)
    torch.testing.assert_close(ours.double(), ref, rtol=0, atol=2e-5)


def test_projection_saturates_like_the_reference_when_eps_is_out_of_reach():
    x = _images(2, 8, seed=7, dtype=torch.float64)
    direction = torch.ones_like(x)  # only room towards 1 counts
    reachable = (1 - x).flatten(1).norm(dim=1)
    ours = project_l2(x, direction, float(reachable.max()) + 10)
    torch.testing.assert_close(ours, torch.ones_like(x))
    torch.testing.assert_close(ours, reference_fix_perturbation_size(x, direction, float(reachable.max()) + 10))


def test_projection_gradient_wrt_the_direction_is_the_references():
    x = _images(3, 12, seed=8, dtype=torch.float64)
    base = torch.randn(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    weight = torch.randn(x.shape, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    grads = []
    for fn in (project_l2, reference_fix_perturbation_size):
        d = base.clone().requires_grad_(True)
        (fn(x, d, 3.0) * weight).sum().backward()
        grads.append(d.grad)
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-8, atol=1e-10)


# -- the transform -------------------------------------------------------------------------------------------


def test_transform_is_generator_then_projection_per_sample():
    gens = [_randomise(NoiseGenerator(3, kernel_size=3), seed=s, scale=0.2) for s in range(3)]
    aug = augrobust.AdversarialNoise(gens, eps=[2.0, 6.0], seed=0)
    x = _images(5, 16, seed=1)
    y = aug(x)
    params = aug._params
    for i in range(5):
        idx = int(params["index"][i])
        direction = gens[idx](params["latent"][i : i + 1])  # the generator module itself, one sample
        expected = reference_fix_perturbation_size(x[i : i + 1].double(), direction.detach().double(), float(params["eps"][i]))
        torch.testing.assert_close(y[i : i + 1].double(), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close((y - x).flatten(1).norm(dim=1).double(), params["eps"], rtol=1e-4, atol=0)
    assert set(params["eps"].tolist()) <= {2.0, 6.0}


def test_transform_draws_each_snapshot_uniformly_per_sample():
    gens = [NoiseGenerator(3, seed=s) for s in range(4)]
    params = sample_adversarial_noise((4000, 3, 2, 2), gens, 1.0, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(params["index"], minlength=4).double()
    # binomial(4000, 1/4): sd ~ 27; 5 sd
    assert ((counts - 1000).abs() < 140).all(), counts


def test_transform_sends_no_gradient_to_its_generator_unless_asked():
    gen = _randomise(NoiseGenerator(3), seed=0, scale=0.2)
    x = _images(2, 8).requires_grad_(True)
    out = augrobust.AdversarialNoise(gen, eps=2.0, seed=0)(x)
    out.sum().backward()
    assert all(p.grad is None for p in gen.parameters())
    assert x.grad is not None  # still differentiable w.r.t. the image
    out = augrobust.AdversarialNoise(gen, eps=2.0, seed=0, generator_grad=True)(x)
    out.sum().backward()
    assert all(p.grad is not None for p in gen.parameters())


def test_transform_moves_its_generators_with_it_and_checks_inputs():
    gen = NoiseGenerator(3, seed=0)
    aug = augrobust.AdversarialNoise([gen, NoiseGenerator(3, seed=1)], eps=1.0).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in aug.parameters())
    with pytest.raises(AugrobustError, match="channels"):
        augrobust.AdversarialNoise(gen, eps=1.0)(torch.rand(2, 1, 8, 8))
    with pytest.raises(AugrobustError, match="NoiseGenerator"):
        augrobust.AdversarialNoise([torch.nn.Conv2d(3, 3, 1)], eps=1.0)
    with pytest.raises(AugrobustError, match="share"):
        augrobust.AdversarialNoise([gen, NoiseGenerator(3, kernel_size=1)], eps=1.0)
    with pytest.raises(AugrobustError, match="eps"):
        augrobust.AdversarialNoise(gen, eps=-1.0)
    with pytest.raises(AugrobustError, match="latent"):
        apply_adversarial_noise(torch.rand(2, 3, 8, 8), sample_adversarial_noise((2, 3, 6, 6), gen, 1.0), gen)
    with pytest.raises(AugrobustError, match="index"):
        generator_directions(torch.randn(2, 3, 10, 10), [gen, gen])


# -- the method ----------------------------------------------------------------------------------------------


class _ToyClassifier(nn.Module):
    """A fixed linear classifier with a BatchNorm (to see whether the generator step changes its statistics)."""

    def __init__(self, size: int = 8, classes: int = 4) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * size * size, classes)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=g) * 0.5)
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(x).flatten(1))


def _mean_ce(model: nn.Module, gen: NoiseGenerator, x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    model.eval()
    with torch.no_grad():
        losses = []
        for seed in range(8):
            z = gen.sample_latent(x.shape, generator=torch.Generator().manual_seed(100 + seed))
            losses.append(F.cross_entropy(model(project_l2(x, gen(z), eps)), y))
    return float(torch.stack(losses).mean())


def test_generator_step_raises_the_classifier_loss_and_leaves_the_classifier_alone():
    torch.manual_seed(0)
    model = _ToyClassifier()
    x, y = _images(16, 8, seed=2), torch.arange(16) % 4
    ant = ANT(eps=3.0, lr=1e-2, cycle_steps=1000, retrain_steps=0)
    ant._setup(x)
    gen = ant.generator
    bn_before = (model.bn.running_mean.clone(), model.bn.running_var.clone())
    weights_before = [p.clone() for p in model.parameters()]
    before = _mean_ce(model, gen, x, y, 3.0)
    model.train()
    for _ in range(30):
        ant._generator_step(model, gen, ant.optimizer, x, y)
    assert model.training  # mode restored
    after = _mean_ce(model, gen, x, y, 3.0)
    assert after > before + 0.1, (before, after)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(weights_before, model.parameters()))
    assert torch.equal(model.bn.running_mean, bn_before[0]) and torch.equal(model.bn.running_var, bn_before[1])


def test_classifier_loss_sends_no_gradient_to_the_generators():
    torch.manual_seed(0)
    model = _ToyClassifier()
    ant = ANT(eps=2.0, cycle_steps=2, retrain_steps=1)
    x, y = _images(10, 8, seed=3), torch.arange(10) % 4
    for _ in range(3):  # into the second cycle: current and history generators in the batch
        model.zero_grad(set_to_none=True)
        loss, logits = ant.loss(model, model, x, y)
        assert all(p.grad is None for p in model.parameters())  # the generator step wrote nothing here
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        for gen in [ant.generator, *ant.history]:
            assert all(p.grad is None for p in gen.parameters())
    assert len(ant.history) == 2 and logits.shape == (10, 4)


def test_batch_layout_is_the_references():
    assert batch_layout(70, 0.5, 0.3, 0.1, 10) == (21, [(21, 28), (28, 35)], 35)  # 21 / 7 / 7 / 35 clean
    assert batch_layout(70, 0.5, 0.5, 0.1, 0) == (35, [], 35)  # epoch 0: current covers the noisy half
    assert batch_layout(70, 0.5, 0.3, 0.1, 1) == (21, [(21, 28)], 35)  # one snapshot: 28..35 stays clean
    assert batch_layout(10, 0.2, 0.4, 0.2, 5) == (4, [(4, 6), (6, 8)], 8)


def _marker(channel: int) -> NoiseGenerator:
    """A generator whose output points (almost) entirely along one colour channel."""
    gen = NoiseGenerator(3, kernel_size=1, init_std=0.0)
    with torch.no_grad():
        gen.layers[-1].bias[channel] = 1e4
    return gen.requires_grad_(False)


def _channel_of_each_row(x: torch.Tensor, out: torch.Tensor) -> list[int]:
    energy = (out - x).pow(2).sum((2, 3))  # (B, C)
    return [-1 if float(e.sum()) == 0 else int(e.argmax()) for e in energy]


def test_mixed_batch_composition_and_history_sampling():
    ant = ANT(eps=1.0, cycle_steps=5)
    x = torch.linspace(0.3, 0.7, 70).reshape(70, 1, 1, 1).expand(70, 3, 4, 4).contiguous()  # rows told apart
    ant._setup(x)
    ant.generator = _marker(0)
    ant.history = [_marker(1), _marker(2)]
    ant.step = 0  # first cycle: no history, the current generator covers 1 - p_clean
    assert _channel_of_each_row(x, ant.mix(x)) == [0] * 35 + [-1] * 35
    ant.step = 7
    seen = []
    for _ in range(40):
        out = ant.mix(x)
        rows = _channel_of_each_row(x, out)
        assert rows[:21] == [0] * 21 and rows[35:] == [-1] * 35
        assert torch.equal(out[35:], x[35:])  # the clean images are the batch's own, in place
        first, second = rows[21:28], rows[28:35]
        assert len(set(first)) == 1 and len(set(second)) == 1 and first[0] != second[0]  # no snapshot twice
        seen.append(first[0])
        torch.testing.assert_close((out - x)[:35].flatten(1).norm(dim=1), torch.ones(35), rtol=1e-4, atol=0)
    assert set(seen) == {1, 2}  # both orders occur


def test_history_snapshots_are_drawn_uniformly():
    ant = ANT(eps=1.0, cycle_steps=1, p_clean=0.5, p_current=0.4, p_history=0.1)  # one history chunk
    x = torch.full((10, 3, 4, 4), 0.5)
    ant._setup(x)
    ant.generator = _marker(0)
    ant.history = [_marker(1), _marker(2), _marker(1)]
    ant.step = 3
    torch.manual_seed(0)
    picks = [_channel_of_each_row(x, ant.mix(x))[4] for _ in range(600)]
    share = picks.count(2) / len(picks)
    assert abs(share - 1 / 3) < 0.07, share  # 1 of 3 snapshots; binomial sd ~ 0.019


def test_cycles_restart_the_generator_and_grow_the_history():
    torch.manual_seed(1)
    model = _ToyClassifier()
    x, y = _images(8, 8, seed=4), torch.arange(8) % 4
    ant = ANT(eps=2.0, cycle_steps=2, retrain_steps=3, history_size=2)
    sizes, generators = [], []
    for _ in range(6):
        ant(model, x, y)
        sizes.append(len(ant.history))
        generators.append(ant.generator)
    assert sizes == [1, 1, 2, 2, 2, 2]  # one snapshot per cycle, capped at history_size
    assert generators[0] is generators[1] and generators[1] is not generators[2]  # restart at each cycle
    # the newest snapshot is the re-trained fresh generator (before its joint steps): it moved from the init
    assert not torch.equal(ant.history[-1].layers[0].weight, ant.generator.layers[0].weight)
    assert all(not p.requires_grad for h in ant.history for p in h.parameters())


def test_state_dict_round_trip_resumes_exactly():
    x, y = _images(10, 8, seed=5), torch.arange(10) % 4
    torch.manual_seed(3)
    model = _ToyClassifier()
    ant = ANT(eps=2.0, cycle_steps=2, retrain_steps=2)
    for _ in range(3):
        ant(model, x, y)
    buffer = io.BytesIO()
    torch.save(ant.state_dict(), buffer)
    buffer.seek(0)
    resumed = ANT(eps=2.0, cycle_steps=2, retrain_steps=2)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    rng = torch.get_rng_state()
    a = [ant(model, x, y) for _ in range(3)]
    torch.set_rng_state(rng)
    b = [resumed(model, x, y) for _ in range(3)]
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    for p, q in zip(ant.generator.parameters(), resumed.generator.parameters()):
        assert torch.equal(p, q)
    assert resumed.step == ant.step == 6 and len(resumed.history) == len(ant.history) == 3
    with pytest.raises(AugrobustError, match="kernel_size"):
        ANT(kernel_size=1).load_state_dict(ant.state_dict())


def test_method_arguments_are_validated():
    for kwargs, match in [
        ({"eps": 0.0}, "eps"),
        ({"p_clean": 1.5}, "p_clean"),
        ({"p_clean": 0.8, "p_current": 0.3}, "p_current"),
        ({"cycle_steps": 0}, "cycle_steps"),
        ({"kernel_size": 2}, "odd"),
        ({"lr": -1.0}, "lr"),
    ]:
        with pytest.raises(AugrobustError, match=match):
            ANT(**kwargs)
    with pytest.raises(AugrobustError, match="label"):
        ANT()(_ToyClassifier(), torch.rand(2, 3, 8, 8), None)


def test_default_eps_is_the_sigma_half_match():
    # 135 at 3x224x224 in the reference (issue #1); ~0.348 sqrt(D) elsewhere (the notes' Monte Carlo)
    assert abs(ANT().resolved_eps(torch.Size((1, 3, 224, 224))) - 135) < 1.5
    assert abs(ANT().resolved_eps(torch.Size((1, 3, 32, 32))) - 0.348 * (3 * 32 * 32) ** 0.5) < 0.4


@pytest.mark.slow
def test_training_with_method_ant(tmp_path):
    assert "ant" in METHODS and isinstance(get_method("ant"), ANT)
    data = SyntheticShapes(32, seed=1, train=True, size=16), SyntheticShapes(8, seed=1, train=False, size=16)
    config = TrainConfig(arch="resnet8_cifar", data="synthetic16", epochs=1, batch_size=8, lr=0.05, method="ant")
    method = ANT(cycle_steps=2, retrain_steps=2)
    result = train(config, tmp_path / "run", datasets=data, method=method, log=None)
    assert method.step == 4 and len(method.history) == 2
    assert np.isfinite(result.history[0]["train_loss"]) and "test_acc" in result.history[0]


@pytest.mark.slow
def test_an_ant_run_resumed_from_its_checkpoint_equals_the_uninterrupted_run(tmp_path):
    """The trainer saves ANT's generators, history and Adam state with the checkpoint and restores them."""
    from augrobust.data import SyntheticShapes
    from augrobust.train import TrainConfig, train

    data = (SyntheticShapes(16, seed=1, train=True, size=16), SyntheticShapes(8, seed=1, train=False, size=16))
    config = TrainConfig(
        arch="resnet8_cifar", method="ant", method_options={"cycle_steps": 3, "retrain_steps": 2, "eps": 2.0},
        data="synthetic16", epochs=3, batch_size=8, lr=0.05,
    )  # fmt: skip
    full = train(config, tmp_path / "full", datasets=data, log=None)
    train(config, tmp_path / "part", datasets=data, stop_after_epoch=1, log=None)
    resumed = train(config, tmp_path / "part", datasets=data, resume=True, log=None)
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_generators_on_another_device_than_the_images_give_a_clear_error():
    from augrobust import AdversarialNoise

    aug = AdversarialNoise(NoiseGenerator(3, seed=0), eps=5.0)
    with pytest.raises(AugrobustError, match=r"aug\.to\('meta'\)"):
        aug(torch.rand(2, 3, 16, 16, device="meta"))
