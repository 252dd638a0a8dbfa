"""``augrobust bench --images`` and ``--severities``, the benchmark batch, and ``benchmarks/memory.py``.

* The options parse (``all``, the ``--severity N`` alias), bad values end with argparse's usage error (exit 2)
  and a missing scikit-image with the one-line ``augrobust bench: error: ...`` before anything is timed.
* A quick run on scikit-image's photographs at two severities writes one row per implementation and severity,
  names the image source in the metadata and in the Markdown headings, and has the per-severity table.
* The batch is float32 in [0, 1] on every source (the built-in image used to be a uint8 tensor cast to float,
  so the bench timed [0, 255] inputs), and the reference loop receives exactly the same images as uint8 HWC.
* ``benchmarks/memory.py --quick`` measures its calibration row (``x.clone()``) at 1x the batch and positive
  peaks for ``RandomCorruption("all")``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import augrobust
from augrobust.benchmark import suite
from augrobust.cli import build_parser, main
from augrobust.commands import bench

ROOT = Path(augrobust.__file__).resolve().parent.parent


def _bench(*argv: str):
    return build_parser().parse_args(["bench", *argv])


def test_the_options_parse_with_their_defaults_and_aliases():
    args = _bench()
    assert args.severities == [3] and args.images == "builtin"  # today's behaviour
    assert _bench("--severities", "1,5").severities == [1, 5]
    assert _bench("--severities", "all").severities == [1, 2, 3, 4, 5]
    assert _bench("--severity", "4").severities == [4]  # the older spelling
    assert _bench("--images", "skimage").images == "skimage"
    assert bench.IMAGE_SOURCES == suite.IMAGE_SOURCES  # the parser's literal list mirrors the suite's


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--severities", "0"], "argument --severities: expected distinct comma-separated severities in 1..5"),
        (["--severities", "1,1"], "argument --severities"),
        (["--severity", "0"], "argument --severity: expected one severity in 1..5, got '0'"),
        (["--severity", "2", "--severities", "1"], "not allowed with argument"),
        (["--images", "imagenet"], "argument --images: invalid choice: 'imagenet'"),
    ],
)
def test_bad_values_are_usage_errors(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("augrobust bench: error: ")
    assert fragment in err


def test_missing_scikit_image_is_one_line_naming_the_extra_before_any_timing(tmp_path, monkeypatch, capsys):
    def forbidden(*args, **kwargs):
        raise AssertionError("the timing started before the image source was checked")

    monkeypatch.setattr(suite, "run_suite", forbidden)
    monkeypatch.setitem(sys.modules, "skimage", None)  # importing it now raises ImportError
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    out = tmp_path / "b.json"
    assert main(["bench", "--images", "skimage", "--quick", "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("augrobust bench: error: "), lines
    assert "scikit-image" in lines[0] and "augrobust[dev]" in lines[0]
    assert not out.exists()


def test_a_quick_run_on_photographs_at_two_severities(tmp_path, capsys):
    out, md = tmp_path / "b.json", tmp_path / "b.md"
    argv = ["bench", "--quick", "--images", "skimage", "--severities", "1,5", "--corruptions", "pixelate,contrast",
            "--only", "corrupt:pixelate,corrupt:contrast", "--out", str(out), "--markdown", str(md), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["metadata"]["images"] == "skimage"
    assert report["metadata"]["image_names"] == list(suite.SKIMAGE_PHOTOS)
    assert report["metadata"]["severities"] == [1, 5]
    rows = {(r["group"], r["impl"], r["severity"], r["shape"][-1]) for r in report["results"]}
    for name in ("pixelate", "contrast"):
        for size in (32, 224):
            for impl in ("augrobust", "imagecorruptions"):
                assert {(f"corrupt:{name}", impl, s, size) for s in (1, 5)} <= rows
            assert (f"corrupt:{name}", "torch floor", None, size) in rows  # the floor once, not per severity
    assert len(report["results"]) == 2 * 2 * 5  # 2 sizes x 2 corruptions x (2 severities x 2 impls + floor)
    assert all(r["median_ms_per_image"] > 0 for r in report["results"])
    table = md.read_text()
    assert "images: skimage, corruptions at severities 1,5" in table
    assert "| corrupt:pixelate@1 |" in table and "| corrupt:contrast@5 |" in table
    assert "| corruption | 1 | 5 | min |" in table
    per_severity = [line for line in table.splitlines() if line.startswith("| pixelate | ")]
    assert len(per_severity) == 2  # one per size
    for line in per_severity:
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4 and all(c.endswith("x") and float(c[:-1]) > 0 for c in cells[1:])  # 1, 5, min
        assert float(cells[3][:-1]) == min(float(c[:-1]) for c in cells[1:3])
    assert "astronaut, coffee" in table


def test_one_severity_keeps_the_old_row_labels():
    report = suite.run_suite(
        suite.default_cases(["contrast"], 2)[-3:], shapes=[(2, 3, 32, 32)], min_run_time=0.001
    )  # the contrast rows: augrobust and the reference at severity 2, the floor
    assert {(r["impl"], r["severity"]) for r in report["results"]} == {
        ("augrobust", 2), ("imagecorruptions", 2), ("torch floor", None)
    }  # fmt: skip
    table = suite.markdown_table(report)
    assert "| corrupt:contrast |" in table and "@2" not in table and "severity 2" in table
    assert "images: builtin" in table


@pytest.mark.parametrize("images", ["builtin", "skimage"])
def test_the_batch_is_in_the_unit_range_on_a_255_grid(images):
    x = suite.photo_batch((16, 3, 32, 32), "cpu", images)
    assert x.dtype == torch.float32 and x.shape == (16, 3, 32, 32)
    assert x.min() >= 0 and x.max() <= 1
    assert torch.equal((x * 255).round() / 255, x)  # uint8 values: the reference's copy is the same image
    assert 0.1 < x.mean() < 0.9 and (x == 1).float().mean() < 0.2  # real images, not saturated
    assert len({img.numpy().tobytes() for img in x}) >= 8


def test_the_photographs_cycle_and_the_second_half_is_flipped():
    x = suite.photo_batch((16, 3, 48, 48), "cpu", "skimage")
    n = len(suite.SKIMAGE_PHOTOS)
    assert len({x[i].numpy().tobytes() for i in range(n)}) == n  # 8 different photographs
    for i in range(n):
        assert torch.equal(x[n + i], x[i].flip(-1))
    y = suite.photo_batch((20, 3, 48, 48), "cpu", "skimage")
    assert torch.equal(y[8], x[0]) and torch.equal(y[10], x[2].flip(-1))  # image 8: the 1st again; 10..: flipped


def test_the_reference_loop_gets_the_same_images_as_uint8_hwc(monkeypatch):
    from augrobust.benchmark.reference import load_imagecorruptions

    ic = load_imagecorruptions()
    seen = []
    monkeypatch.setattr(ic, "corrupt", lambda image, severity, corruption_name: seen.append((image, severity)))
    (ref,) = [c for c in suite.default_cases(["contrast"], [4]) if c.impl == "imagecorruptions"]
    x = suite.photo_batch((3, 3, 32, 32), "cpu", "skimage")
    ref.make(x)()
    assert [s for _, s in seen] == [4, 4, 4]
    for image, expected in zip([i for i, _ in seen], x):
        assert image.dtype == np.uint8 and image.shape == (32, 32, 3)
        np.testing.assert_array_equal(image.astype(np.float32) / 255, expected.permute(1, 2, 0).numpy())


@pytest.mark.slow
def test_memory_script_quick_reports_positive_peaks(tmp_path):
    out = tmp_path / "memory.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--quick", "--cases", "RandomCorruption(all)",
         "--threads", "1", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {r["case"]: r for r in report["rows"]}
    assert list(rows) == ["x.clone() (calibration)", "RandomCorruption(all)"]
    assert all(r["exact"] for r in rows.values())  # the peak mark could be reset: per-call peaks
    assert 0.8 < rows["x.clone() (calibration)"]["x_batch"] < 1.25  # one batch measures as one batch
    corrupted = rows["RandomCorruption(all)"]
    assert corrupted["peak_extra_mb"] > 0 and corrupted["first_call_mb"] > 0
    assert corrupted["x_batch"] >= 0.8  # it returns a fresh batch: at least its output (less the RSS slack)
    assert "| RandomCorruption(all) |" in done.stdout and "x batch" in done.stdout
