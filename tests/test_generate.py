"""``augrobust generate`` / ``generate_dataset``: layouts, canonical draws, shards, verification, bad sources.

The resumption under SIGKILL and the torchrun run are in tests/test_generate_processes.py; the fidelity of the
ImageNet-C path against the reference pipeline in tests/test_generate_fidelity.py.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import augrobust
from augrobust.commands.generate import FORMATS as CLI_FORMATS
from augrobust.data import CorruptedNpyDataset, from_spec
from augrobust.data.canonical import canonical_generator, canonical_seed
from augrobust.data.generate import FORMATS, generate_dataset, parse_shard
from augrobust.data.manifest import verify_manifest
from augrobust.errors import AugrobustValueError

ALL = tuple(augrobust.get_corruption_names("all"))


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` -> its SHA-256 (hidden state included: a finished output has none)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_cli_formats_equal_library_formats() -> None:
    assert CLI_FORMATS == FORMATS


def test_canonical_seed_rule_is_the_documented_sha256() -> None:
    text = "augrobust-generate/v1|7|cls/a.JPEG|snow|2"
    expected = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & (2**63 - 1)
    assert canonical_seed(7, "cls/a.JPEG", "snow", 2) == expected
    assert canonical_seed(7, "cls/a.JPEG", "snow", 3) != expected
    with pytest.raises(AugrobustValueError, match="'|'"):
        canonical_seed(0, "a|b", "snow", 1)


@pytest.mark.parametrize("name", ALL)
def test_stacked_per_image_params_equal_per_image_calls(name: str) -> None:
    """Every corruption's params stack along dim 0, and the batched apply equals one call per image."""
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8).double() / 255
    keys = ["a", "b", "c"]
    per = [
        augrobust.sample_corruption_params(
            name, (1, 3, 32, 32), 3, preset="cifar", reference="hendrycks", generator=canonical_generator(0, k, name, 3)
        )
        for k in keys
    ]
    stacked = {k: torch.cat([p[k] for p in per]) for k in per[0]}
    for k, v in stacked.items():
        assert v.shape[0] == 3, (name, k, v.shape)
    batched = augrobust.corrupt(x, name, 3, preset="cifar", reference="hendrycks", params=stacked)
    for i in range(3):
        one = augrobust.corrupt(x[i : i + 1], name, 3, preset="cifar", reference="hendrycks", params=per[i])
        assert torch.equal(batched[i : i + 1], one), name


def test_cifar_c_layout_values_and_reader(tmp_path: Path) -> None:
    out = tmp_path / "c"
    names = ["gaussian_noise", "contrast", "glass_blur"]
    result = generate_dataset("synthetic:40", out, format="cifar-c", corruptions=names, progress=False, block_images=3)
    assert result.complete and result.images == 8 * 3 * 5
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f"{n}.npy" for n in names), "labels.npy",
                                                            "manifest.json"])  # fmt: skip
    source = from_spec("synthetic:40", train=False)
    labels = np.load(out / "labels.npy")
    assert labels.dtype == np.uint8 and labels.tolist() == [int(source[i][1]) for i in range(8)] * 5
    for name in names:
        arr = np.load(out / f"{name}.npy")
        assert arr.shape == (40, 32, 32, 3) and arr.dtype == np.uint8
        for severity in (1, 5):
            for i in (0, 7):
                # One image, corrupted on its own with its canonical draw, in float64, floored.
                x = source[i][0].unsqueeze(0).double() / 255
                y = augrobust.corrupt(
                    x, name, severity, preset="cifar", reference="hendrycks",
                    generator=canonical_generator(0, f"test/{i:06d}", name, severity),
                )  # fmt: skip
                expected = (y * 255).floor().to(torch.uint8)[0].permute(1, 2, 0).numpy()
                np.testing.assert_array_equal(arr[(severity - 1) * 8 + i], expected)
        ds = CorruptedNpyDataset(out, name, 2)
        assert len(ds) == 8 and torch.equal(ds[3][0], torch.from_numpy(arr[8 + 3]).permute(2, 0, 1))
    assert verify_manifest(out) == []


