"""The reference trainer: models, methods, checkpoints, exact resumption, errors and the CLI.

Specification proven here:
- models take [0, 1] images and normalise inside; resnet18_cifar has a 3x3 stem, no max-pool and a
  zero-initialised last BN gamma per block;
- a run interrupted after an epoch and resumed ends with bit-identical weights to an uninterrupted run
  (with DAMP noise and a randomised method, so every RNG stream must be restored);
- checkpoints load with ``torch.load(weights_only=True)`` and hold model / optimizer / scheduler / epoch /
  RNG states / config; they are written atomically;
- bad paths, malformed checkpoints and malformed configs raise clear ``AugrobustError``s.
"""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch
from torch import nn

from augrobust.commands import train as train_cli
from augrobust.data import SyntheticShapes
from augrobust.errors import AugrobustError, AugrobustFileNotFoundError, AugrobustValueError
from augrobust.train import (
    CHECKPOINT_NAME,
    ERM,
    GNT,
    METHODS,
    METRICS_NAME,
    Method,
    NonFiniteLossError,
    Normalize,
    TrainConfig,
    build_datasets,
    build_model,
    get_method,
    load_checkpoint,
    load_model,
    register_method,
    save_checkpoint,
    train,
)


def _data(n: int = 16) -> tuple[SyntheticShapes, SyntheticShapes]:
    return SyntheticShapes(n, seed=1, train=True, size=16), SyntheticShapes(8, seed=1, train=False, size=16)


def _noisy_method(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A stand-in GNT drawing from torch's global RNG (so resumption must restore it)."""
    keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(keep, x, (x + 0.5 * torch.randn_like(x)).clamp(0, 1))


_CONFIG = dict(arch="resnet8_cifar", data="synthetic16", epochs=3, batch_size=8, lr=0.05, damp_sigma=0.2, damp_m=4)


# -- models ------------------------------------------------------------------------------------------------


def test_models_normalise_inside_and_cifar_resnet_layout():
    model = build_model("resnet18_cifar", 10)
    assert isinstance(model[0], Normalize)
    net = model[1]
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, nn.Identity)
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            assert torch.count_nonzero(block.bn2.weight) == 0
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert build_model("resnet18", 7)(torch.rand(1, 3, 64, 64)).shape == (1, 7)
    x = torch.full((1, 3, 2, 2), 0.5)
    torch.testing.assert_close(Normalize((0.5, 0.5, 0.5), (0.1, 0.2, 0.5))(x), torch.zeros_like(x))


def test_model_errors():
    with pytest.raises(AugrobustValueError, match="resnet18_cifar"):
        build_model("resnet19", 10)
    with pytest.raises(AugrobustValueError, match="num_classes"):
        build_model("resnet8_cifar", 1)


# -- methods -----------------------------------------------------------------------------------------------


def test_methods_registry():
    x = torch.rand(2, 3, 4, 4)
    assert isinstance(get_method("erm"), ERM) and get_method("erm")(None, x, None) is x
    gnt = GNT(augmentation=lambda t: t * 0)
    assert torch.equal(gnt(None, x, None), torch.zeros_like(x))
    register_method("half", lambda: lambda model, t, y: t / 2)
    try:
        torch.testing.assert_close(get_method("half")(None, x, None), x / 2)
    finally:
        del METHODS["half"]
    with pytest.raises(AugrobustValueError, match="erm"):
        get_method("nope")


def test_gnt_uses_augrobust_gaussian_noise():
    import augrobust

    if not hasattr(augrobust, "GaussianNoise"):
        with pytest.raises(AugrobustError, match="GaussianNoise"):
            GNT()
        return
    gnt = GNT()
    torch.manual_seed(0)
    x = torch.full((512, 3, 8, 8), 0.5)
    out = gnt(None, x, None)
    changed = (out != x).flatten(1).any(1).float().mean().item()
    assert 0.4 < changed < 0.6  # p = 0.5
    assert out.min() >= 0 and out.max() <= 1


