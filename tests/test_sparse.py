"""Dynamic sparse training (augrobust.train.sparse): masks, drop / grow rules, schedules, resume, DDP.

The oracles are written here independently of the code under test: float64 NumPy transcriptions of the
references' rules (RigL's ``_get_update_op``, GraNet's ``pruning`` / ``truncate_weights``, MEST's
``weight_pruning`` score), RigL's ``cosine_decay`` and hand-computed ERK densities.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from augrobust.data import SyntheticShapes
from augrobust.errors import AugrobustError, AugrobustValueError
from augrobust.train import CHECKPOINT_NAME, TrainConfig, load_checkpoint, train
from augrobust.train.sparse import (
    SPARSE_ALGORITHMS,
    SparseTraining,
    drop_fraction,
    erk_densities,
    layer_counts,
    layer_sparsity,
    sparsifiable_weights,
)

ALGORITHMS = list(SPARSE_ALGORITHMS)


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 5),
    )  # fmt: skip


def _data(n: int = 32):
    return SyntheticShapes(n, seed=3, train=True, size=16), SyntheticShapes(8, seed=3, train=False, size=16)


# -- the mask holds ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_masked_weights_and_momentum_are_zero_after_every_step(algorithm):
    torch.manual_seed(0)
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    dst = SparseTraining(net, opt, algorithm, sparsity=0.6, total_steps=12, interval=2, dense_first=False,
                         mest_lambda=0.5)  # fmt: skip
    before = {n: m.clone() for n, m in dst.masks.items()}
    for _ in range(12):
        x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        dst.optimizer_step()
        for name, w in dst.weights.items():
            mask = dst.masks[name]
            assert torch.all(w[~mask] == 0), name
            assert torch.all(opt.state[w]["momentum_buffer"][~mask] == 0), name
    assert any(not torch.equal(before[n], dst.masks[n]) for n in before)  # the masks did change


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_trainer_keeps_the_mask_after_every_step_with_damp_and_gnt(algorithm, tmp_path, monkeypatch):
    """DAMP multiplies the weights by noise in its forward (0 * xi = 0); gnt changes the data only."""
    checked = []
    original = SparseTraining.optimizer_step

    def checking(self):
        original(self)
        for name, w in self.weights.items():
            assert torch.all(w[~self.masks[name]] == 0), name
            buf = self.optimizer.state[w]["momentum_buffer"]
            assert torch.all(buf[~self.masks[name]] == 0), name
        checked.append(self.step_count)

    monkeypatch.setattr(SparseTraining, "optimizer_step", checking)
    config = TrainConfig(
        arch="resnet8_cifar", method="gnt", data="synthetic16", epochs=2, batch_size=8, lr=0.05, damp_sigma=0.2,
        damp_m=4, sparse=algorithm, sparsity=0.5, sparse_interval=2,
    )  # fmt: skip
    result = train(config, tmp_path, datasets=_data(), log=None)
    assert checked == list(range(1, 9))
    ckpt = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    state = result.model.state_dict()
    for name, mask in ckpt["sparse"]["masks"].items():
        assert torch.all(state[name][~mask] == 0) and torch.all(ckpt["model"][name][~mask] == 0)
    assert ckpt["sparse"]["step"] == 8


# -- densities -----------------------------------------------------------------------------------------------


def test_erk_matches_hand_computed_densities():
    # raw p = sum(shape) / prod(shape): a 20/100, b 30/200; eps = (50 + 100) / (0.2 * 100 + 0.15 * 200) = 3
    d = erk_densities({"a": (10, 10), "b": (20, 10)}, 0.5)
    assert d["a"] == pytest.approx(0.6, abs=1e-12) and d["b"] == pytest.approx(0.45, abs=1e-12)
    # a (2x2, raw 1) would get 2.17 > 1: dense; then eps = (50 - floor(0.5 * 4)) / (0.2 * 100) = 2.4 -> b 0.48
    d = erk_densities({"a": (2, 2), "b": (10, 10)}, 0.5)
    assert d == pytest.approx({"a": 1.0, "b": 0.48}, abs=1e-12)
    # conv kernels count in the sum: (16 + 8 + 3 + 3) / (16 * 8 * 9)
    shapes = {"c1": (16, 8, 3, 3), "c2": (32, 16, 3, 3), "fc": (10, 128)}
    d = erk_densities(shapes, 0.3)
    raw = {k: sum(s) / math.prod(s) for k, s in shapes.items()}
    dense = {k for k, v in d.items() if v == 1.0}
    free = [k for k in shapes if k not in dense]
    ratios = {d[k] / raw[k] for k in free}
    assert max(ratios) - min(ratios) < 1e-12  # one eps for every non-dense layer
    assert all(raw[k] >= max(raw[j] for j in free) for k in dense)  # the capped layers are the densest
    total = sum(math.prod(s) for s in shapes.values())
    kept = sum(d[k] * math.prod(s) for k, s in shapes.items())
    assert abs(kept - 0.3 * total) <= len(shapes)


@pytest.mark.parametrize("distribution", ["uniform", "erk"])
@pytest.mark.parametrize("sparsity", [0.1, 0.3, 0.5, 0.9])
def test_global_density_is_the_target_within_one_weight_per_layer(distribution, sparsity):
    from augrobust.train.models import build_model

    model = build_model("resnet18_cifar", 10)
    shapes = {n: tuple(w.shape) for n, w in sparsifiable_weights(model, dense_first=False)}
    counts = layer_counts(shapes, sparsity, distribution)
    total = sum(math.prod(s) for s in shapes.values())
    assert abs(sum(counts.values()) - (1 - sparsity) * total) <= len(shapes)
    if distribution == "uniform":
        assert all(abs(counts[n] - (1 - sparsity) * math.prod(s)) <= 1 for n, s in shapes.items())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = SparseTraining(model, opt, "set", sparsity=sparsity, total_steps=10, distribution=distribution,
                         dense_first=False)  # fmt: skip
    assert dst.counts() == counts


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_drop_and_grow_keep_every_layer_count_and_granet_reaches_the_target(algorithm):
    torch.manual_seed(1)
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    dst = SparseTraining(net, opt, algorithm, sparsity=0.7, total_steps=20, interval=2, dense_first=False)
    counts = dst.counts()
    for step in range(20):
        opt.zero_grad()
        nn.functional.cross_entropy(net(torch.randn(4, 3, 8, 8)), torch.randint(0, 5, (4,))).backward()
        dst.optimizer_step()
        if algorithm != "granet":
            assert dst.counts() == counts
    total = sum(m.numel() for m in dst.masks.values())
    if algorithm == "granet":  # pruned from dense to exactly the target by half of the run
        assert sum(dst.counts().values()) == total - math.floor(0.7 * total)
    assert abs(sum(dst.counts().values()) - 0.3 * total) <= len(dst.masks)


# -- the drop / grow rules against float64 transcriptions -----------------------------------------------------


def _zeta_reference(algorithm: str, z: float, t: int, end: int, total: int) -> float:
    if algorithm in ("set", "rigl"):  # tf cosine_decay(z, t, end, alpha=0)
        return z * 0.5 * (1 + math.cos(math.pi * min(t, end) / end))
    if algorithm == "mest":  # mutation ratio stepped down at 3/4 of the update period, 0 after it
        return z if t <= 0.75 * end else (z / 2 if t <= end else 0.0)
    return 0.005 + (z - 0.005) * (1 + math.cos(math.pi * t / total)) / 2  # CosineAnnealingLR(eta_min=0.005)


def _reference_drop_grow(w, mask, drop_score, grow_score, n_drop):
    """RigL's _get_update_op in float64: keep the n_keep best active, grow n_drop best of the rest."""
    flat_mask = mask.ravel()
    n_keep = int(flat_mask.sum()) - n_drop
    d = np.where(flat_mask, drop_score.ravel(), -np.inf)
    kept = np.zeros_like(flat_mask)
    kept[np.argsort(-d, kind="stable")[:n_keep]] = True
    g = np.where(kept, -np.inf, grow_score.ravel())
    new = kept.copy()
    new[np.argsort(-g, kind="stable")[:n_drop]] = True
    return new.reshape(mask.shape)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_drop_and_grow_equal_the_reference_rule(algorithm):
    """Through ``optimizer_step`` with lr 0 (weights unchanged by the step, momentum from an earlier step).

    SGD's multi-tensor Nesterov path with weight decay 0 adds the momentum into ``.grad`` in place: a grow
    score read after the step would rank differently from the step's gradient that the rule uses.
    """
    torch.manual_seed(2)
    layer = nn.Linear(24, 10, bias=False)
    net = nn.Sequential(layer)
    opt = torch.optim.SGD(net.parameters(), lr=0.0, momentum=0.9, nesterov=True, foreach=True)
    lam = 0.7
    total, interval, step = 100, 10, 60  # step 60: after GraNet's pruning phase, inside every update period
    dst = SparseTraining(net, opt, algorithm, sparsity=0.6, total_steps=total, interval=interval, zeta=0.3,
                         dense_first=False, mest_lambda=lam, end=0.8)  # fmt: skip
    if algorithm == "granet":  # start from a 0.4-dense mask, as after its pruning
        start = torch.zeros(240, dtype=torch.bool)
        start[torch.randperm(240)[:96]] = True
        dst.load_state_dict({**dst.state_dict(), "masks": {"0.weight": start.view(10, 24)}})
    dst.step_count = step - 2
    with torch.no_grad():
        layer.weight.copy_(torch.randn(10, 24) * dst.masks["0.weight"])
    layer.weight.grad = torch.randn(10, 24)
    dst.optimizer_step()  # step 59: not an update step; builds the momentum buffer
    mask = dst.masks["0.weight"].numpy().copy()
    w = layer.weight.detach().double().numpy().copy()
    g = torch.randn(10, 24)
    layer.weight.grad = g.clone()
    random_state = dst.generator.get_state()
    momentum_before = opt.state[layer.weight]["momentum_buffer"].clone()
    dst.optimizer_step()  # step 60: the update
    assert not torch.equal(layer.weight.grad, g)  # the optimiser did change .grad in place
    g64 = g.double().numpy()
    if algorithm in ("set", "mest"):
        rng = torch.Generator()
        rng.set_state(random_state)
        grow = torch.rand(10, 24, generator=rng).double().numpy()
    else:
        grow = np.abs(g64)
    drop = np.abs(w) + (lam * np.abs(g64) if algorithm == "mest" else 0.0)
    zeta = _zeta_reference(algorithm, 0.3, step, int(0.8 * total), total)
    active = int(mask.sum())
    n_drop = math.ceil(zeta * active) if algorithm == "granet" else int(zeta * active)
    assert n_drop > 0
    expected = _reference_drop_grow(w, mask, drop, grow, n_drop)
    got = dst.masks["0.weight"].numpy()
    np.testing.assert_array_equal(got, expected)
    assert got.sum() == active
    new = expected & ~mask
    assert new.any() and (mask & ~expected).any()
    weight = layer.weight.detach().double().numpy()
    np.testing.assert_array_equal(weight[new], 0.0)  # grown weights start at 0 ...
    assert torch.all(opt.state[layer.weight]["momentum_buffer"][torch.from_numpy(new)] == 0)  # ... momentum 0
    np.testing.assert_array_equal(weight[expected & mask], w[expected & mask])  # kept ones are untouched (lr 0)
    np.testing.assert_array_equal(weight[~expected], 0.0)
    assert momentum_before.abs().sum() > 0


