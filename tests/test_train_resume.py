"""A training process killed with SIGKILL at any moment resumes to the uninterrupted run's files, byte for byte.

Real processes, real kills: a child process trains ``synthetic:16`` (2 steps per epoch, 3 epochs) and kills
itself with ``os.kill(os.getpid(), SIGKILL)`` from a patched function at a chosen moment; a second child
resumes. (The children are forked from one server process that imported torch once: seconds per run instead
of an interpreter start each.) Proven:

- after the resume, ``checkpoint.pt`` holds exactly what the uninterrupted run's holds (weights, optimiser,
  schedule, RNG streams, metrics history) and ``metrics.jsonl`` is byte-identical to its;
- a kill right after a checkpoint write (before the metrics line) loses no row: the history lives in the
  checkpoint and the file is rewritten from it;
- a kill during the metrics append leaves a torn last line, which the resume repairs;
- a kill during the checkpoint write leaves a ``.checkpoint.pt.*.tmp``, which the resume removes;
- kills between epochs and inside an epoch resume from the last checkpoint.

The children replace ``time.perf_counter`` by a constant, so the ``seconds`` field (wall time, which
differs between any two runs) is 0.0 in every run and the files can be compared byte for byte.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from augrobust.errors import AugrobustValueError
from augrobust.train import CHECKPOINT_NAME, METRICS_NAME, TrainConfig, train

pytestmark = pytest.mark.slow

_SERVER = textwrap.dedent(
    """
    import os, signal, sys, time
    import torch
    import augrobust.train.metrics_file as metrics_file
    from augrobust.train import Method, TrainConfig, train

    def train_child(out, kill, resume):
        time.perf_counter = lambda: 0.0  # wall time differs between runs; see the test module's docstring
        kind, _, at = kill.partition(":")
        at = int(at or 0)
        count = [0]

        def die():
            os.kill(os.getpid(), signal.SIGKILL)

        def nth_call():
            count[0] += 1
            return count[0] == at

        if kind == "during-save":  # the at-th checkpoint write dies half way: a partial temporary file
            real_save = torch.save
            def save(obj, f, *args, **kwargs):
                if nth_call():
                    f.write(b"PK partial checkpoint")
                    f.flush()
                    die()
                return real_save(obj, f, *args, **kwargs)
            torch.save = save
        elif kind == "after-save":  # dies right after the at-th checkpoint is in place, before the metrics line
            real_replace = os.replace
            def replace(src, dst, *args, **kwargs):
                real_replace(src, dst, *args, **kwargs)
                if str(dst).endswith("checkpoint.pt") and nth_call():
                    die()
            os.replace = replace
        elif kind == "during-append":  # the at-th metrics line is half written
            def append_row(path, row):
                with open(path, "a") as f:
                    if nth_call():
                        f.write('{"epoch": 99, "train_lo')
                        f.flush()
                        die()
                    f.write(__import__("json").dumps(row) + "\\n")
            metrics_file.append_row = append_row
        elif kind == "at-step":  # dies as the at-th training step (1-based, over the run) starts
            real_loss = Method.loss
            def loss(self, *args):
                if nth_call():
                    die()
                return real_loss(self, *args)
            Method.loss = loss

        config = TrainConfig(arch="resnet8_cifar", data="synthetic:16", epochs=3, batch_size=8, lr=0.05,
                             damp_sigma=0.1, damp_m=2, method="gnt", method_options={"sigma": 0.3, "p": 0.5})
        train(config, out, resume=resume, log=None)

    # One process per training run, forked from this one (torch imported once; no torch op has run here,
    # so no thread pool is forked). Reads "OUT KILL MODE" lines, answers with the child's wait status.
    for line in sys.stdin:
        out, kill, mode = line.split()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                train_child(out, kill, mode == "resume")
            except BaseException as err:
                print(repr(err), file=sys.stderr)
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status), flush=True)
    """
)


class _Trainer:
    """The forking server above: ``run(out, kill, mode)`` trains in a fresh child process, returns its exit code
    (``-9`` when it killed itself with SIGKILL)."""

    def __init__(self, script: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def run(self, out: Path, kill: str, mode: str) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{out} {kill} {mode}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, "the training server died"
        return int(answer)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _assert_same(a: Any, b: Any, where: str = "checkpoint") -> None:
    """Equal nested containers, tensors equal element for element (dtype and shape included)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_same(u, v, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Trainer]:
    script = tmp_path_factory.mktemp("server") / "train_server.py"
    script.write_text(_SERVER)
    server = _Trainer(script)
    yield server
    server.close()