# -- training, checkpoints, resumption --------------------------------------------------------------------


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path):
    config = TrainConfig(**_CONFIG)
    full = train(config, tmp_path / "full", datasets=_data(), method=_noisy_method, log=None)
    part = train(config, tmp_path / "part", datasets=_data(), method=_noisy_method, stop_after_epoch=1, log=None)
    assert [r["epoch"] for r in part.history] == [1]
    resumed = train(config, tmp_path / "part", datasets=_data(), method=_noisy_method, resume=True, log=None)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    lines = (tmp_path / "part" / METRICS_NAME).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    # Different seed -> different weights (the comparison above is not vacuous).
    other = train(
        TrainConfig(**{**_CONFIG, "seed": 1, "epochs": 1}), tmp_path / "other", datasets=_data(), log=None
    )
    assert not torch.equal(other.model.state_dict()["1.fc.weight"], a["1.fc.weight"])


def test_checkpoint_contents_load_with_weights_only(tmp_path):
    config = TrainConfig(**{**_CONFIG, "epochs": 1})
    train(config, tmp_path, datasets=_data(16), log=None)
    ckpt = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert set(ckpt) == {"model", "optimizer", "scheduler", "epoch", "rng", "config", "method", "history"}
    assert ckpt["method"] == {} and [row["epoch"] for row in ckpt["history"]] == [1]
    assert ckpt["epoch"] == 1
    assert ckpt["config"] == {**config.to_dict(), "num_classes": 10}
    assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python", "damp"}
    assert isinstance(ckpt["rng"]["torch"], torch.Tensor) and isinstance(ckpt["rng"]["damp"], torch.Tensor)
    model = build_model(ckpt["config"]["arch"], ckpt["config"]["num_classes"])
    model.load_state_dict(ckpt["model"])
    assert [p.name for p in tmp_path.iterdir()] and not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_save_checkpoint_is_atomic_and_checks_paths(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"epoch": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint(path, {"epoch": 2, "bad": Unpicklable()})
    assert torch.load(path, weights_only=True) == {"epoch": 1}  # the old checkpoint survives a failed write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
    with pytest.raises(AugrobustValueError, match="does not exist"):
        save_checkpoint(tmp_path / "missing" / "c.pt", {})
    with pytest.raises(AugrobustValueError, match="directory"):
        save_checkpoint(tmp_path, {})


def test_bad_paths_and_malformed_checkpoints(tmp_path):
    config = TrainConfig(**{**_CONFIG, "epochs": 1})
    with pytest.raises(AugrobustValueError, match="no checkpoint"):
        train(config, tmp_path / "empty", datasets=_data(16), resume=True, log=None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(AugrobustValueError, match="not a directory"):
        train(config, tmp_path / "file", datasets=_data(16), log=None)
    run = tmp_path / "run"
    train(config, run, datasets=_data(16), log=None)
    with pytest.raises(AugrobustValueError, match="already exists"):
        train(config, run, datasets=_data(16), log=None)
    with pytest.raises(AugrobustValueError, match="config differs.*lr"):
        train(TrainConfig(**{**_CONFIG, "epochs": 1, "lr": 0.2}), run, datasets=_data(16), resume=True, log=None)

    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(AugrobustValueError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt")
    torch.save({"model": {}, "epoch": 1}, tmp_path / "partial.pt")
    with pytest.raises(AugrobustValueError, match="lacks keys"):
        load_checkpoint(tmp_path / "partial.pt")
    ckpt = torch.load(run / CHECKPOINT_NAME, weights_only=True)
    torch.save({**ckpt, "config": {"arch": "resnet8_cifar"}}, tmp_path / "noclasses.pt")
    with pytest.raises(AugrobustValueError, match="malformed config"):
        load_checkpoint(tmp_path / "noclasses.pt")
    with pytest.raises(AugrobustFileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 10, "damp_m": 4}, "multiple of damp_m"),
        ({"damp_sigma": -1.0}, "damp_sigma"),
        ({"lr": float("nan")}, "lr"),
        ({"arch": "vgg"}, "Unknown arch"),
        ({"method": "mixup"}, "Unknown method"),
    ],
)
def test_malformed_config(change, match):
    with pytest.raises(AugrobustValueError, match=match):
        TrainConfig(**{**_CONFIG, **change}).validate()


def test_config_round_trip_and_bad_data_specs():
    config = TrainConfig(**_CONFIG)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(AugrobustValueError, match="unknown keys"):
        TrainConfig.from_dict({**config.to_dict(), "optimizer": "adam"})
    for spec in ("imagenet", "synthetic:zero", "cifar10:"):
        with pytest.raises(AugrobustValueError, match="spec"):
            build_datasets(spec)
    with pytest.raises(AugrobustError):
        build_datasets("cifar10:/definitely/not/here")
    train_set, test_set = build_datasets("synthetic:20", seed=3)
    assert (len(train_set), len(test_set)) == (20, 4)


