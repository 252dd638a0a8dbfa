"""The README's commands run end to end on small inputs: ``augrobust demo`` and ``augrobust bench``.

Every registered transform must build and run at the demo's image size (shape-dependent arguments such as
DFM-X's maps and the L2 budgets adapt to it), and the benchmark writes one row per case it timed.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from augrobust.cli import main
from augrobust.transforms.registry import transform_registry


@pytest.mark.slow
@pytest.mark.parametrize("size", [48, 96])
def test_demo_renders_every_registered_transform(tmp_path, size, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--size", str(size), "--batch", "2", "--out", str(out)]) == 0
    grid = Image.open(out)
    tiles = len(transform_registry()) + 1  # + the original
    columns = 6  # the demo's default grid width
    assert grid.size[0] >= size * min(tiles, columns) and grid.size[1] >= size * (tiles // columns)
    printed = capsys.readouterr().out
    assert "DFMX" in printed and "AdversarialNoise[eps=" in printed and "GaussianNoise[eps=" in printed


def test_bench_writes_the_rows_it_timed(tmp_path):
    out = tmp_path / "bench.json"
    cases = "FourierNoise(mean_strength=10),DFMX(p=1),AdversarialNoise(3x3 generator)"
    argv = ["bench", "--sizes", "32", "--only", cases, "--corruptions", "gaussian_noise", "--min-run-time", "0.01"]
    assert main([*argv, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert {(r["group"], r["impl"]) for r in rows} >= {
        ("FourierNoise(mean_strength=10)", "augrobust"),
        ("DFMX(p=1)", "torch floor"),
        ("AdversarialNoise(3x3 generator)", "augrobust"),
    }
    assert all(r["median_ms_per_image"] > 0 for r in rows)