def test_granet_gradual_pruning_equals_global_magnitude_with_the_cubic_schedule():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(12, 10, bias=False), nn.Linear(10, 6, bias=False))
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    total, interval, sparsity = 100, 10, 0.6
    dst = SparseTraining(net, opt, "granet", sparsity=sparsity, total_steps=total, interval=interval,
                         zeta=0.3, dense_first=False)  # fmt: skip
    assert dst.density() == 1.0  # GraNet starts dense
    last = int(0.5 * total) // interval
    for it in range(1, last + 1):
        masks = {n: m.numpy().copy() for n, m in dst.masks.items()}
        w = {n: p.detach().double().numpy().copy() for n, p in dst.weights.items()}
        for p in dst.weights.values():
            p.grad = torch.randn_like(p)
        grads = {n: p.grad.double().numpy().copy() for n, p in dst.weights.items()}
        dst.update(it * interval)
        density = (1 - sparsity) + (1.0 - (1 - sparsity)) * (1 - it / last) ** 3
        all_scores = np.concatenate([np.where(masks[n], np.abs(w[n]), -np.inf).ravel() for n in masks])
        n_total = all_scores.size
        keep = n_total - math.floor((1 - density) * n_total)
        kept = np.zeros(n_total, dtype=bool)
        kept[np.argsort(-all_scores, kind="stable")[:keep]] = True
        # then GraNet's truncate_weights on the pruned masks: magnitude drop, gradient growth, ceil count
        zeta = _zeta_reference("granet", 0.3, it * interval, total, total)
        start = 0
        for name, m in masks.items():
            pruned = kept[start:start + m.size].reshape(m.shape)
            start += m.size
            n_drop = math.ceil(zeta * int(pruned.sum()))
            expected = _reference_drop_grow(w[name], pruned, np.abs(w[name]), np.abs(grads[name]), n_drop)
            np.testing.assert_array_equal(dst.masks[name].numpy(), expected)
    total_weights = sum(m.numel() for m in dst.masks.values())
    assert sum(dst.counts().values()) == total_weights - math.floor(sparsity * total_weights)