def test_cli_trains_and_resumes(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    common = ["train", "--arch", "resnet8_cifar", "--data", "synthetic:16", "--batch-size", "8", "--out", str(tmp_path)]
    args = parser.parse_args([*common, "--epochs", "1", "--method", "erm", "--damp-sigma", "0.1", "--damp-m", "2"])
    assert args.func(args) == 0
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["config"]["damp_sigma"] == 0.1
    args = parser.parse_args([*common, "--epochs", "1", "--method", "erm", "--damp-sigma", "0.1", "--damp-m", "2"])
    with pytest.raises(AugrobustError, match="--resume"):  # refuses to overwrite finished work (cli.main: exit 2)
        args.func(args)
    args = parser.parse_args([*common, "--epochs", "1", "--damp-sigma", "0.1", "--damp-m", "2", "--resume"])
    assert args.func(args) == 0  # already complete: nothing to do


def test_a_method_with_its_own_loss_replaces_the_cross_entropy(tmp_path):
    """``method.loss(model, forward, x, y)`` is the objective when a method overrides it (AFA's aux route)."""
    calls = []

    class HalfLoss(Method):
        def __call__(self, model, x, y):
            raise AssertionError("__call__ must not be used when loss() exists")

        def loss(self, model, forward, x, y):
            logits = forward(x)
            calls.append(x.shape[0])
            return 0.5 * torch.nn.functional.cross_entropy(logits, y), logits

    config = TrainConfig(**{**_CONFIG, "epochs": 1})
    result = train(config, tmp_path / "run", datasets=_data(), method=HalfLoss(), log=None)
    assert calls == [8, 8]
    assert result.history[0]["train_loss"] > 0


def test_a_duck_typed_method_with_hooks_is_refused_not_silently_reduced(tmp_path):
    class OldStyle:  # the protocol before the Method base class: the trainer would now ignore its loss
        def __call__(self, model, x, y):
            return x

        def loss(self, model, forward, x, y):
            raise AssertionError("never called")

    with pytest.raises(AugrobustError, match=r"defines \['loss'\].*Method"):
        train(TrainConfig(**{**_CONFIG, "epochs": 1}), tmp_path, datasets=_data(), method=OldStyle(), log=None)


def test_random_crop_flip_is_a_padded_crop_and_a_fair_flip_per_image():
    """Every output is the zero-padded input cropped at an offset in 0..2p, possibly mirrored; draws per image."""
    from augrobust.train import random_crop_flip

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(400, 2, 6, 7, generator=gen)
    y = random_crop_flip(x, padding=2, generator=gen)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    seen_offsets, flips = set(), 0
    for i in range(len(x)):
        matches = [
            (dy, dx, flip)
            for dy in range(5)
            for dx in range(5)
            for flip in (False, True)
            if torch.equal(y[i], (lambda c: c.flip(-1) if flip else c)(padded[i, :, dy : dy + 6, dx : dx + 7]))
        ]
        assert matches, f"image {i} is not a crop of its padded input"
        dy, dx, flip = matches[0]
        seen_offsets.add((dy, dx))
        flips += flip
    assert len(seen_offsets) == 25  # every offset occurs
    assert 160 < flips < 240  # p = 0.5 (binomial(400, 0.5): +-4 sd)
    unpadded = random_crop_flip(x, padding=0, generator=gen)
    assert all(torch.equal(u, v) or torch.equal(u, v.flip(-1)) for u, v in zip(unpadded, x))
    with pytest.raises(AugrobustValueError, match="padding"):
        random_crop_flip(x, padding=-1)


def test_base_augmentation_is_validated():
    with pytest.raises(AugrobustValueError, match="base_augmentation"):
        TrainConfig(base_augmentation="mixup").validate()


def test_method_options_reach_the_factory_and_are_checked(tmp_path):
    from augrobust.train import get_method

    assert get_method("gnt", sigma=0.1, p=0.25).sigma == 0.1
    with pytest.raises(AugrobustValueError, match="does not take the options"):
        get_method("gnt", sigmaa=0.1)
    with pytest.raises(AugrobustValueError, match="method_options"):
        TrainConfig(method="gnt", method_options={"augmentation": object()}).validate()
    config = TrainConfig(**{**_CONFIG, "epochs": 1, "method": "gnt", "method_options": {"sigma": 0.0, "p": 1.0}})
    train(config, tmp_path / "a", datasets=_data(), log=None)
    stored = load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME)["config"]
    assert stored["method_options"] == {"sigma": 0.0, "p": 1.0}
    assert TrainConfig.from_dict(config.to_dict()).method_options == {"sigma": 0.0, "p": 1.0}
    with pytest.raises(AugrobustValueError, match="does not take the options"):
        train(TrainConfig(**{**config.to_dict(), "method_options": {"bad": 1}}), tmp_path / "b", datasets=_data(), log=None)