def test_bytes_do_not_depend_on_batch_size_or_workers(tmp_path: Path) -> None:
    names = ["gaussian_noise", "glass_blur", "motion_blur", "frost", "pixelate"]
    kw = dict(format="imagenet-c", corruptions=names, severities=(2,), progress=False, num_images=5)
    generate_dataset("synthetic:10", tmp_path / "a", batch_size=1, workers=0, **kw)
    generate_dataset("synthetic:10", tmp_path / "b", batch_size=4, workers=2, block_images=2, **kw)
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    manifest_a, manifest_b = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in "ab")
    assert manifest_a["files"] == manifest_b["files"] and len(manifest_a["files"]) == 5 * 5
    assert {k: v for k, v in a.items() if k != "manifest.json"} == {k: v for k, v in b.items() if k != "manifest.json"}
    # A different dataset seed changes the random corruptions and only them.
    generate_dataset("synthetic:10", tmp_path / "c", seed=1, **kw)
    c = tree(tmp_path / "c")
    assert all(a[k] != c[k] for k in a if k.startswith(("gaussian_noise", "glass_blur")))
    assert all(a[k] == c[k] for k in a if k.startswith("pixelate"))


def test_imagenet_c_tree_keeps_source_names(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for cls, name, size in (("n01", "ILSVRC2012_val_00000001.JPEG", (300, 240)), ("n02", "x.png", (256, 400))):
        (src / cls).mkdir(parents=True)
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)).save(src / cls / name)
    out = tmp_path / "out"
    generate_dataset(f"folder:{src}", out, format="imagenet-c", corruptions=["contrast"], severities=(1, 3),
                     progress=False)  # fmt: skip
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.JPEG"))
    assert files == [f"contrast/{s}/{f}" for s in (1, 3) for f in ("n01/ILSVRC2012_val_00000001.JPEG", "n02/x.JPEG")]
    with Image.open(out / files[0]) as im:
        assert im.format == "JPEG" and im.size == (224, 224)
    tiny = tmp_path / "tiny"
    generate_dataset(f"folder:{src}", tiny, format="tinyimagenet-c", corruptions=["contrast"], severities=(1,),
                     progress=False)  # fmt: skip
    with Image.open(tiny / "contrast/1/n02/x.JPEG") as im:
        assert im.size == (64, 64)
    assert json.loads((tiny / "manifest.json").read_text())["arguments"]["preset"] == "tinyimagenet"


def test_shards_together_equal_the_whole(tmp_path: Path) -> None:
    kw = dict(format="cifar-c", corruptions=["shot_noise", "fog"], progress=False, num_images=11, block_images=3)
    whole = generate_dataset("synthetic:10", tmp_path / "whole", **kw)
    first = generate_dataset("synthetic:10", tmp_path / "sharded", shard="0/2", **kw)
    assert not first.complete and first.pending_units == 2 * 5 * 2 + 2  # blocks 1 and 3: units and records
    assert not (tmp_path / "sharded" / "manifest.json").exists()
    second = generate_dataset("synthetic:10", tmp_path / "sharded", shard=(1, 2), **kw)
    assert second.complete and whole.complete
    assert first.images + second.images == whole.images == 11 * 2 * 5
    assert tree(tmp_path / "sharded") == tree(tmp_path / "whole")


def test_rerun_of_a_finished_output_does_nothing_and_other_arguments_are_refused(tmp_path: Path) -> None:
    kw = dict(format="cifar-c", corruptions=["contrast"], progress=False, num_images=4)
    generate_dataset("synthetic:10", tmp_path, **kw)
    before = tree(tmp_path)
    again = generate_dataset("synthetic:10", tmp_path, **kw)
    assert again.complete and again.images == 0 and tree(tmp_path) == before
    with pytest.raises(AugrobustValueError, match="other arguments"):
        generate_dataset("synthetic:10", tmp_path, seed=3, **kw)


def test_bad_arguments_are_clear() -> None:
    with pytest.raises(AugrobustValueError, match="stacks severities"):
        generate_dataset("synthetic:10", "/tmp/unused-x", format="cifar-c", severities=(1, 2))
    with pytest.raises(AugrobustValueError, match="format"):
        generate_dataset("synthetic:10", "/tmp/unused-x", format="imagenet-q")
    with pytest.raises(AugrobustValueError, match="unknown"):
        generate_dataset("synthetic:10", "/tmp/unused-x", format="cifar-c", corruptions=["fogg"])
    with pytest.raises(AugrobustValueError, match="I/N"):
        parse_shard("2/2")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "augrobust.cli", *args], capture_output=True, text=True, timeout=300)


