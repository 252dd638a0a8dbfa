"""Resumable, validated evaluation: a run killed by SIGKILL continues where it stopped and gives the byte-identical
report; a rerun with other arguments is refused; bad outputs, files and labels fail before any compute.

The kill tests run real processes (``python script.py``) that SIGKILL themselves at the k-th model call,
i.e. in the middle of a unit of work, as a scheduler or an OOM killer would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import augrobust
from augrobust.data import DatasetFileNotFoundError, SyntheticShapes
from augrobust.errors import AugrobustValueError
from augrobust.evaluation import STATE_NAME, evaluate_corruptions

CORRUPTIONS = ["gaussian_noise", "contrast"]  # a seeded random one and a deterministic one


class PixelHash(torch.nn.Module):
    """Class = floor(10^5 * mean of channel 0) mod 10: any change of the random draws changes predictions.
    Counts its calls, so tests can tell whether work was redone."""

    def __init__(self, shift: float = 0.0) -> None:
        super().__init__()
        self.shift = torch.nn.Parameter(torch.tensor(shift))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        cls = (x[:, 0].double().mean(dim=(1, 2)) * 1e5 + self.shift.double()).floor().remainder(10).long()
        return torch.nn.functional.one_hot(cls, 10).float()


_KW = dict(corruptions=CORRUPTIONS, severities=(1, 3, 5), batch_size=4, chunk_images=8, progress=False)

_SCRIPT = """
import json, os, signal, sys
import torch
from augrobust.data import SyntheticShapes
from augrobust.evaluation import evaluate_corruptions

out_dir, report_path, kill_at, kill_in_write = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
calls = 0
replaces = 0
real_replace = os.replace


def replace(src, dst):
    # The atomic writer's rename: killed at the kill_in_write-th one, the temporary is written, fsynced, not renamed.
    global replaces
    replaces += 1
    if replaces == kill_in_write:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)


os.replace = replace