def test_cli_method_option_parses_json_values():
    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["train", "--out", "x", "--method", "gnt", "--method-option", "sigma=0.2", "--method-option", "p=0.5"]
    )
    assert dict(args.method_option) == {"sigma": 0.2, "p": 0.5}
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--out", "x", "--method-option", "sigma"])


# -- a non-finite loss ----------------------------------------------------------------------------------------


class _PoisonAt(Method):
    """Plain cross-entropy, but the loss of the listed steps (1-based over the run) is NaN.

    Records the first weight tensor as each step starts, so a test can see whether a step changed it.
    """

    def __init__(self, *bad_steps: int) -> None:
        self.bad_steps, self.calls, self.weights = set(bad_steps), 0, []

    def loss(self, model, forward, x, y):
        self.calls += 1
        self.weights.append(next(model.parameters()).detach().clone())
        loss, logits = super().loss(model, forward, x, y)
        return (loss * float("nan") if self.calls in self.bad_steps else loss), logits


_NAN_CONFIG = dict(arch="resnet8_cifar", data="synthetic16", epochs=3, batch_size=8, lr=0.05)


def test_a_nan_loss_stops_the_run_naming_the_first_bad_step(tmp_path):
    """Epoch 2's first step is NaN (and, through the weights, every later one): the error names that step."""
    method = _PoisonAt(3)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 1 of 2 \(global step 3\).*nan") as info:
        train(TrainConfig(**_NAN_CONFIG), tmp_path, datasets=_data(), method=method, log=None)
    assert (info.value.epoch, info.value.step, info.value.global_step) == (2, 1, 3)
    assert "checkpoint of epoch 1 is intact" in str(info.value)
    assert isinstance(info.value, AugrobustError)
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 1  # nothing of the bad epoch was saved
    rows = [json.loads(line) for line in (tmp_path / METRICS_NAME).read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1] and all(map(math.isfinite, rows[0].values()))


def test_the_check_runs_every_n_steps_not_only_at_the_epoch_end(tmp_path, monkeypatch):
    """With a check every 2 steps a NaN at step 1 stops the run at step 2, not after the epoch's 6 steps."""
    from augrobust.train import trainer

    monkeypatch.setattr(trainer, "NONFINITE_CHECK_STEPS", 2)
    method = _PoisonAt(1)
    config = TrainConfig(**{**_NAN_CONFIG, "epochs": 1})
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 1 of 6") as info:
        train(config, tmp_path, datasets=_data(48), method=method, log=None)
    assert method.calls == 2
    assert "no checkpoint was written" in str(info.value) and not (tmp_path / CHECKPOINT_NAME).exists()


def test_a_diverging_run_is_an_error_not_a_green_exit(tmp_path):
    """No injected NaN: a learning rate of 1e30 makes the loss itself non-finite."""
    with pytest.raises(NonFiniteLossError, match="diverged"):
        train(TrainConfig(**{**_NAN_CONFIG, "lr": 1e30}), tmp_path, datasets=_data(), log=None)
    metrics = tmp_path / METRICS_NAME
    assert not metrics.exists() or "NaN" not in metrics.read_text()