def test_verify_catches_a_flipped_byte(tmp_path: Path) -> None:
    for fmt in ("cifar-c", "imagenet-c"):
        out = tmp_path / fmt
        generate_dataset("synthetic:10", out, format=fmt, corruptions=["gaussian_noise"], progress=False, num_images=3)
        ok = _cli("generate", "--verify", str(out))
        assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
        victim = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")[-1]
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
        bad = _cli("generate", "--verify", str(out))
        assert bad.returncode == 1
        assert f"FAIL {victim.relative_to(out).as_posix()}: SHA-256 mismatch" in bad.stdout


def test_corrupt_source_image_is_reported_by_path(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "cat").mkdir(parents=True)
    Image.new("RGB", (64, 48), (10, 200, 30)).save(src / "cat" / "good.JPEG")
    broken = src / "cat" / "broken.JPEG"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    args = ["generate", "--data", f"folder:{src}", "--format", "imagenet-c", "--out", str(out), "--corruptions",
            "contrast", "--severities", "1", "--quiet"]  # fmt: skip
    proc = _cli(*args)
    assert proc.returncode == 2 and str(broken) in proc.stderr, proc.stderr
    assert (out / "contrast/1/cat/good.JPEG").is_file() and not (out / "contrast/1/cat/broken.JPEG").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [b["path"] for b in manifest["bad_sources"]] == [str(broken)]
    assert list(manifest["files"]) == ["contrast/1/cat/good.JPEG"]
    accepted = _cli(*args, "--skip-bad")
    assert accepted.returncode == 0 and "1 bad source images" in accepted.stdout, accepted.stderr


@pytest.mark.slow
def test_all_corruptions_on_real_photos_do_not_depend_on_batch_size(tmp_path: Path) -> None:
    """All 19 corruptions at 224 px, float64: one image per call, four per call, and a sub-batch write the same."""
    import skimage.data

    src = tmp_path / "src"
    (src / "c").mkdir(parents=True)
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(skimage.data, name)()).save(src / "c" / f"{name}.png")
    kw = dict(format="imagenet-c", corruptions="all", severities=(3,), progress=False)
    one = generate_dataset(f"folder:{src}", tmp_path / "one", batch_size=1, **kw)
    four = generate_dataset(f"folder:{src}", tmp_path / "four", batch_size=4, **kw)
    pair = generate_dataset(f"folder:{src}", tmp_path / "pair", batch_size=3, block_images=2, **kw)
    assert one.images == four.images == pair.images == 4 * 19
    files = {d: json.loads((tmp_path / d / "manifest.json").read_text())["files"] for d in ("one", "four", "pair")}
    assert len(files["one"]) == 4 * 19 and files["one"] == files["four"] == files["pair"]


def test_a_generated_imagenet_c_tree_reads_back_with_the_evaluation_reader(tmp_path: Path) -> None:
    # What `augrobust generate` writes is what `augrobust eval --data imagenet-c:DIR` reads: the same images
    # (decoded JPEG pixels), the same classes in the same order, every corruption and severity.
    from augrobust.data import ImageNetC

    src = tmp_path / "src"
    rng = np.random.default_rng(1)
    for cls in ("n01", "n02", "n03"):
        (src / cls).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(rng.integers(0, 256, (260, 300, 3), dtype=np.uint8)).save(src / cls / f"{cls}_{k}.JPEG")
    out = tmp_path / "c"
    generate_dataset(f"folder:{src}", out, format="imagenet-c", corruptions=["contrast", "gaussian_noise"],
                     severities=(1, 4), progress=False)  # fmt: skip
    bench = ImageNetC(out)
    assert bench.corruptions() == ["gaussian_noise", "contrast"]  # in the benchmark's order
    for corruption in ("contrast", "gaussian_noise"):
        for severity in (1, 4):
            ds = bench.dataset(corruption, severity, num_classes=3)
            assert len(ds) == 6
            files = sorted((out / corruption / str(severity)).rglob("*.JPEG"))
            for i, path in enumerate(files):
                image, label = ds[i]
                with Image.open(path) as im:
                    want = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
                assert torch.equal(torch.as_tensor(image), want)
                assert label == ["n01", "n02", "n03"].index(path.parent.name)
