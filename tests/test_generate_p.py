"""``augrobust generate --format cifar-p|imagenet-p|tinyimagenet-p``: the layouts, canonical frames, shards,
manifest verification, SIGKILL-then-rerun in real processes, MP4 round trip, and evaluation from the generated
files equal to evaluation on the fly."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from augrobust.cli import main as cli_main
from augrobust.data import from_spec
from augrobust.data.generate import generate_dataset
from augrobust.data.perturbation_files import encode_mp4, read_cifar_p, read_mp4, require_av, set_name, split_set_name
from augrobust.errors import AugrobustValueError
from augrobust.perturbation_eval import evaluate_perturbation_files, evaluate_perturbations
from augrobust.perturbations import frame_count, perturb, perturbation_generators
from tests.processes import run_and_kill_when


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _source(n: int) -> torch.Tensor:
    data = from_spec("synthetic:10", train=False, num_images=n)
    return torch.stack([data[i][0] for i in range(n)])


def test_set_names_follow_the_scripts_folders() -> None:
    names = [set_name("gaussian_noise", d) for d in (1, 2, 3)]
    assert names == ["gaussian_noise", "gaussian_noise_2", "gaussian_noise_3"]
    assert set_name("rotate", 3) == "rotate"
    assert split_set_name("speckle_noise_2") == ("speckle_noise", 2)
    assert split_set_name("rotate") == ("rotate", 1)


def test_cifar_p_layout_and_frames_equal_the_canonical_sequences(tmp_path: Path) -> None:
    names = ["gaussian_noise", "translate", "brightness"]
    r = generate_dataset("synthetic:10", tmp_path, format="cifar-p", perturbations=names, difficulties=(1, 3),
                         num_images=5, block_images=2, batch_size=3, progress=False)  # fmt: skip
    assert r.complete and r.images == 5 * 4  # gaussian_noise at 1 and 3, translate and brightness once
    expected = ["brightness.npy", "gaussian_noise.npy", "gaussian_noise_3.npy", "labels.npy", "manifest.json",
                "translate.npy"]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    x = _source(5)
    for name, d in [("gaussian_noise", 1), ("gaussian_noise", 3), ("translate", 1), ("brightness", 1)]:
        arr = np.load(tmp_path / f"{set_name(name, d)}.npy")
        assert arr.shape == (5, frame_count(name, "cifar"), 32, 32, 3) and arr.dtype == np.uint8
        gens = perturbation_generators(name, d, range(5), seed=0)
        want = perturb(x, name, d, variant="cifar", generator=gens).permute(0, 1, 3, 4, 2).numpy()
        np.testing.assert_array_equal(arr, want)
    labels = np.load(tmp_path / "labels.npy")
    assert labels.tolist() == [int(from_spec("synthetic:10", train=False, num_images=5)[i][1]) for i in range(5)]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["arguments"]["generator_device"] == "cpu" and "perturbation_seed" in manifest["seed_rule"]
    # a rerun of a finished output does nothing and changes nothing
    before = _tree(tmp_path)
    again = generate_dataset("synthetic:10", tmp_path, format="cifar-p", perturbations=names, difficulties=(1, 3),
                             num_images=5, block_images=2, progress=False)  # fmt: skip
    assert again.images == 0 and _tree(tmp_path) == before


def test_cifar_p_bytes_do_not_depend_on_batch_size_and_shards_together_equal_the_whole(tmp_path: Path) -> None:
    kw = dict(format="cifar-p", perturbations=["shot_noise", "rotate"], difficulties=(2,), num_images=7,
              block_images=2, progress=False)  # fmt: skip
    generate_dataset("synthetic:10", tmp_path / "whole", batch_size=7, **kw)
    first = generate_dataset("synthetic:10", tmp_path / "sharded", shard="0/2", batch_size=1, **kw)
    assert not first.complete and first.pending_units > 0
    assert not (tmp_path / "sharded" / "manifest.json").exists()
    second = generate_dataset("synthetic:10", tmp_path / "sharded", shard=(1, 2), batch_size=2, **kw)
    assert second.complete
    assert _tree(tmp_path / "sharded") == _tree(tmp_path / "whole")
    assert sorted(_tree(tmp_path / "whole")) == ["labels.npy", "manifest.json", "rotate.npy", "shot_noise_2.npy"]


def test_verify_catches_a_flipped_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli_main(["generate", "--data", "synthetic:10", "--format", "cifar-p", "--perturbations",
                   "scale,speckle_noise", "--difficulties", "1", "--num-images", "3", "--quiet", "--out",
                   str(tmp_path)])  # fmt: skip
    assert rc == 0
    assert cli_main(["generate", "--verify", str(tmp_path)]) == 0
    path = tmp_path / "speckle_noise.npy"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert cli_main(["generate", "--verify", str(tmp_path)]) == 1
    assert "speckle_noise.npy: SHA-256 mismatch" in capsys.readouterr().out


def test_bad_p_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AugrobustValueError, match="unknown: \\['fog'\\]"):
        generate_dataset("synthetic:4", tmp_path, format="cifar-p", perturbations=["fog"], progress=False)
    with pytest.raises(AugrobustValueError, match="1..3"):
        generate_dataset("synthetic:4", tmp_path, format="cifar-p", perturbations="test", difficulties=(4,),
                         progress=False)  # fmt: skip
    with pytest.raises(SystemExit):
        cli_main(["generate", "--data", "synthetic:4", "--format", "cifar-q", "--out", str(tmp_path)])


def test_missing_pyav_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    with pytest.raises(AugrobustValueError, match=r"augrobust\[video\]"):
        require_av()
    with pytest.raises(AugrobustValueError, match=r"augrobust\[video\]"):
        generate_dataset("synthetic:4", tmp_path, format="imagenet-p", perturbations=["rotate"], progress=False)
    assert not (tmp_path / ".generate").exists()  # refused before any work


class _TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)
        self.fc = torch.nn.Linear(4 * 15 * 15, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_evaluation_from_generated_cifar_p_files_equals_evaluation_on_the_fly(tmp_path: Path) -> None:
    names = ["gaussian_noise", "shot_noise", "rotate", "translate", "brightness"]
    generate_dataset("synthetic:10", tmp_path, format="cifar-p", perturbations=names, num_images=6, block_images=4,
                     progress=False)  # fmt: skip
    model = _TinyNet().eval()
    data = from_spec("synthetic:10", train=False, num_images=6)
    fly = evaluate_perturbations(model, data, perturbations=names, variant="cifar", batch_size=4)
    files = evaluate_perturbation_files(model, tmp_path, perturbations=names, batch_size=4)
    assert json.dumps(files.to_dict(), sort_keys=True) == json.dumps(fly.to_dict(), sort_keys=True)
    # the comparison has teeth: the model's predictions do flip on these sequences
    assert any(v["fp"] > 0 for by_d in fly.results.values() for v in by_d.values())
    # default: every set present, in the paper's order, difficulties 1-3
    order = ["gaussian_noise", "shot_noise", "brightness", "translate", "rotate"]
    assert list(evaluate_perturbation_files(model, tmp_path).results) == order


def test_float_images_evaluate_as_their_uint8_images() -> None:
    # perturb() returns float frames (uint8 / 255) for float input: they must not be divided by 255 again
    x = _source(3)
    model = _TinyNet().eval()
    a = evaluate_perturbations(model, x, perturbations=["rotate", "gaussian_noise"], variant="cifar")
    b = evaluate_perturbations(model, x.float() / 255, perturbations=["rotate", "gaussian_noise"], variant="cifar")
    assert a.results == b.results


def test_evaluation_from_files_refuses_missing_sets(tmp_path: Path) -> None:
    generate_dataset("synthetic:10", tmp_path, format="cifar-p", perturbations=["gaussian_noise"],
                     difficulties=(1,), num_images=2, progress=False)  # fmt: skip
    model = _TinyNet()
    with pytest.raises(AugrobustValueError, match="gaussian_noise_2"):
        evaluate_perturbation_files(model, tmp_path, difficulties=(1, 2))
    with pytest.raises(AugrobustValueError, match="does not exist|lacks"):
        evaluate_perturbation_files(model, tmp_path, perturbations=["rotate"])
    with pytest.raises(AugrobustValueError, match="not a folder"):
        evaluate_perturbation_files(model, tmp_path / "nope")
    with pytest.raises(AugrobustValueError, match="does not exist"):
        read_cifar_p(tmp_path, "rotate")


def test_mp4_round_trip_and_deterministic_bytes() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1, 48, 64, 3), dtype=np.uint8).repeat(5, axis=0)
    frames = np.stack([np.roll(base[0], 2 * i, axis=1) for i in range(5)])
    data = encode_mp4(frames, noise=False)
    assert data == encode_mp4(frames, noise=False)  # resumption needs the same bytes for the same frames
    back = read_mp4(data)
    assert back.shape == (5, 48, 64, 3) and back.dtype == np.uint8
    # lossy H.264 (crf 20, yuv444p): close to the frames, far from other frames
    err = np.abs(back.astype(int) - frames.astype(int)).mean()
    assert err < 20, err
    assert np.abs(back[::-1].astype(int) - frames.astype(int)).mean() > 2 * err
    assert encode_mp4(frames, noise=True) != data  # -tune grain for the noise sequences


def test_imagenet_p_tree_is_written_and_decodes(tmp_path: Path) -> None:
    require_av()
    r = generate_dataset("synthetic:10", tmp_path, format="imagenet-p", perturbations=["gaussian_noise", "translate"],
                         difficulties=(1, 2), num_images=2, progress=False)  # fmt: skip
    assert r.complete
    videos = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mp4"))
    data = from_spec("synthetic:10", train=False, num_images=2)
    classes = [data.classes[int(data[i][1])] for i in range(2)]
    want = sorted(f"{s}/{classes[i]}/{i:06d}.mp4" for s in ("gaussian_noise", "gaussian_noise_2", "translate")
                  for i in range(2))  # fmt: skip
    assert videos == want
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert sorted(manifest["files"]) == want
    for rel in videos:
        frames = read_mp4(tmp_path / rel)
        assert frames.shape == (frame_count(rel.split("/")[0].removesuffix("_2"), "imagenet"), 224, 224, 3)
    # decoded frames are close to the canonical frames (H.264 is lossy)
    x = torch.stack([data[i][0] for i in range(2)])
    import torchvision.transforms.functional as TF

    big = torch.stack([TF.pil_to_tensor(TF.resize(TF.to_pil_image(x[i]), 256)) for i in range(2)])
    gens = perturbation_generators("translate", 1, [0, 1])
    want_frames = perturb(big, "translate", 1, variant="imagenet", generator=gens)
    got = read_mp4(tmp_path / f"translate/{classes[0]}/000000.mp4")
    assert np.abs(got.astype(int) - want_frames[0].permute(0, 2, 3, 1).numpy().astype(int)).mean() < 8
    model = _TinyNetIN()
    report = evaluate_perturbation_files(model, tmp_path, difficulties=(1, 2))
    assert report.variant == "imagenet" and report.results["translate"]["2"]["videos"] == 2


class _TinyNetIN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))


_SCRIPT = textwrap.dedent(
    """
    import sys
    from augrobust.data.generate import generate_dataset

    result = generate_dataset("synthetic:10", sys.argv[1], format="cifar-p", perturbations=["gaussian_noise",
                              "rotate", "spatter"], difficulties=(1, 2), num_images=20, block_images=2, batch_size=3,
                              progress=False)
    print(result.summary())
    """
)


def _state_files(out: Path) -> int:
    state = out / ".generate"
    try:
        return sum(1 for p in state.rglob("*") if p.is_file() and not p.name.endswith(".tmp")) if state.is_dir() else 0
    except FileNotFoundError:  # the finishing process removed the state folder during the scan: every unit is done
        return 1 << 30


@pytest.mark.slow
def test_cifar_p_sigkill_at_several_moments_then_rerun_equals_uninterrupted(tmp_path: Path) -> None:
    script = tmp_path / "gen.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref"
    done = subprocess.run([sys.executable, str(script), str(ref)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    every = 1 + 10 + 4 * 10  # run.json, 10 block records, 4 sets x 10 blocks
    kills = 0
    for threshold in (0, 4, 15, 30, every):
        kills += run_and_kill_when([sys.executable, str(script), str(out)], env, lambda: _state_files(out), threshold)
        for p in out.rglob("*.npy"):  # nothing partial under a final name
            if not p.name.endswith(".tmp"):
                np.load(p)
    assert kills >= 3
    final = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, env=env)
    assert final.returncode == 0, final.stderr
    assert "complete" in final.stdout
    assert _tree(out) == _tree(ref)


def test_tinyimagenet_p_videos_are_64_px(tmp_path: Path) -> None:
    require_av()
    generate_dataset("synthetic:10", tmp_path, format="tinyimagenet-p", perturbations=["rotate"], num_images=2,
                     progress=False)  # fmt: skip
    videos = sorted(tmp_path.rglob("*.mp4"))
    assert len(videos) == 2 and all(v.relative_to(tmp_path).parts[0] == "rotate" for v in videos)
    assert read_mp4(videos[0]).shape == (frame_count("rotate", "tinyimagenet"), 64, 64, 3)


_DDP_SCRIPT = textwrap.dedent(
    """
    import sys
    from augrobust.data.generate import generate_dataset

    r = generate_dataset("synthetic:10", sys.argv[1], format="cifar-p", perturbations=["gaussian_noise", "rotate"],
                         difficulties=(1, 2), num_images=5, block_images=2, progress=False)
    # one write of one line (atomic on a pipe): the two ranks share torchrun's stdout
    sys.stdout.write(f"RESULT {r.shard} {r.images} {r.complete}\\n")
    sys.stdout.flush()
    """
)


@pytest.mark.slow
def test_cifar_p_torchrun_two_processes_equal_one_process(tmp_path: Path) -> None:
    script = tmp_path / "gen.py"
    script.write_text(_DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], capture_output=True, text=True,
                         env=env, timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path / "two")]  # fmt: skip
    two = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    lines = sorted(line for line in two.stdout.splitlines() if line.startswith("RESULT"))
    # blocks 0, 2, 4 (3 images) on rank 0, blocks 1, 3 (2 images) on rank 1; 3 sets each
    assert lines == ["RESULT (0, 2) 9 True", "RESULT (1, 2) 6 True"], two.stdout
    assert _tree(tmp_path / "two") == _tree(tmp_path / "one")
