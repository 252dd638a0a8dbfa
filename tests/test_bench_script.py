"""benchmarks/cuda.sh, the prepared GPU run, works end to end on the CPU with ``--device cpu --quick``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


STAGES = ("bench", "damp", "sparse", "generate")


def _run_script(device: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "cuda.sh"), "--device", device, "--quick", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_cuda_script_quick_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "cuda.json"
    done = _run_script("cpu", out)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True and set(report) >= {*STAGES, "bench_markdown", "stage_seconds"}
    assert report["device"] == "cpu" and report["failed_stages"] == [], report["failed_stages"]
    assert set(report["stage_seconds"]) == set(STAGES)
    rows = report["bench"]["results"]
    assert {r["device"] for r in rows} == {"cpu"}
    groups = {(r["group"], r["impl"]) for r in rows}
    from augrobust.corruptions import registered_names

    for name in registered_names():  # every corruption, with its floor and the reference, at both sizes
        for impl in ("augrobust", "torch floor", "imagecorruptions"):
            assert (f"corrupt:{name}", impl) in groups, (name, impl)
    assert ("compiled:GaussianNoise", "augrobust") in groups and ("compiled:GaussianNoise", "eager") in groups
    assert {tuple(r["shape"])[-1] for r in rows} == {32, 224}
    assert "x of floor" in report["bench_markdown"]
    assert report["damp"]["device"] == "cpu" and report["damp"]["ratio"] > 0  # DAMP step / SGD step
    from augrobust.train.sparse import SPARSE_ALGORITHMS

    sparse = report["sparse"]  # DST step / dense SGD step, per algorithm
    assert sparse["device"] == "cpu" and set(sparse["algorithms"]) == set(SPARSE_ALGORITHMS)
    for name, cost in sparse["algorithms"].items():
        for key in ("step_ratio", "composed_ratio", "ratio_at_interval", "measured_ratio"):
            assert cost[key] > 0, (name, key, cost[key])
    generate = report["generate"]  # generate's throughput with the corruptions on the device, and the reference
    assert generate["device"] == "cpu" and generate["throughput"]["device"] == "cpu"
    for key in ("cifar_c_images_per_s", "cifar_c_source_images_per_s", "imagenet_c_float64_images_per_s"):
        assert generate["throughput"][key] > 0, (key, generate["throughput"])
    assert generate["imagenet_c"]["speedup_wall"] > 0 and generate["cifar_c_cpu_time"]["speedup_wall"] > 0


@pytest.mark.slow
def test_cuda_script_records_failed_stages_and_exits_1(tmp_path: Path) -> None:
    """A stage that fails does not stop the next ones (a lent GPU is not wasted); the report says which failed."""
    out = tmp_path / "cuda.json"
    done = _run_script("nosuchdevice", out)  # every stage rejects the device, each in its own way
    assert done.returncode == 1, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failed_stages"] == list(STAGES) and set(report["stage_seconds"]) == set(STAGES)
    for name in STAGES:
        assert report[name]["error"] == "exit status 1" and "nosuchdevice" in report[name]["output_tail"], name
