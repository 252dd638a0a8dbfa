"""benchmarks/cuda.sh, the prepared GPU run, works end to end on the CPU with ``--device cpu --quick``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_cuda_script_quick_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "cuda.json"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "cuda.sh"), "--device", "cpu", "--quick", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True and set(report) >= {"bench", "damp", "generate", "bench_markdown"}
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