# -- the schedule --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_zeta_schedule(algorithm):
    end, total = 75, 100
    for t in range(0, 101):
        assert drop_fraction(algorithm, 0.3, t, end, total) == pytest.approx(
            _zeta_reference(algorithm, 0.3, t, end, total), abs=1e-15
        )
    if algorithm in ("set", "rigl"):
        assert drop_fraction(algorithm, 0.3, 0, end, total) == 0.3
        assert drop_fraction(algorithm, 0.3, end, end, total) == pytest.approx(0.0, abs=1e-15)
        assert drop_fraction(algorithm, 0.3, 90, end, total) == pytest.approx(0.0, abs=1e-15)


def test_updates_happen_every_interval_until_the_end():
    net = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    dst = SparseTraining(net, opt, "rigl", sparsity=0.5, total_steps=1000)
    steps = [t for t in range(1, 1001) if dst.is_update_step(t)]
    assert steps == list(range(100, 751, 100))  # delta_T 100, until 75 % of the run (RigL's defaults)


# -- resume, CLI, report, bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_resume_equals_uninterrupted_bit_for_bit(algorithm, tmp_path):
    config = TrainConfig(arch="resnet8_cifar", data="synthetic16", epochs=2, batch_size=8, lr=0.05, sparse=algorithm,
                         sparsity=0.5, sparse_interval=3)  # fmt: skip
    full = train(config, tmp_path / "full", datasets=_data(), log=None)
    train(config, tmp_path / "cut", datasets=_data(), log=None, stop_after_epoch=1)
    resumed = train(config, tmp_path / "cut", datasets=_data(), log=None, resume=True)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    a, b = (load_checkpoint(tmp_path / d / CHECKPOINT_NAME) for d in ("full", "cut"))
    assert a["sparse"]["step"] == b["sparse"]["step"] == 8
    for k in a["sparse"]["masks"]:
        assert torch.equal(a["sparse"]["masks"][k], b["sparse"]["masks"][k]), k
    assert torch.equal(a["sparse"]["generator"], b["sparse"]["generator"])
    for k, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], b["optimizer"]["state"][k]["momentum_buffer"])


