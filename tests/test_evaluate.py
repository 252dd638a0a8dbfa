"""Corruption evaluation: errors counted by hand, seeding per (seed, corruption, severity, batch), .npy mode,
the report's metrics and files, and the ``augrobust eval`` command on a tiny checkpoint."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

import augrobust
from augrobust.corruptions import _spec
from augrobust.corruptions._spec import CorruptionSpec
from augrobust.data import SyntheticShapes
from augrobust.errors import AugrobustValueError
from augrobust.evaluation import CorruptionReport, corruption_batch_seed, evaluate_corruptions
from augrobust.metrics import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS
from augrobust.report import alexnet_baseline


def _brighten(x, severity, params, *, preset, reference):
    """A deterministic stand-in corruption: add 0.1 * severity."""
    return (x + 0.1 * severity.to(x.dtype).view(-1, 1, 1, 1)).clamp(0, 1)


@pytest.fixture
def two_corruptions(monkeypatch):
    """The template corruption (stochastic) and a deterministic stand-in registered for the test's duration
    under a real name, so these tests do not depend on corruptions other engineers are still writing."""
    monkeypatch.setitem(_spec._REGISTRY, "saturate", CorruptionSpec(name="saturate", apply=_brighten))
    return ["gaussian_noise", "saturate"]


class MeanThreshold(torch.nn.Module):
    """A fixed 'classifier' whose prediction depends on the pixels: class = floor(10 * mean of channel 0)."""

    scale = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = (x[:, 0].double().mean(dim=(1, 2)) * self.scale).floor().remainder(10).long()
        return torch.nn.functional.one_hot(cls, 10).float() + 0 * self.dummy


class PixelHash(MeanThreshold):
    """Class = floor(10^5 * mean) mod 10: any change of the random draws changes its predictions."""

    scale = 1e5


def _by_hand(dataset, names, severities, batch_size, seed, preset="cifar", reference="hendrycks"):
    # The defaults are what preset="auto" / reference="auto" give 32-px images (evaluation.AUTO_PRESET_RULE).
    model = PixelHash()
    xs = torch.stack([dataset[i][0] for i in range(len(dataset))])
    ys = torch.tensor([dataset[i][1] for i in range(len(dataset))])
    clean = 1 - (model(xs.float() / 255).argmax(1) == ys).float().mean().item()
    errors = {}
    for name in names:
        errors[name] = []
        for s in severities:
            wrong = 0
            for b, start in enumerate(range(0, len(xs), batch_size)):
                g = torch.Generator().manual_seed(corruption_batch_seed(seed, name, s, b))
                xc = augrobust.corrupt(
                    xs[start : start + batch_size], name, s, preset=preset, reference=reference, generator=g
                )
                wrong += (model(xc.float() / 255).argmax(1) != ys[start : start + batch_size]).sum().item()
            errors[name].append(wrong / len(xs))
    return clean, errors


def test_errors_match_a_hand_count_with_per_batch_generators(two_corruptions):
    ds = SyntheticShapes(16, seed=2, train=False)
    kw = dict(corruptions=two_corruptions, severities=(1, 4), batch_size=8, progress=False)
    report = evaluate_corruptions(PixelHash(), ds, seed=7, **kw)
    clean, errors = _by_hand(ds, two_corruptions, (1, 4), 8, 7)
    assert report.clean_error == pytest.approx(clean)
    assert list(report.errors) == two_corruptions
    for name in two_corruptions:
        assert report.errors[name] == pytest.approx(errors[name])
    # The check is sensitive to the draws: another evaluation seed changes the errors.
    other = evaluate_corruptions(PixelHash(), ds, seed=8, **kw)
    assert other.errors != report.errors and other.clean_error == report.clean_error
    assert report.severities == (1, 4) and report.num_images == 16
    assert report.metadata["seed"] == 7 and report.metadata["preset"] == "cifar"  # auto


def test_results_do_not_depend_on_the_order_of_corruptions_or_severities(two_corruptions):
    ds = SyntheticShapes(6, train=False)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    kw = dict(batch_size=4, progress=False, seed=3)
    a = evaluate_corruptions(model, ds, corruptions=two_corruptions, severities=(2, 5), **kw)
    b = evaluate_corruptions(model, ds, corruptions=two_corruptions[::-1], severities=(5,), **kw)
    for name in two_corruptions:
        assert a.errors[name][1] == b.errors[name][0]
    assert a.clean_error == b.clean_error


def test_constant_classifier_error_is_the_share_of_other_labels(two_corruptions):
    class AlwaysThree(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((x.shape[0],), 3), 10).float()

    report = evaluate_corruptions(
        AlwaysThree(), SyntheticShapes(10), corruptions=two_corruptions, severities=(1, 5), progress=False
    )
    assert report.clean_error == pytest.approx(0.9)  # labels cycle 0..9: 1 of 10 is class 3
    assert all(e == pytest.approx(0.9) for errs in report.errors.values() for e in errs)
    assert report.mean_corruption_accuracy() == pytest.approx(0.1)


def test_default_corruptions_are_all_registered_ones_and_training_mode_is_restored(monkeypatch, two_corruptions):
    import augrobust.evaluation as evaluate_module

    # The registry grows as corruptions land; pin it so that this test stays small.
    monkeypatch.setattr(evaluate_module, "registered_names", lambda: tuple(two_corruptions))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10), torch.nn.Dropout(0.5))
    model.train()
    report = evaluate_corruptions(model, SyntheticShapes(2), severities=(1,), progress=False)
    assert list(report.errors) == two_corruptions
    assert model.training


def test_argument_errors():
    ds = SyntheticShapes(2)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    with pytest.raises(AugrobustValueError, match="unknown corruption"):
        evaluate_corruptions(model, ds, corruptions=["nonsense"], progress=False)
    with pytest.raises(AugrobustValueError, match="1..5"):
        evaluate_corruptions(model, ds, corruptions=["gaussian_noise"], severities=(0, 1), progress=False)
    with pytest.raises(AugrobustValueError, match="batch_size"):
        evaluate_corruptions(model, ds, corruptions=["gaussian_noise"], batch_size=0, progress=False)
    with pytest.raises(AugrobustValueError, match="logits"):
        evaluate_corruptions(lambda x: x.mean(dim=(1, 2, 3)), ds, corruptions=["gaussian_noise"], progress=False)


def _write_npy_root(root, ds, names):
    """CIFAR-10-C layout built from a dataset: per corruption, severities 1..5 stacked, uint8 HWC."""
    xs = torch.stack([ds[i][0] for i in range(len(ds))])
    for k, name in enumerate(names):
        blocks = [(xs.int() + 40 * s * (k + 1)).clamp(0, 255).to(torch.uint8) for s in range(1, 6)]
        np.save(root / f"{name}.npy", torch.cat(blocks).permute(0, 2, 3, 1).numpy())
    np.save(root / "labels.npy", np.array([ds[i][1] for i in range(len(ds))] * 5))
    return xs


def test_npy_mode_reads_the_stacked_files(tmp_path):
    ds = SyntheticShapes(7, train=False)
    xs = _write_npy_root(tmp_path, ds, ["fog", "snow"])
    ys = torch.tensor(ds.targets)
    model = MeanThreshold()
    report = evaluate_corruptions(model, ds, npy_root=tmp_path, severities=(2, 3), batch_size=3, progress=False)
    assert list(report.errors) == ["snow", "fog"]  # imagecorruptions order
    for k, name in enumerate(["fog", "snow"]):
        for j, s in enumerate((2, 3)):
            shifted = (xs.int() + 40 * s * (k + 1)).clamp(0, 255).float() / 255
            assert report.errors[name][j] == pytest.approx((model(shifted).argmax(1) != ys).float().mean().item())
    assert report.clean_error == pytest.approx((model(xs.float() / 255).argmax(1) != ys).float().mean().item())
    no_clean = evaluate_corruptions(model, None, npy_root=tmp_path, corruptions=["fog"], progress=False)
    assert no_clean.clean_error is None and list(no_clean.errors) == ["fog"]
    with pytest.raises(FileNotFoundError, match="available: fog, snow"):
        evaluate_corruptions(model, None, npy_root=tmp_path, corruptions=["frost"], progress=False)


# ------------------------------------------------------------------------------------------------- report


def _report(severities=(1, 2, 3, 4, 5)):
    errs = {"fog": [0.2, 0.3, 0.4, 0.5, 0.6], "snow": [0.1, 0.1, 0.2, 0.2, 0.3], "saturate": [0.9] * 5}
    sel = [s - 1 for s in severities]
    return CorruptionReport(
        clean_error=0.05, errors={k: [v[i] for i in sel] for k, v in errs.items()}, severities=severities,
        num_images=100, metadata={"preset": "cifar"},
    )  # fmt: skip


def test_report_metrics_by_hand():
    r = _report()
    assert r.mce() is None and r.relative_mce() is None and r.corruption_ce() is None  # no baseline: absent
    r.baseline = alexnet_baseline()
    fog, snow = ALEXNET_ERRORS["fog"], ALEXNET_ERRORS["snow"]
    # mCE over the benchmark corruptions present (fog, snow); saturate is a hold-out corruption.
    assert r.benchmark_corruptions() == ["snow", "fog"]
    assert r.mce() == pytest.approx((2.0 / sum(fog) + 0.9 / sum(snow)) / 2)
    assert r.corruption_ce()["fog"] == pytest.approx(2.0 / sum(fog))
    rel = ((2.0 - 0.25) / (sum(fog) - 5 * ALEXNET_CLEAN_ERROR) + (0.9 - 0.25) / (sum(snow) - 5 * ALEXNET_CLEAN_ERROR)) / 2
    assert r.relative_mce() == pytest.approx(rel)
    assert r.mce(corruptions=["saturate"]) == pytest.approx(4.5 / sum(ALEXNET_ERRORS["saturate"]))
    # The mean accuracy is over the same set as mCE, and the set is stated.
    assert r.mean_corruption_accuracy() == pytest.approx(1 - (0.4 + 0.18) / 2)
    assert r.means()["all"]["mean_accuracy"] == pytest.approx(1 - (0.4 + 0.18 + 0.9) / 3)
    assert r.means()["holdout"]["corruptions"] == ["saturate"]
    # A severity subset is compared with the same AlexNet severities.
    sub = _report(severities=(2, 5))
    sub.baseline = alexnet_baseline()
    assert sub.mce(corruptions=["fog"]) == pytest.approx((0.3 + 0.6) / (fog[1] + fog[4]))
    custom = {"fog": [1.0] * 5, "snow": [0.5] * 5}
    assert r.mce(custom) == pytest.approx((2.0 / 5 + 0.9 / 2.5) / 2)
    no_clean = CorruptionReport(clean_error=None, errors={"fog": [0.5] * 5}, baseline=alexnet_baseline())
    assert no_clean.relative_mce() is None and no_clean.mce() is not None
    with pytest.raises(AugrobustValueError, match="severities"):
        CorruptionReport(clean_error=None, errors={"fog": [0.5] * 4})


def test_alexnet_table_means_equal_the_published_averages():
    # The per-severity table (hendrycks/robustness README, commit 76d9393) against the independent "Average"
    # constants of google-research/augmix imagenet.py (ALEXNET_ERR, the 15 benchmark corruptions in order).
    augmix = [0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816, 0.826572,
              0.819324, 0.564592, 0.853204, 0.646056, 0.717840, 0.606500]  # fmt: skip
    from augrobust.corruptions import SUBSETS

    for name, avg in zip(SUBSETS["common"], augmix):
        assert sum(ALEXNET_ERRORS[name]) / 5 == pytest.approx(avg, abs=1e-6), name


def test_report_json_round_trip_is_atomic(tmp_path):
    r = _report()
    path = r.save_json(tmp_path / "sub" / "report.json")
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]  # no temporary file left behind
    r.baseline = alexnet_baseline()
    path = r.save_json(tmp_path / "sub" / "report.json")
    data = json.loads(path.read_text())
    assert data["errors"] == r.errors and data["clean_error"] == 0.05 and data["severities"] == [1, 2, 3, 4, 5]
    assert data["summary"]["mce"] == pytest.approx(r.mce())
    assert data["summary"]["relative_mce"] == pytest.approx(r.relative_mce())
    assert CorruptionReport.load_json(path) == r


def test_report_markdown_table():
    md = _report().to_markdown()
    assert "| corruption | s1 | s2 | s3 | s4 | s5 | mean | CE |" in md
    assert "| fog | 20.00 | 30.00 | 40.00 | 50.00 | 60.00 | 40.00 |" in md
    assert "clean error: 5.00 %" in md and "mCE: not computed (no baseline" in md
    assert "over 2 of the 15 benchmark corruptions: mean corruption error 29.00 %" in md


def test_report_figures_are_pngs_with_a_clean_column(tmp_path):
    r = _report()
    r.metadata["model"] = "tiny"
    heat = Image.open(r.save_heatmap(tmp_path / "heatmap.png")).convert("RGB")
    curves = Image.open(r.save_severity_curves(tmp_path / "curves.png")).convert("RGB")
    assert heat.size[0] > 400 and heat.size[1] > 200 and curves.size[0] > 400
    # The cells are shaded by error (magma_r: more error is darker). The colour bar is the same in both figures,
    # so the dark area grows only through the cells.
    def dark_pixels(err):
        rep = CorruptionReport(clean_error=err, errors={"fog": [err] * 5, "snow": [err] * 5}, metadata={"model": "m"})
        px = np.asarray(Image.open(rep.save_heatmap(tmp_path / f"h{err}.png")).convert("RGB")).astype(int)
        return int((px.sum(axis=2) < 100).sum())

    assert dark_pixels(1.0) > 3 * dark_pixels(0.0) + 5000


def test_progress_goes_to_stderr_and_is_silenced_by_progress_false(two_corruptions, capsys):
    ds = SyntheticShapes(4, train=False)
    kw = dict(corruptions=two_corruptions, severities=(1, 2), batch_size=2)
    evaluate_corruptions(PixelHash(), ds, progress=True, **kw)
    err = capsys.readouterr().err
    # Not a terminal: whole lines, no carriage returns; 1 clean unit and 2 x 2 corrupted units.
    assert "evaluating: 100%" in err and "5/5" in err and "\r" not in err
    evaluate_corruptions(PixelHash(), ds, progress=False, **kw)
    assert capsys.readouterr().err == ""


# -------------------------------------------------------------------------------------------------- the CLI


class TinyNet(torch.nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


@pytest.fixture
def fake_trainer(monkeypatch):
    """A tiny architecture for the trainer's model factory, so the CLI is tested on a fast model."""
    import augrobust.train.models

    monkeypatch.setattr(augrobust.train.models, "build_model", lambda arch, num_classes: TinyNet(num_classes))
    return augrobust.train.models


