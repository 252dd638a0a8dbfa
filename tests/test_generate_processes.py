"""``generate`` in real processes: SIGKILL at several moments then rerun equals an uninterrupted run byte for
byte, and a 2-process torchrun (gloo) run equals a 1-process run."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.processes import run_and_kill_when

_SCRIPT = textwrap.dedent(
    """
    import sys
    from augrobust.data.generate import generate_dataset

    fmt, out = sys.argv[1], sys.argv[2]
    corruptions = ["gaussian_noise", "glass_blur", "contrast"] if fmt == "cifar-c" else ["gaussian_noise", "snow"]
    result = generate_dataset("synthetic:10", out, format=fmt, corruptions=corruptions, num_images=24,
                              block_images=2, batch_size=3, progress=False)
    print(result.summary())
    """
)


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _finished_units(out: Path) -> int:
    state = out / ".generate"
    try:
        return sum(1 for p in state.rglob("*") if p.is_file() and not p.name.endswith(".tmp")) if state.is_dir() else 0
    except FileNotFoundError:  # the finishing process removed the state folder during the scan: every unit is done
        return 1 << 30


def _check_no_partial_file(out: Path) -> None:
    """Every file under a final name is whole: .npy files load, JPEGs decode completely."""
    for p in out.rglob("*"):
        if not p.is_file() or p.name.endswith(".tmp"):
            continue
        if p.suffix == ".npy":
            np.load(p)
        elif p.suffix == ".JPEG":
            with Image.open(p) as im:
                im.load()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["cifar-c", "imagenet-c"])
def test_sigkill_at_several_moments_then_rerun_equals_uninterrupted(tmp_path: Path, fmt: str) -> None:
    script = tmp_path / "gen.py"
    script.write_text(_SCRIPT)
    ref = tmp_path / "ref"
    done = subprocess.run([sys.executable, str(script), fmt, str(ref)], capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    kills = 0
    # Kill when 0 (still importing / planning), 3, 10 and 25 state files exist, and when all of them exist (run.json,
    # 12 block records and every unit: the final assembly and manifest are then under way), each time on the rerun.
    every = 1 + 12 + (3 if fmt == "cifar-c" else 2) * 5 * 12
    for threshold in (0, 3, 10, 25, every):
        argv = [sys.executable, str(script), fmt, str(out)]
        kills += run_and_kill_when(argv, _env(), lambda: _finished_units(out), threshold)
        _check_no_partial_file(out)  # a kill after the manifest was written (during the clean-up) is allowed
    assert kills >= 3  # the kills really interrupted runs
    final = subprocess.run([sys.executable, str(script), fmt, str(out)], capture_output=True, text=True, env=_env())
    assert final.returncode == 0, final.stderr
    assert "complete" in final.stdout
    assert _tree(out) == _tree(ref)  # killed writers' temporary files included: none is left


_DDP_SCRIPT = textwrap.dedent(
    """
    import sys
    from augrobust.data.generate import generate_dataset

    result = generate_dataset("synthetic:10", sys.argv[1], format="imagenet-c", corruptions=["gaussian_noise", "fog"],
                              severities=(1, 4), num_images=9, block_images=2, progress=False)
    # One write per line: the two ranks share the pipe and finish together (print's pieces can interleave).
    sys.stdout.write(f"RESULT {result.shard} {result.images} {result.complete}\\n")
    """
)


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_process(tmp_path: Path) -> None:
    script = tmp_path / "gen.py"
    script.write_text(_DDP_SCRIPT)
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], capture_output=True, text=True,
                         env=_env(), timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path / "two")]  # fmt: skip
    two = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    lines = sorted(line for line in two.stdout.splitlines() if line.startswith("RESULT"))
    # Blocks 0, 2, 4 (5 images) on rank 0 and 1, 3 (4 images) on rank 1, 2 corruptions x 2 severities each.
    assert lines == ["RESULT (0, 2) 20 True", "RESULT (1, 2) 16 True"], two.stdout
    assert _tree(tmp_path / "two") == _tree(tmp_path / "one")
    assert len(_tree(tmp_path / "one")) == 9 * 4 + 1


@pytest.mark.slow
def test_cli_under_torchrun_equals_the_cli_in_one_process(tmp_path: Path) -> None:
    args = ["generate", "--data", "synthetic:10", "--format", "cifar-c", "--corruptions", "impulse_noise,frost",
            "--num-images", "7", "--block-images", "2", "--quiet", "--out"]  # fmt: skip
    one = subprocess.run([sys.executable, "-m", "augrobust.cli", *args, str(tmp_path / "one")], capture_output=True,
                         text=True, env=_env(), timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "augrobust.cli",
           *args, str(tmp_path / "two")]  # fmt: skip
    two = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    assert two.stdout.count("(shard 0/2)") == 1 and two.stdout.count("(shard 1/2)") == 1, two.stdout
    assert "generated 40 images" in two.stdout and "generated 30 images" in two.stdout  # 4 + 3 images x 10 units
    assert _tree(tmp_path / "two") == _tree(tmp_path / "one")
    assert sorted(_tree(tmp_path / "one")) == ["frost.npy", "impulse_noise.npy", "labels.npy", "manifest.json"]
