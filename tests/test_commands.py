"""The README's commands run end to end on small inputs: ``augrobust demo``, ``preview`` and ``bench``.

Every registered transform must build and run at the demo's image size (shape-dependent arguments such as
DFM-X's maps and the L2 budgets adapt to it), the preview has one row per corruption and one column per
severity, and the benchmark writes one row per case it timed. (The error style, the help texts and the
other commands' checks are in ``test_cli.py``.)
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


def test_preview_has_a_row_per_corruption_and_a_column_per_severity(tmp_path, capsys):
    out = tmp_path / "sub" / "preview.png"  # the folder is created
    argv = ["preview", "--corruptions", "contrast,fog", "--severities", "1,5", "--size", "32", "--out", str(out)]
    assert main(argv) == 0
    label_height = 18  # render_grid's label strip above each tile
    assert Image.open(out).size == (3 * 32, 2 * (32 + label_height))  # clean + 2 severities, 2 corruptions
    assert "2 corruptions x 2 severities" in capsys.readouterr().out


def test_bench_writes_the_rows_it_timed(tmp_path, capsys):
    out = tmp_path / "bench.json"
    cases = "FourierNoise(mean_strength=10),DFMX(p=1),AdversarialNoise(3x3 generator)"
    argv = ["bench", "--sizes", "32", "--only", cases, "--corruptions", "gaussian_noise", "--min-run-time", "0.01"]
    assert main([*argv, "--out", str(out), "--markdown", str(tmp_path / "bench.md")]) == 0
    err = capsys.readouterr().err
    assert "bench: 100%" in err and "6/6" in err  # the progress bar, as lines (stderr is not a terminal)
    assert "| DFMX(p=1) |" in (tmp_path / "bench.md").read_text()
    rows = json.loads(out.read_text())["results"]
    assert {(r["group"], r["impl"]) for r in rows} >= {
        ("FourierNoise(mean_strength=10)", "augrobust"),
        ("DFMX(p=1)", "torch floor"),
        ("AdversarialNoise(3x3 generator)", "augrobust"),
    }
    assert all(r["median_ms_per_image"] > 0 for r in rows)