@pytest.fixture(scope="module")
def reference(trainer: _Trainer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert trainer.run(out, "none", "fresh") == 0
    return out


def _temporaries(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize(
    ("kill", "rows_after_kill"),
    [
        ("during-save:2", [1]),  # epoch 2's checkpoint write dies: epoch 1 is kept
        ("after-save:2", [1]),  # epoch 2's checkpoint is in place, its metrics line not yet written
        ("during-append:2", [1]),  # epoch 2's metrics line is torn
        ("at-step:5", [1, 2]),  # between epochs: as epoch 3's first step starts
        ("at-step:4", [1]),  # inside epoch 2
    ],
)
def test_a_kill_then_resume_equals_the_uninterrupted_run(trainer, reference, tmp_path, kill, rows_after_kill):
    out = tmp_path / "run"
    assert trainer.run(out, kill, "fresh") == -signal.SIGKILL
    lines = (out / METRICS_NAME).read_text().splitlines()
    if kill.startswith("during-append"):
        with pytest.raises(json.JSONDecodeError):
            json.loads(lines[-1])  # the kill really tore the line
        lines = lines[:-1]
    assert [json.loads(line)["epoch"] for line in lines] == rows_after_kill
    if kill.startswith("during-save"):
        assert len(_temporaries(out)) == 1  # the kill really left a temporary file
    ckpt_epoch = torch.load(out / CHECKPOINT_NAME, weights_only=True)["epoch"]
    assert ckpt_epoch == (2 if kill.startswith(("after-save", "during-append")) else rows_after_kill[-1])

    assert trainer.run(out, "none", "resume") == 0
    assert (out / METRICS_NAME).read_bytes() == (reference / METRICS_NAME).read_bytes()
    _assert_same(
        torch.load(out / CHECKPOINT_NAME, weights_only=True), torch.load(reference / CHECKPOINT_NAME, weights_only=True)
    )
    assert _temporaries(out) == []


def test_two_kills_in_a_row_still_resume_exactly(trainer, reference, tmp_path):
    out = tmp_path / "run"
    assert trainer.run(out, "after-save:1", "fresh") == -signal.SIGKILL
    assert trainer.run(out, "during-save:2", "resume") == -signal.SIGKILL  # epoch 3's write dies
    assert _temporaries(out)
    assert trainer.run(out, "none", "resume") == 0
    assert (out / METRICS_NAME).read_bytes() == (reference / METRICS_NAME).read_bytes()
    _assert_same(
        torch.load(out / CHECKPOINT_NAME, weights_only=True), torch.load(reference / CHECKPOINT_NAME, weights_only=True)
    )
    assert _temporaries(out) == []


# -- checkpoints written before the history moved into them ---------------------------------------------------


_CONFIG = dict(arch="resnet8_cifar", data="synthetic:16", epochs=3, batch_size=8, lr=0.05)


def _old_style_run(out: Path) -> None:
    """Two epochs, then the checkpoint as the trainer wrote it before: no 'history', no 'method'."""
    train(TrainConfig(**_CONFIG), out, stop_after_epoch=2, log=None)
    ckpt = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    del ckpt["history"], ckpt["method"]
    torch.save(ckpt, out / CHECKPOINT_NAME)


def test_an_old_checkpoint_resumes_past_a_torn_last_metrics_line(tmp_path):
    full = train(TrainConfig(**_CONFIG), tmp_path / "full", log=None)
    out = tmp_path / "old"
    _old_style_run(out)
    with open(out / METRICS_NAME, "a") as f:
        f.write('{"epoch": 3, "train_lo')  # a kill during the append, before this change
    result = train(TrainConfig(**_CONFIG), out, resume=True, log=None)
    rows = [json.loads(line) for line in (out / METRICS_NAME).read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3] == [row["epoch"] for row in result.history]
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, result.model.state_dict()[name]), name


def test_an_old_checkpoint_with_a_corrupt_middle_line_is_a_clear_error(tmp_path):
    out = tmp_path / "old"
    _old_style_run(out)
    lines = (out / METRICS_NAME).read_text().splitlines()
    (out / METRICS_NAME).write_text("not json\n" + lines[1] + "\n")
    with pytest.raises(AugrobustValueError, match=r"metrics.jsonl.*line 1 is not JSON"):
        train(TrainConfig(**_CONFIG), out, resume=True, log=None)


def test_a_fresh_run_removes_stale_temporaries(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".checkpoint.pt.abc123.tmp").write_bytes(b"partial")
    (out / ".metrics.jsonl.def456.tmp").write_text("partial")
    (out / "notes.tmp").write_text("the user's own file")
    train(TrainConfig(**{**_CONFIG, "epochs": 1}), out, log=None)
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_NAME, METRICS_NAME, "notes.tmp"]
