"""Evaluate any model (issue 11): Python and the CLI agree, baselines are stated or absent, every mean names
its set, ImageNet-C trees read back as the images they hold, PIL datasets and plain state_dicts work, bad
trees give errors naming the path, ECE equals torchmetrics'."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import augrobust
from augrobust.data import CIFARC, ImageNetC, SyntheticShapes, from_spec
from augrobust.errors import AugrobustValueError
from augrobust.evaluation import evaluate_corruptions
from augrobust.metrics import ece_bin_stats, ece_from_bins


def _cli(argv):
    from augrobust.commands import compare
    from augrobust.commands import eval as eval_cli

    parser = argparse.ArgumentParser(prog="augrobust")
    sub = parser.add_subparsers(dest="command")
    eval_cli.add_parser(sub)
    compare.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def _cifar_c(root, n=6, names=("fog", "snow")):
    """A CIFAR-10-C-style folder: per corruption 5 x n noisy copies of synthetic images, and labels.npy."""
    ds = SyntheticShapes(n, train=False, seed=3)
    imgs = np.stack([ds[i][0].permute(1, 2, 0).numpy() for i in range(n)])
    rng = np.random.default_rng(0)
    root.mkdir()
    for name in names:
        blocks = [
            np.clip(imgs + rng.integers(-9 * s, 9 * s + 1, imgs.shape), 0, 255).astype(np.uint8) for s in range(1, 6)
        ]
        np.save(root / f"{name}.npy", np.concatenate(blocks))
    np.save(root / "labels.npy", np.array([ds[i][1] for i in range(n)]))
    return root


@pytest.fixture
def resnet(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    torch.save(model.state_dict(), tmp_path / "r18.pt")  # a plain state_dict
    return model, tmp_path / "r18.pt"


def test_python_and_cli_give_the_same_report(tmp_path, resnet):
    model, weights = resnet
    root = _cifar_c(tmp_path / "c10c")
    out = tmp_path / "out"
    assert _cli(["eval", "--model", "torchvision:resnet18", "--weights", str(weights), "--num-classes", "10",
                 "--normalize", "cifar", "--data", f"cifar10-c:{root}", "--corruptions", "fog,snow",
                 "--out", str(out), "--no-progress", "--no-figures"]) == 0  # fmt: skip
    cli = json.loads((out / "report.json").read_text())
    py = augrobust.evaluate(model, f"cifar10-c:{root}", corruptions=["fog", "snow"], normalize="cifar", device="cpu",
                            progress=False)  # fmt: skip
    assert cli["errors"] == py.errors and cli["ece"] == py.ece
    assert cli["metadata"]["preset"] == py.metadata["preset"] == "cifar"
    # On the fly too: the same preset rule ("auto") in both.
    out2 = tmp_path / "out2"
    assert _cli(["eval", "--model", "torchvision:resnet18", "--weights", str(weights), "--num-classes", "10",
                 "--data", "synthetic", "--num-images", "4", "--corruptions", "gaussian_noise", "--severities", "2",
                 "--out", str(out2), "--no-progress", "--no-figures"]) == 0  # fmt: skip
    cli2 = json.loads((out2 / "report.json").read_text())
    py2 = augrobust.evaluate(model, from_spec("synthetic", train=False, num_images=4), corruptions=["gaussian_noise"],
                             severities=(2,), device="cpu", progress=False)  # fmt: skip
    assert cli2["errors"] == py2.errors and cli2["clean_error"] == py2.clean_error
    assert cli2["metadata"]["preset"] == py2.metadata["preset"] == "cifar"
    assert cli2["metadata"]["reference"] == py2.metadata["reference"] == "hendrycks"
    assert py2.metadata["preset_rule"] == augrobust.evaluation.AUTO_PRESET_RULE


def test_mce_is_absent_without_a_valid_baseline_and_every_mean_names_its_set(tmp_path, resnet):
    model, _ = resnet
    root = _cifar_c(tmp_path / "c10c", names=("fog", "snow", "spatter"))
    bench = CIFARC(root)
    r = augrobust.evaluate(model, bench, corruptions=["fog", "snow", "spatter"], device="cpu",
                           progress=False)  # fmt: skip
    data = r.to_dict()
    assert r.baseline is None and data["summary"]["mce"] is None and data["summary"]["relative_mce"] is None
    assert data["summary"]["corruption_ce"] is None
    assert "mCE" not in r.to_markdown().split("CE / mCE: not computed")[0]
    means = data["summary"]["means"]
    assert means["benchmark"]["corruptions"] == ["snow", "fog"] and not means["benchmark"]["complete"]
    assert means["holdout"]["corruptions"] == ["spatter"] and means["all"]["corruptions"] == ["snow", "fog", "spatter"]
    assert data["summary"]["mean_corruptions"] == ["snow", "fog"]
    assert all(m["mce"] is None for m in means.values())
    # AlexNet's errors are refused for CIFAR-shaped data.
    with pytest.raises(AugrobustValueError, match="ImageNet-C-shaped"):
        augrobust.evaluate(model, bench, corruptions=["fog"], baseline="alexnet", device="cpu", progress=False)
    # Another model's report is a valid baseline: CE = ratio of summed errors.
    path = r.save_json(tmp_path / "base.json")
    other_model = torchvision.models.resnet18(num_classes=10)
    other = augrobust.evaluate(other_model, bench, corruptions=["fog", "snow", "spatter"],
                               baseline=str(path), device="cpu", progress=False)  # fmt: skip
    ce_fog = sum(other.errors["fog"]) / sum(r.errors["fog"])
    assert other.corruption_ce()["fog"] == pytest.approx(ce_fog)
    assert other.to_dict()["summary"]["means"]["benchmark"]["mce"] == pytest.approx(other.mce())
    # A baseline lacking an evaluated corruption is an error, not a partial mean.
    r_fog = augrobust.evaluate(model, bench, corruptions=["fog"], device="cpu", progress=False)
    with pytest.raises(AugrobustValueError, match="lacks the evaluated corruptions"):
        augrobust.evaluate(model, bench, corruptions=["fog", "snow"], baseline=r_fog, device="cpu", progress=False)


def _imagenet_c_tree(root, names=("fog",), sevs=(1, 2), wnids=("n01", "n02", "n03"), size=(40, 36)):
    rng = np.random.default_rng(1)
    for name in names:
        for s in sevs:
            for w in wnids:
                (root / name / str(s) / w).mkdir(parents=True)
                for k in range(2):
                    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                    Image.fromarray(arr).save(root / name / str(s) / w / f"ILSVRC_{k}.JPEG", quality=85)
    return root


class MeanColour(torch.nn.Module):
    """Deterministic pixel-sensitive logits for 3 classes."""

    def forward(self, x):
        return torch.stack([x[:, 0].mean((1, 2)), x[:, 1].mean((1, 2)), x[:, 2].mean((1, 2))], dim=1) * 100


def test_an_imagenet_c_tree_reads_back_as_the_images_it_holds(tmp_path):
    root = _imagenet_c_tree(tmp_path / "inc")
    report = augrobust.evaluate(MeanColour(), ImageNetC(root, crop=32), corruptions=["fog"], severities=(1, 2),
                                device="cpu", progress=False, batch_size=4)  # fmt: skip
    crop = torchvision.transforms.CenterCrop(32)  # the reference test script's transform
    for j, s in enumerate((1, 2)):
        xs, ys = [], []
        for label, w in enumerate(("n01", "n02", "n03")):  # ImageFolder: sorted wnids
            for f in sorted((root / "fog" / str(s) / w).iterdir()):
                xs.append(torchvision.transforms.functional.pil_to_tensor(crop(Image.open(f).convert("RGB"))))
                ys.append(label)
        x = torch.stack(xs).float() / 255
        err = 1 - (MeanColour()(x).argmax(1) == torch.tensor(ys)).float().mean().item()
        assert report.errors["fog"][j] == pytest.approx(err)
        stats = ece_bin_stats(MeanColour()(x), torch.tensor(ys))
        assert report.ece["fog"][j] == pytest.approx(ece_from_bins(stats))
    assert report.num_images == 6 and report.metadata["source"].startswith("imagenet-c:")
    # A list of image ids (RobustBench's subset format) restricts every test set.
    ids = tmp_path / "ids.txt"
    ids.write_text("n02/ILSVRC_0.JPEG\nn03/ILSVRC_1.JPEG\n")
    sub = augrobust.evaluate(MeanColour(), ImageNetC(root, crop=32, image_ids=ids), corruptions=["fog"],
                             severities=(1,), device="cpu", progress=False)  # fmt: skip
    assert sub.num_images == 2


def test_alexnet_baseline_only_for_imagenet_shaped_data(tmp_path):
    root = _imagenet_c_tree(tmp_path / "inc", sevs=(1,), size=(224, 224), wnids=("n01",))
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 1000))
    r = augrobust.evaluate(model, ImageNetC(root), corruptions=["fog"], severities=(1,), device="cpu", progress=False)
    assert r.baseline is not None and r.baseline.name.startswith("AlexNet")
    assert r.mce() == pytest.approx(r.errors["fog"][0] / 0.67474)
    assert "AlexNet" in r.to_markdown()
    r3 = augrobust.evaluate(
        MeanColour(), ImageNetC(root), corruptions=["fog"], severities=(1,), device="cpu", progress=False
    )  # 3 classes: not ImageNet-shaped
    assert r3.baseline is None and r3.mce() is None


def test_bad_trees_name_the_path(tmp_path):
    root = _imagenet_c_tree(tmp_path / "inc", sevs=(1,))
    with pytest.raises(FileNotFoundError, match=r"fog/3"):
        augrobust.evaluate(MeanColour(), ImageNetC(root, crop=32), corruptions=["fog"], severities=(1, 3),
                           device="cpu", progress=False)  # fmt: skip
    (root / "foggy").mkdir()
    with pytest.raises(AugrobustValueError, match=r"inc/foggy.*not an ImageNet-C corruption"):
        ImageNetC(root)
    (root / "foggy").rmdir()
    bad = root / "fog" / "1" / "n02" / "ILSVRC_0.JPEG"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(AugrobustValueError, match=r"cannot decode image .*n02/ILSVRC_0.JPEG"):
        augrobust.evaluate(MeanColour(), ImageNetC(root, crop=32), corruptions=["fog"], severities=(1,),
                           device="cpu", progress=False)  # fmt: skip
    with pytest.raises(AugrobustValueError, match="no training split"):
        from_spec(f"imagenet-c:{root}", train=True, benchmarks=True)
    with pytest.raises(AugrobustValueError, match="only the evaluation"):
        from_spec(f"imagenet-c:{root}", train=False)  # what training and the DFM sweep call


def test_a_pil_dataset_and_a_dataloader_work(resnet):
    model, _ = resnet
    ds = SyntheticShapes(4, train=False)
    pil = [(Image.fromarray(ds[i][0].permute(1, 2, 0).numpy()), ds[i][1]) for i in range(4)]
    kw = dict(corruptions=["gaussian_noise"], severities=(3,), device="cpu", progress=False, batch_size=2)
    a = augrobust.evaluate(model, pil, **kw)
    b = augrobust.evaluate(model, ds, **kw)
    c = augrobust.evaluate(model, torch.utils.data.DataLoader(ds, batch_size=2), **{**kw, "batch_size": None})
    assert a.errors == b.errors == c.errors and a.clean_error == b.clean_error


def test_ece_equals_torchmetrics():
    import torchmetrics  # a dev dependency: a missing one fails, never skips
    torch.manual_seed(0)
    logits, labels = torch.randn(300, 7) * 3, torch.randint(0, 7, (300,))
    ours = ece_from_bins(ece_bin_stats(logits[:100], labels[:100]) + ece_bin_stats(logits[100:], labels[100:]))
    ref = torchmetrics.functional.classification.multiclass_calibration_error(logits.softmax(1), labels, 7, n_bins=15)
    assert ours == pytest.approx(float(ref), abs=1e-6)


def test_evaluate_corruptions_defaults_equal_evaluate():
    ds = SyntheticShapes(4, train=False)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    kw = dict(corruptions=["gaussian_noise"], severities=(2,), progress=False)
    low = evaluate_corruptions(model, ds, batch_size=128, **kw)
    high = augrobust.evaluate(model, ds, device="cpu", **kw)
    assert low.errors == high.errors and low.metadata["preset"] == high.metadata["preset"] == "cifar"


def test_missing_matplotlib_names_the_extra(monkeypatch):
    import sys

    from augrobust.figures import require_matplotlib

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(AugrobustValueError, match=r"augrobust\[plots\]"):
        require_matplotlib()


def test_compare_writes_a_table_and_figures(tmp_path):
    from augrobust.report import CorruptionReport

    paths = []
    for k, err in enumerate((0.2, 0.4)):
        r = CorruptionReport(0.1, {"fog": [err] * 5, "snow": [err / 2] * 5}, metadata={"model": f"m{k}"})
        paths.append(str(r.save_json(tmp_path / f"r{k}" / "report.json")))
    out = tmp_path / "cmp"
    assert _cli(["compare", *paths, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["comparison.md", "comparison.png", "severity_curves.png"]
    md = (out / "comparison.md").read_text()
    assert "| m0 | 90.00 | 85.00 | 2 of the 15 benchmark corruptions | n/a | none |" in md


def test_model_specs_load_plain_state_dicts_and_refuse_wrong_ones(tmp_path, resnet):
    from augrobust.models import load_model_spec

    model, weights = resnet
    loaded = load_model_spec("torchvision:resnet18", weights=weights, num_classes=10)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))
    # DDP-style prefixes are stripped; an augrobust checkpoint's "model" entry is read.
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}, "config": {}}, tmp_path / "c.pt")
    assert torch.equal(load_model_spec("torchvision:resnet18", weights=tmp_path / "c.pt", num_classes=10)(x), model(x))
    with pytest.raises(AugrobustValueError, match=r"do not fit the model.*--num-classes"):
        load_model_spec("torchvision:resnet18", weights=weights, num_classes=1000)
    with pytest.raises(AugrobustValueError, match="torchvision:NAME"):
        load_model_spec("resnet18")
    import timm  # a dev dependency: a missing one fails, never skips
    assert timm.__name__ == "timm"
    assert load_model_spec("timm:resnet18", num_classes=7)(x).shape == (2, 7)


def test_missing_timm_names_the_extra(monkeypatch):
    import sys

    from augrobust.models import load_model_spec

    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(AugrobustValueError, match=r"augrobust\[timm\]"):
        load_model_spec("timm:resnet18")


def test_benchmark_specs_refuse_size_and_count_options(tmp_path):
    root = _cifar_c(tmp_path / "c10c")
    with pytest.raises(AugrobustValueError, match="do not apply"):
        from_spec(f"cifar10-c:{root}", train=False, num_images=3, benchmarks=True)


def test_an_imagenet_c_evaluation_resumes_and_refuses_other_files(tmp_path):
    root = _imagenet_c_tree(tmp_path / "inc", sevs=(1, 2))
    kw = dict(corruptions=["fog"], severities=(1, 2), device="cpu", progress=False, out_dir=tmp_path / "out")
    first = augrobust.evaluate(MeanColour(), ImageNetC(root, crop=32), **kw)
    again = augrobust.evaluate(MeanColour(), ImageNetC(root, crop=32), **kw)  # from the kept units
    assert again.errors == first.errors and again.ece == first.ece
    (root / "fog" / "2" / "n01" / "ILSVRC_0.JPEG").rename(root / "fog" / "2" / "n01" / "ILSVRC_9.JPEG")
    with pytest.raises(AugrobustValueError, match="other arguments .*benchmark"):
        augrobust.evaluate(MeanColour(), ImageNetC(root, crop=32), **kw)


def test_top_level_evaluate_is_the_function_even_after_importing_the_module():
    import inspect

    import augrobust.evaluation

    assert inspect.isfunction(augrobust.evaluate) and augrobust.evaluate is augrobust.evaluation.evaluate
    assert "evaluate" in augrobust.__all__ and "CorruptionReport" in augrobust.__all__


def test_tiny_imagenet_c_spec_reads_64_px_trees_with_their_preset(tmp_path):
    root = _imagenet_c_tree(tmp_path / "tinc", sevs=(1,), size=(64, 64))
    bench = from_spec(f"tinyimagenet-c:{root}", train=False, benchmarks=True)
    r = augrobust.evaluate(MeanColour(), bench, corruptions=["fog"], severities=(1,), device="cpu", progress=False)
    assert r.metadata["preset"] == "tinyimagenet" and r.num_images == 6 and r.baseline is None
    assert tuple(bench.dataset("fog", 1)[0][0].shape) == (3, 64, 64)


def test_float_images_out_of_range_or_not_finite_are_an_error_not_a_number():
    # A 0..255 float dataset (or a normalised one) would silently saturate under the corruptions and the
    # model: evaluation refuses it, naming the fix, unless check_values=False.
    import augrobust
    from augrobust.errors import AugrobustValueError

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    images = torch.rand(4, 3, 8, 8)
    for bad, match in ((images * 255, "divide it by 255"), (images.clone().index_fill_(0, torch.tensor([1]), float("nan")), "NaN")):
        data = torch.utils.data.TensorDataset(bad, torch.tensor([0, 1, 2, 3]))
        with pytest.raises(AugrobustValueError, match=match):
            augrobust.evaluate(model, data, corruptions=["contrast"], severities=(1,), device="cpu", progress=False,
                               preset="cifar", reference="hendrycks", baseline="none")  # fmt: skip
    data = torch.utils.data.TensorDataset(images * 255, torch.tensor([0, 1, 2, 3]))
    report = augrobust.evaluate(model, data, corruptions=["contrast"], severities=(1,), device="cpu", progress=False,
                                preset="cifar", reference="hendrycks", baseline="none", check_values=False)  # fmt: skip
    assert report.num_images == 4


def test_a_missing_corruption_names_the_layout_of_the_files_it_looked_for(tmp_path):
    import numpy as np

    import augrobust
    from augrobust.data import CIFARC
    from augrobust.errors import AugrobustError

    np.save(tmp_path / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    np.save(tmp_path / "labels.npy", np.arange(2))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 4))
    with pytest.raises(AugrobustError, match=r"\['frost'\].*expected <corruption>\.npy"):
        augrobust.evaluate(model, CIFARC(tmp_path), corruptions=["frost"], device="cpu", progress=False)