def _run_cli(argv):
    from augrobust.commands import eval as eval_cli

    parser = argparse.ArgumentParser(prog="augrobust")
    eval_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_eval_command_writes_report_files(tmp_path, fake_trainer, two_corruptions, capsys):
    torch.manual_seed(0)
    net = TinyNet(10)
    ckpt = tmp_path / "ckpt.pt"
    # DDP-wrapped state dicts carry a "module." prefix; the loader strips it.
    torch.save({"model": {f"module.{k}": v for k, v in net.state_dict().items()},
                "config": {"arch": "tiny", "num_classes": 10}, "epoch": 3}, ckpt)  # fmt: skip
    out = tmp_path / "out"
    code = _run_cli([
        "eval", "--checkpoint", str(ckpt), "--data", "synthetic", "--num-images", "6", "--corruptions",
        ",".join(two_corruptions), "--severities", "1,3", "--out", str(out), "--batch-size", "4", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "eval_state.json", "heatmap.png", "report.json", "report.md", "severity_curves.png"
    ]
    data = json.loads((out / "report.json").read_text())
    assert list(data["errors"]) == two_corruptions and data["severities"] == [1, 3] and data["num_images"] == 6
    assert data["metadata"]["preset"] == "cifar"  # auto: 32-px images use CIFAR-10-C's table
    expected = evaluate_corruptions(
        net, SyntheticShapes(6, train=False), corruptions=two_corruptions, severities=(1, 3), batch_size=4,
        preset="cifar", progress=False,
    )  # fmt: skip
    assert data["errors"] == expected.errors and data["clean_error"] == expected.clean_error
    assert "| corruption |" in capsys.readouterr().out
    Image.open(out / "heatmap.png").verify()


def test_eval_command_with_npy_root_and_bad_checkpoints(tmp_path, fake_trainer):
    ds = SyntheticShapes(5, train=False)
    npy = tmp_path / "c10c"
    npy.mkdir()
    _write_npy_root(npy, ds, ["fog"])
    torch.save({"model": TinyNet(10).state_dict(), "config": {"arch": "tiny", "num_classes": 10}}, tmp_path / "c.pt")
    out = tmp_path / "out"
    assert _run_cli(["eval", "--checkpoint", str(tmp_path / "c.pt"), "--num-images", "5", "--npy-root", str(npy),
                     "--corruptions", "fog", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    assert list(json.loads((out / "report.json").read_text())["errors"]) == ["fog"]
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        _run_cli(["eval", "--checkpoint", str(tmp_path / "missing.pt")])
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(AugrobustValueError, match="cannot load checkpoint"):
        _run_cli(["eval", "--checkpoint", str(tmp_path / "garbage.pt")])
    torch.save({"weights": 1}, tmp_path / "bad.pt")
    with pytest.raises(AugrobustValueError, match="lacks keys"):
        _run_cli(["eval", "--checkpoint", str(tmp_path / "bad.pt")])
    with pytest.raises(AugrobustValueError, match="unknown data spec"):
        _run_cli(["eval", "--checkpoint", str(tmp_path / "c.pt"), "--data", "mnist:/x"])


def test_eval_is_registered_in_the_augrobust_command():
    from augrobust import cli

    assert "augrobust.commands.eval" in cli._COMMAND_MODULES


@pytest.mark.slow
def test_eval_with_the_real_trainer_model_factory(tmp_path):
    from augrobust import train

    model = train.build_model("resnet18_cifar", 10)
    torch.save({"model": model.state_dict(), "config": {"arch": "resnet18_cifar", "num_classes": 10}}, tmp_path / "r.pt")
    out = tmp_path / "out"
    assert _run_cli(["eval", "--checkpoint", str(tmp_path / "r.pt"), "--num-images", "4", "--corruptions",
                     "gaussian_noise", "--severities", "5", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    assert json.loads((out / "report.json").read_text())["num_images"] == 4