def test_skip_leaves_the_bad_step_without_effect_and_counts_it(tmp_path):
    method = _PoisonAt(3)
    config = TrainConfig(**{**_NAN_CONFIG, "nonfinite": "skip"})
    result = train(config, tmp_path / "skip", datasets=_data(), method=method, log=None)
    assert torch.equal(method.weights[2], method.weights[3])  # step 3 changed nothing (momentum, decay included)
    assert not torch.equal(method.weights[1], method.weights[2])  # the others did
    assert [row["skipped_steps"] for row in result.history] == [0, 1, 0]
    assert all(math.isfinite(row["train_loss"]) for row in result.history)
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    plain = train(TrainConfig(**_NAN_CONFIG), tmp_path / "plain", datasets=_data(), log=None)
    assert [row["lr"] for row in result.history] == [row["lr"] for row in plain.history]  # the schedule advanced
    assert "skipped_steps" not in plain.history[0]


def test_skip_still_stops_when_a_whole_epoch_is_bad(tmp_path):
    config = TrainConfig(**{**_NAN_CONFIG, "nonfinite": "skip"})
    with pytest.raises(NonFiniteLossError, match="epoch 2, step 1 .*every step of the epoch"):
        train(config, tmp_path, datasets=_data(), method=_PoisonAt(3, 4), log=None)


def test_nonfinite_is_validated_and_may_change_on_resume(tmp_path):
    with pytest.raises(AugrobustValueError, match=r"nonfinite.*'error', 'skip'"):
        TrainConfig(nonfinite="ignore").validate()
    config = TrainConfig(**{**_NAN_CONFIG, "epochs": 2})
    train(config, tmp_path, datasets=_data(), stop_after_epoch=1, log=None)
    resumed = train(
        TrainConfig(**{**config.to_dict(), "nonfinite": "skip"}), tmp_path, datasets=_data(), resume=True, log=None
    )
    assert [row["epoch"] for row in resumed.history] == [1, 2]


# -- loading a checkpoint's model -------------------------------------------------------------------------------


@pytest.mark.slow
def test_load_model_rebuilds_what_the_run_trained(tmp_path):
    """AFA's dual-BN form comes back through the method's prepare_model; wrapper prefixes are stripped."""
    config = TrainConfig(arch="resnet8_cifar", method="afa", data="synthetic16", epochs=1, batch_size=8, lr=0.05)
    result = train(config, tmp_path / "afa", datasets=_data(), log=None)
    model, stored = load_model(tmp_path / "afa" / CHECKPOINT_NAME)
    assert stored["method"] == "afa" and not model.training
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(model(x), result.model.eval()(x))

    ckpt = torch.load(tmp_path / "afa" / CHECKPOINT_NAME, weights_only=True)
    torch.save({**ckpt, "model": {f"module.{k}": v for k, v in ckpt["model"].items()}}, tmp_path / "ddp.pt")
    assert torch.equal(load_model(tmp_path / "ddp.pt")[0](x), result.model(x))
    torch.save({**ckpt, "config": {**ckpt["config"], "method": "not_registered"}}, tmp_path / "unknown.pt")
    with pytest.raises(AugrobustValueError, match="method 'not_registered' was not applied: Unknown training method"):
        load_model(tmp_path / "unknown.pt")  # its dual BNs do not fit the plain network: said, not guessed
    with pytest.raises(AugrobustFileNotFoundError, match="checkpoint not found"):
        load_model(tmp_path / "missing.pt")


@pytest.mark.slow
def test_load_model_of_a_dfmx_run_does_not_need_the_map_file(tmp_path):
    from augrobust.dfm import save_dfms
    from augrobust.transforms.dfmx import example_dfms

    maps = save_dfms(tmp_path / "dfms.pt", example_dfms(10, 16))
    options = {"dfms": str(maps), "p": 1.0}
    config = TrainConfig(arch="resnet8_cifar", method="dfmx", method_options=options, data="x", epochs=1, batch_size=8)
    result = train(config, tmp_path / "run", datasets=_data(), log=None)
    maps.unlink()
    model, stored = load_model(tmp_path / "run" / CHECKPOINT_NAME)
    assert stored["method_options"] == options
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(model(x), result.model.eval()(x))
    with pytest.raises(AugrobustValueError, match="dfms.pt"):  # training with it does need the file
        train(config, tmp_path / "again", datasets=_data(), log=None)
    ckpt = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    torch.save({**ckpt, "config": {**ckpt["config"], "method_options": {}}}, tmp_path / "env_var_era.pt")
    assert torch.equal(load_model(tmp_path / "env_var_era.pt")[0](x), model(x))  # maps came from AUGROBUST_DFMS