class PixelHash(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        global calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-unit, between two batches
        cls = (x[:, 0].double().mean(dim=(1, 2)) * 1e5 + self.shift.double()).floor().remainder(10).long()
        return torch.nn.functional.one_hot(cls, 10).float()


kw = dict(corruptions=["gaussian_noise", "contrast"], severities=(1, 3, 5), batch_size=4, chunk_images=8,
          progress=False)
ds = SyntheticShapes(24, seed=1, train=False)
report = evaluate_corruptions(PixelHash(), ds, out_dir=None if out_dir == "-" else out_dir, **kw)
report.save_json(report_path)
if out_dir != "-":
    calls_with_state = calls
    calls = 0
    plain = evaluate_corruptions(PixelHash(), ds, **kw)  # the same evaluation, no state kept
    plain.save_json(report_path + ".plain")
    calls = calls_with_state
print(json.dumps({"calls": calls}))
"""


def _run(
    script: Path, out_dir: Path | str, report: Path, kill_at: int = 0, kill_in_write: int = 0
) -> subprocess.CompletedProcess[str]:
    root = str(Path(augrobust.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(script), str(out_dir), str(report), str(kill_at), str(kill_in_write)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def _state(out_dir: Path) -> dict:
    return json.loads((out_dir / STATE_NAME).read_text())


def test_sigkilled_evaluation_resumes_to_the_byte_identical_report(tmp_path):
    script = tmp_path / "evaluate_script.py"
    script.write_text(_SCRIPT)
    # 24 images in 3 chunks of 8 (2 batches of 4); per chunk 1 clean + 2 x 3 corrupted units: 21 units of
    # 2 model calls each, plus 1 call that reads the model's classes: 43 calls uninterrupted.
    full = _run(script, tmp_path / "full", tmp_path / "full.json")
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout)["calls"] == 43
    reference = (tmp_path / "full.json").read_bytes()
    assert (tmp_path / "full.json.plain").read_bytes() == reference  # out_dir changes nothing in the report

    out = tmp_path / "run"
    done_after = []
    for kill_at in (20, 9):  # killed twice, each time inside a unit
        killed = _run(script, out, tmp_path / "run.json", kill_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert not (tmp_path / "run.json").exists()
        # What is under the final name is a complete state; nothing else is left but temporaries.
        assert all(p.name == STATE_NAME or p.name.endswith(".tmp") for p in out.iterdir())
        done_after.append(len(_state(out)["done"]))
    # Kill 1 at call 20: chunk 0 (7 units), chunk 1's clean and one corrupted unit were finished (calls
    # 2..19). Kill 2 at call 9 of the rerun: 3 more units (calls 2..7; call 1 reads the model's classes),
    # killed in the 4th.
    assert done_after == [9, 12]

    # Killed a third time inside a state write: after the temporary file is complete, before its rename. The
    # rerun writes its (unchanged) state first, then one per unit: the 3rd write is the 2nd unit's.
    killed = _run(script, out, tmp_path / "run.json", kill_in_write=3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(_state(out)["done"]) == 13  # the unit whose write was cut is lost, nothing else
    assert [p.name.endswith(".tmp") for p in sorted(out.iterdir())] == [True, False]

    resumed = _run(script, out, tmp_path / "run.json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["calls"] == 1 + 2 * (21 - 13)  # only the unfinished units were run
    assert (tmp_path / "run.json").read_bytes() == reference
    assert sorted(p.name for p in out.iterdir()) == [STATE_NAME]  # no temporary left behind
    # The numbers are sensitive to the random draws: another seed gives another report.
    other = evaluate_corruptions(PixelHash(), SyntheticShapes(24, seed=1, train=False), seed=1, **_KW)
    assert json.loads(reference)["errors"] != other.errors


def _data():
    return SyntheticShapes(12, seed=4, train=False)


def test_a_finished_state_returns_the_report_without_compute(tmp_path):
    first = evaluate_corruptions(PixelHash(), _data(), out_dir=tmp_path, **_KW)
    model = PixelHash()
    again = evaluate_corruptions(model, _data(), out_dir=tmp_path, **_KW)
    assert again == first and model.calls == 1  # the one call that reads the model's classes
    assert evaluate_corruptions(PixelHash(), _data(), **_KW) == first


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (dict(seed=5), "seed"),
        (dict(severities=(1, 3)), "severities"),
        (dict(corruptions=["contrast", "gaussian_noise"]), "corruptions"),
        (dict(batch_size=2), "batch_size"),
        (dict(chunk_images=4), "chunk_images"),
        (dict(preset="imagenet"), "preset"),  # auto gives these 32-px images "cifar"
        (dict(model=PixelHash(shift=0.5)), "model"),
        (dict(dataset=SyntheticShapes(12, seed=5, train=False)), "dataset"),
    ],
)
def test_a_rerun_with_other_arguments_is_refused(tmp_path, change, key):
    model = PixelHash()
    kw = {**_KW, "out_dir": tmp_path}
    # A partial state: stop the first run after its first units by failing inside the model.
    calls = {"n": 0}

    class Failing(PixelHash):
        def forward(self, x):
            calls["n"] += 1
            if calls["n"] == 6:
                raise KeyboardInterrupt  # what Ctrl-C does mid-run
            return super().forward(x)

    with pytest.raises(KeyboardInterrupt):
        evaluate_corruptions(Failing(), _data(), **kw)
    assert 0 < len(_state(tmp_path)["done"])
    kw.update({k: v for k, v in change.items() if k not in ("model", "dataset")})
    with pytest.raises(AugrobustValueError, match=rf"other arguments \({key}: .*delete '.*{STATE_NAME}'"):
        evaluate_corruptions(change.get("model", model), change.get("dataset", _data()), **kw)
    # The refused run changed nothing: the same arguments still continue and finish.
    done = _state(tmp_path)["done"]
    finished = evaluate_corruptions(PixelHash(), _data(), **{**_KW, "out_dir": tmp_path})
    assert all(_state(tmp_path)["done"][u] == v for u, v in done.items())
    assert finished == evaluate_corruptions(PixelHash(), _data(), **_KW)


def test_chunk_size_does_not_change_the_numbers():
    a = evaluate_corruptions(PixelHash(), _data(), **{**_KW, "chunk_images": 4})
    b = evaluate_corruptions(PixelHash(), _data(), **{**_KW, "chunk_images": None})
    c = evaluate_corruptions(PixelHash(), _data(), **{**_KW, "chunk_images": 5})  # rounded up to 8
    assert a == b == c


def test_stale_temporaries_are_removed_and_the_state_file_is_complete_json(tmp_path):
    stale = tmp_path / f".{STATE_NAME}.abc123.tmp"
    stale.write_text('{"torn')
    evaluate_corruptions(PixelHash(), _data(), out_dir=tmp_path, **_KW)
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_NAME]
    state = _state(tmp_path)
    assert len(state["done"]) == 2 * (1 + 2 * 3)  # 12 images: 2 chunks of 8 and 4
    (tmp_path / STATE_NAME).write_text("{not json")
    with pytest.raises(AugrobustValueError, match="cannot read the evaluation state"):
        evaluate_corruptions(PixelHash(), _data(), out_dir=tmp_path, **_KW)


# ----------------------------------------------------------------------------- checks before any compute


def test_bad_out_dir_fails_before_any_model_call(tmp_path):
    (tmp_path / "file").write_text("x")
    model = PixelHash()
    for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(AugrobustValueError, match="out_dir"):
            evaluate_corruptions(model, _data(), out_dir=bad, **_KW)
    assert model.calls == 0


def _npy_root(root: Path, labels: np.ndarray, names=("fog",), n=4) -> Path:
    root.mkdir(exist_ok=True)
    for name in names:
        np.save(root / f"{name}.npy", np.full((5 * n, 8, 8, 3), 100, np.uint8))
    np.save(root / "labels.npy", labels)
    return root


def test_missing_npy_files_fail_before_any_model_call(tmp_path):
    root = _npy_root(tmp_path / "c", np.arange(4))
    model = PixelHash()
    with pytest.raises(DatasetFileNotFoundError, match=r"\['frost'\].*available: fog"):
        evaluate_corruptions(model, _data(), npy_root=root, corruptions=["fog", "frost"], progress=False)
    assert model.calls == 0


@pytest.mark.parametrize(
    ("labels", "match", "calls"),
    [
        # Beyond the model's classes: known after the one call that reads the model's classes.
        (np.array([0, 1, 2, 12]), r"0\.\.9 \(10 classes of the model\).*index 3: 12", 1),
        (np.array([0, -1, 2, 3] * 5), r">= 0.*-1", 0),  # negative: refused by the reader itself
    ],
)
def test_npy_labels_outside_the_model_s_classes_are_refused(tmp_path, labels, match, calls):
    """Was: exit 0 with an error of 100 % and an mCE of 139 %."""
    root = _npy_root(tmp_path / "c", labels)
    model = PixelHash()
    with pytest.raises(AugrobustValueError, match=match) as info:
        evaluate_corruptions(model, None, npy_root=root, severities=(1,), progress=False)
    assert str(root / "labels.npy") in str(info.value)
    assert model.calls == calls


def test_empty_npy_array_is_refused(tmp_path):
    root = _npy_root(tmp_path / "c", np.zeros(0, np.int64), n=0)
    with pytest.raises(AugrobustValueError, match="holds no image") as info:
        evaluate_corruptions(PixelHash(), None, npy_root=root, progress=False)
    assert str(root / "fog.npy") in str(info.value)


class _Pairs(Dataset):
    """A dataset of (image, label) pairs, with or without a ``targets`` attribute."""

    def __init__(self, labels, with_targets: bool) -> None:
        self.labels = list(labels)
        if with_targets:
            self.targets = self.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return torch.full((3, 8, 8), i, dtype=torch.uint8), self.labels[i]


@pytest.mark.parametrize("with_targets", [True, False])
def test_dataset_labels_outside_the_model_s_classes_are_refused(with_targets):
    model = PixelHash()
    with pytest.raises(AugrobustValueError, match=r"0\.\.9 \(10 classes of the model\)"):
        evaluate_corruptions(model, _Pairs([1, 2, 3, 10, 4], with_targets), corruptions=["contrast"],
                             batch_size=2, progress=False)  # fmt: skip
    # With targets the labels are read up front (after the call that reads the model's classes); without,
    # each batch is checked before it is used: batch 0 ran, batch 1 (labels 3, 10) was refused.
    assert model.calls == (1 if with_targets else 2)


def test_num_classes_must_match_the_model_and_images_must_batch():
    with pytest.raises(AugrobustValueError, match="num_classes=5 but the model returns 10"):
        evaluate_corruptions(PixelHash(), _data(), num_classes=5, **_KW)
    report = evaluate_corruptions(PixelHash(), _data(), num_classes=10, **_KW)
    assert report.num_images == 12

    class Ragged(_Pairs):
        def __getitem__(self, i):
            return torch.zeros((3, 8, 8 + i), dtype=torch.uint8), self.labels[i]

    with pytest.raises(AugrobustValueError, match="differ in size"):
        evaluate_corruptions(PixelHash(), Ragged([0, 1], True), corruptions=["contrast"], progress=False)
    with pytest.raises(AugrobustValueError, match=r"\(3, H, W\)"):
        evaluate_corruptions(PixelHash(), torch.utils.data.TensorDataset(torch.zeros(2, 8, 8), torch.zeros(2)),
                             corruptions=["contrast"], progress=False)  # fmt: skip
    for bad in (dict(seed=-1), dict(num_workers=-1), dict(preset="cifr"), dict(progress=1)):
        with pytest.raises((AugrobustValueError, TypeError)):
            evaluate_corruptions(PixelHash(), _data(), **{**_KW, **bad})