def test_cli_options_reach_the_run_and_eval_reports_sparsity(tmp_path):
    from augrobust.cli import main

    out = tmp_path / "run"
    code = main([
        "train", "--arch", "resnet8_cifar", "--data", "synthetic:16", "--epochs", "1", "--batch-size", "8",
        "--sparse", "mest", "--sparsity", "0.3", "--sparse-distribution", "uniform", "--sparse-interval", "1",
        "--sparse-drop-fraction", "0.2", "--sparse-end", "0.5", "--sparse-first-layer", "sparse",
        "--sparse-mest-lambda", "0.1", "--out", str(out), "--quiet",
    ])  # fmt: skip
    assert code == 0
    ckpt = load_checkpoint(out / CHECKPOINT_NAME)
    c = ckpt["config"]
    assert (c["sparse"], c["sparsity"], c["sparse_distribution"], c["sparse_interval"]) == ("mest", 0.3, "uniform", 1)
    assert (c["sparse_drop_fraction"], c["sparse_end"], c["sparse_dense_first"], c["sparse_mest_lambda"]) == (
        0.2, 0.5, False, 0.1
    )  # fmt: skip
    report = layer_sparsity(ckpt["model"])
    first = next(iter(ckpt["sparse"]["masks"]))
    assert first == next(k for k, v in ckpt["model"].items() if k.endswith("weight") and v.dim() == 4)  # the first conv is masked too
    assert report["layers"][first] == pytest.approx(0.3, abs=0.01)
    assert report["global"] == pytest.approx(0.3, abs=0.01)
    assert main([
        "eval", "--checkpoint", str(out / CHECKPOINT_NAME), "--data", "synthetic", "--num-images", "8",
        "--corruptions", "gaussian_noise", "--severities", "1", "--out", str(tmp_path / "eval"), "--quiet",
    ]) == 0  # fmt: skip
    header = json.loads((tmp_path / "eval" / "report.json").read_text())["metadata"]["sparsity"]
    assert header == json.loads(json.dumps(report))  # the report header carries the per-layer sparsity
    assert "sparsity" in (tmp_path / "eval" / "report.md").read_text()


def test_bad_sparse_settings_are_clear_errors():
    for change in ({"sparse": "rigel"}, {"sparsity": 1.0}, {"sparsity": 0.0}, {"sparse_interval": 0},
                   {"sparse_drop_fraction": 1.5}, {"sparse_distribution": "er"}, {"sparse_end": 2.0}):  # fmt: skip
        with pytest.raises(AugrobustError):
            TrainConfig(**{"sparse": "rigl", **change}).validate()
    net = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(AugrobustValueError, match="no conv / linear weight"):
        SparseTraining(net, torch.optim.SGD(net.parameters(), lr=0.1), "set", sparsity=0.5, total_steps=5)


def test_resume_refuses_a_checkpoint_without_masks(tmp_path):
    data = _data()
    train(TrainConfig(arch="resnet8_cifar", data="synthetic16", epochs=2, batch_size=8), tmp_path, datasets=data,
          log=None, stop_after_epoch=1)  # fmt: skip
    with pytest.raises(AugrobustValueError, match="config differs"):
        train(TrainConfig(arch="resnet8_cifar", data="synthetic16", epochs=2, batch_size=8, sparse="set"), tmp_path,
              datasets=data, log=None, resume=True)  # fmt: skip


# -- DDP -----------------------------------------------------------------------------------------------------

_DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from augrobust.data import SyntheticShapes
    from augrobust.train import TrainConfig, train

    out, algorithm = sys.argv[1], sys.argv[2]
    config = TrainConfig(arch="resnet8_cifar", data="synthetic16", epochs=2, batch_size=8, lr=0.05, sparse=algorithm,
                         sparsity=0.5, sparse_interval=1, damp_sigma=0.2, damp_m=4)
    data = (SyntheticShapes(32, seed=2, train=True, size=16), SyntheticShapes(8, seed=2, train=False, size=16))
    result = train(config, out, datasets=data, log=None)
    import augrobust.train.sparse as sp
    weights = {k: v.flatten().tolist() for k, v in result.model.state_dict().items() if v.is_floating_point()
               and "running" not in k}
    with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as f:
        json.dump(weights, f)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["set", "rigl"])
def test_torchrun_two_processes_keep_masks_and_weights_identical(tmp_path, algorithm):
    """With DAMP on: each rank's forward has its own noise, the gradients (and so the grow scores) are averaged."""
    script = tmp_path / "ddp_sparse.py"
    script.write_text(_DDP_SCRIPT)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(out),
           algorithm]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0, rank1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for k in rank0:
        assert rank0[k] == rank1[k], k
    ckpt = load_checkpoint(out / CHECKPOINT_NAME)
    assert ckpt["sparse"]["step"] == 8  # 32 images, global batch 8, 2 epochs
    for name, mask in ckpt["sparse"]["masks"].items():
        zeros = [i for i, keep in enumerate(mask.flatten().tolist()) if not keep]
        assert all(rank0[name][i] == 0.0 for i in zeros), name
