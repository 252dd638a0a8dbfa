"""The ``augrobust`` command's front door: cheap help, one error style, the same options everywhere.

* ``augrobust --help`` and ``augrobust CMD --help`` load no torch and print no warning (they used to load the
  trainer, the benchmark suite and torch's C++-extension loader, and took seconds).
* A user's mistake in any subcommand ends with one line ``augrobust CMD: error: ...`` and exit status 2, no
  traceback unless ``--debug``; the checks run before any work starts and nothing is written.
* Every help text shows its defaults and lists closed choices; the literal choice lists of the commands
  stay equal to the registries they mirror.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import augrobust
from augrobust.cli import build_parser, main
from augrobust.errors import AugrobustValueError

ROOT = Path(augrobust.__file__).resolve().parent.parent
COMMANDS = ("demo", "preview", "bench", "train", "eval", "compare", "dfm", "generate")


def _env() -> dict[str, str]:
    """The environment of a child ``python`` that imports this checkout's augrobust."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=_env(), timeout=300)


def _error_line(stderr: str, command: str) -> str:
    """The one line a failed command prints (and nothing else: no traceback)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith(f"augrobust {command}: error: "), lines[0]
    assert "Traceback" not in stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------------- --help

# Loaded by a subcommand's run() only: the trainer, the evaluation, the benchmark suite and torch's
# benchmark / C++-extension modules (the last one prints a CUDA warning when imported without CUDA).
HEAVY = (
    "torch",
    "torch.utils.benchmark",
    "torch.utils.cpp_extension",
    "augrobust.train",
    "augrobust.train.trainer",
    "augrobust.evaluation",
    "augrobust.benchmark.suite",
    "augrobust.corruptions",
    "augrobust.transforms",
    "augrobust.dfm",
    "kornia",
    "torchvision",
    "PIL",
)


def test_building_the_parser_imports_no_heavy_module():
    code = "import sys\nfrom augrobust.cli import build_parser\nbuild_parser()\nprint('\\n'.join(sorted(sys.modules)))"
    proc = _run("-c", code)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "augrobust.commands.train" in loaded and "augrobust.commands.bench" in loaded  # it did build them
    assert sorted(loaded.intersection(HEAVY)) == []
    assert proc.stderr == ""


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["bench", "--help"]])
def test_help_in_a_real_process_prints_no_warning_and_loads_no_torch(argv):
    # -X importtime lists every module the process imported, on stderr.
    proc = _run("-X", "importtime", "-m", "augrobust.cli", *argv)
    assert proc.returncode == 0, proc.stderr
    assert "usage: augrobust" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    # (importlib.import_module is not logged, the import statements it runs are)
    assert "augrobust.commands._options" in imported
    assert sorted(imported.intersection(HEAVY)) == []
    other = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert other == []  # no warning


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_exits_0_and_shows_every_default(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # unwrap the help's line breaks
    sub = _subparser(command)
    for action in sub._actions:
        default = action.default
        if action.required or default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            continue
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        assert f"default: {shown})" in text, f"{command} {action.option_strings[0]}: default {shown!r} not shown"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (sub_action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub_action.choices)


def _subparser(command: str) -> argparse.ArgumentParser:
    return _subcommands()[command]


def test_the_parser_has_the_eight_commands_in_their_package():
    assert list(_subcommands()) == list(COMMANDS)
    for command in COMMANDS:
        assert _subparser(command).get_default("func").__module__ == f"augrobust.commands.{command}"


def test_closed_choices_are_listed_and_options_share_their_names(capsys):
    texts = {}
    for command in COMMANDS:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        texts[command] = " ".join(capsys.readouterr().out.split())
    for command in ("preview", "eval"):
        assert "imagenet,tinyimagenet,cifar,inception}" in texts[command]
        assert "hendrycks" in texts[command]
    for command in ("preview", "eval", "bench"):
        assert "--corruptions SUBSET|NAMES" in texts[command]
        assert "common, validation, all, noise, blur, weather, digital" in texts[command]
    assert "{afa,afa_noaux,ant,dfmx,erm,gnt}" in texts["train"]
    same = {
        "--data": ("train", "eval", "dfm"), "--seed": ("demo", "preview", "train", "eval", "dfm"),
        "--device": ("bench", "train", "eval", "dfm"), "--batch-size": ("demo", "train", "eval", "dfm"),
        "--out": COMMANDS, "--quiet": ("bench", "train", "eval", "dfm"), "--severities": ("preview", "eval"),
        "--preset": ("preview", "eval"), "--reference": ("preview", "eval"),
        "--corruptions": ("preview", "bench", "eval"), "--threads": ("bench", "train", "eval", "dfm", "generate"),
    }  # fmt: skip
    for option, commands in same.items():
        for command in commands:
            assert option in _subparser(command)._option_string_actions, (command, option)


def test_old_option_spellings_still_parse():
    parser = build_parser()
    assert parser.parse_args(["demo", "--batch", "4"]).batch_size == 4
    assert parser.parse_args(["eval", "--checkpoint", "c.pt", "--no-progress"]).quiet is True
    evaluate = ["eval", "--checkpoint", "c.pt"]
    assert parser.parse_args([*evaluate, "--corruptions", "fog,snow"]).corruptions == ["fog", "snow"]
    assert parser.parse_args([*evaluate, "--severities", "1,3"]).severities == [1, 3]


def test_the_literal_choice_lists_equal_the_registries_they_mirror():
    from augrobust.commands import train as train_command
    from augrobust.corruptions import _spec
    from augrobust.train import ARCHITECTURES, METHODS, TrainConfig, trainer

    assert set(train_command.METHOD_NAMES) == set(METHODS)
    assert set(train_command.ARCHITECTURE_NAMES) == set(ARCHITECTURES)
    assert set(train_command.BASE_AUGMENTATION_NAMES) == set(trainer.BASE_AUGMENTATIONS)
    config = TrainConfig()
    assert train_command.DEFAULTS == {name: getattr(config, name) for name in train_command.DEFAULTS}
    assert set(train_command.DEFAULTS) == {f for f in config.to_dict() if f not in ("method_options", "num_classes")}
    assert _spec.CORRUPTION_ORDER == augrobust.corruptions.CORRUPTION_ORDER
    assert _spec.SUBSETS["common"] == tuple(augrobust.get_corruption_names("common"))


# ------------------------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real trainer-format checkpoint of the smallest model."""
    from augrobust.train import build_model

    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    model = build_model("resnet8_cifar", 10)
    torch.save({"model": model.state_dict(), "config": {"arch": "resnet8_cifar", "num_classes": 10}}, path)
    return path


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if the evaluation, the DFM sweep, training or the benchmark timing starts."""
    import augrobust.benchmark.suite
    import augrobust.dfm
    import augrobust.evaluation
    import augrobust.train.trainer

    def forbidden(*args, **kwargs):
        raise AssertionError("the work started before the inputs were checked")

    monkeypatch.setattr(augrobust.evaluation, "evaluate_corruptions", forbidden)
    monkeypatch.setattr(augrobust.dfm, "compute_dfms", forbidden)
    monkeypatch.setattr(augrobust.train.trainer, "train", forbidden)
    monkeypatch.setattr(augrobust.benchmark.suite, "run_suite", forbidden)


def _bad_inputs(tmp: Path, ckpt: Path) -> list[tuple[list[str], str]]:
    a_file = tmp / "a_file"
    a_file.write_text("x")
    npy = tmp / "npy"
    npy.mkdir()
    return [
        (["demo", "--image", str(tmp / "missing.png"), "--out", str(tmp / "d.png")], "cannot read image"),
        (["demo", "--out", str(tmp / "demo.xyz")], "Pillow writes no format with the ending '.xyz'"),
        (["demo", "--out", str(a_file / "demo.png")], "is a file, not a folder"),
        (["preview", "--corruptions", "fogg", "--out", str(tmp / "p.png")], "unknown corruption 'fogg'"),
        (["bench", "--only", "DFMX", "--sizes", "32", "--out", str(tmp / "b.json")], "did you mean 'DFMX(p=1)'"),
        (["bench", "--corruptions", "fogg", "--out", str(tmp / "b.json")], "unknown corruption 'fogg'"),
        (["bench", "--only", "DFMX(p=1)", "--out", str(tmp)], "is a folder; give a file name"),
        (["train", "--out", str(a_file)], "is a file; give a folder"),
        (["train", "--out", str(tmp / "run"), "--epochs", "0"], "epochs"),
        (["eval", "--checkpoint", str(tmp / "missing.pt")], "checkpoint not found"),
        (["eval", "--checkpoint", str(a_file)], "cannot load checkpoint"),
        (["eval", "--checkpoint", str(ckpt), "--out", str(a_file)], "is a file; give a folder"),
        (["eval", "--checkpoint", str(ckpt), "--out", str(tmp / "r"), "--data", "cifar10:" + str(tmp / "none")],
         "none"),
        (["eval", "--checkpoint", str(ckpt), "--out", str(tmp / "r"), "--data", "mnist:/x"], "unknown data spec"),
        (["eval", "--checkpoint", str(ckpt), "--out", str(tmp / "r"), "--npy-root", str(tmp / "none")], "none"),
        (["eval", "--checkpoint", str(ckpt), "--out", str(tmp / "r"), "--npy-root", str(npy)], "no <corruption>.npy"),
        (["eval", "--model", "torchvision:resnet18", "--weights", str(tmp / "missing.pt")], "does not exist"),
        (["eval", "--model", "torchvision:resnet1", "--out", str(tmp / "r")], "torchvision has no model 'resnet1'"),
        (["eval", "--checkpoint", str(ckpt), "--model", "torchvision:resnet18"], "not both"),
        (["eval", "--checkpoint", str(ckpt), "--out", str(tmp / "r"), "--baseline", "alexnet"], "ImageNet-C-shaped"),
        (["compare", str(tmp / "missing.json"), "--out", str(tmp / "c")], "does not exist"),
        (["compare", str(a_file), "--out", str(tmp / "c")], "is not a readable report.json"),
        (["dfm", "--checkpoint", str(tmp / "missing.pt")], "checkpoint not found"),
        (["dfm", "--checkpoint", str(ckpt), "--out", str(tmp)], "is a folder; give a file name"),
        (["generate", "--data", "synthetic:10", "--format", "cifar-c", "--out", str(a_file)], "is a file; give a folder"),
        (["generate", "--data", "synthetic:10", "--format", "cifar-c", "--out", str(tmp / "g"), "--corruptions", "fogg"],
         "unknown: ['fogg']"),
        (["generate", "--format", "cifar-c"], "generate needs --data, --out"),
    ]  # fmt: skip


def test_every_command_turns_bad_input_into_one_line_and_exit_2(tmp_path, checkpoint, no_compute, capsys):
    cases = _bad_inputs(tmp_path, checkpoint)
    assert {argv[0] for argv, _ in cases} == set(COMMANDS)
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv, fragment in cases:
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert fragment in _error_line(captured.err, argv[0]), (argv, captured.err)
        assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no folder created


def test_bench_refuses_an_unknown_size_as_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--sizes", "64"])
    assert exit_info.value.code == 2
    assert "argument --sizes: expected comma-separated sizes from {32,224}, got '64'" in capsys.readouterr().err


def test_run_suite_refuses_to_time_nothing():
    from augrobust.benchmark.suite import default_cases, run_suite

    with pytest.raises(AugrobustValueError, match="nothing to time"):
        run_suite([], shapes=[(2, 3, 32, 32)])
    with pytest.raises(AugrobustValueError, match="nothing to time"):
        run_suite(default_cases([])[:1], shapes=[])


def test_debug_adds_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "missing.pt")
    for argv in (["--debug", "eval", "--checkpoint", missing], ["eval", "--checkpoint", missing, "--debug"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("Traceback (most recent call last):")
        assert "load_checkpoint" in err
        assert err.strip().splitlines()[-1] == f"augrobust eval: error: checkpoint not found: {missing!r}."


def test_ctrl_c_and_path_errors_map_to_130_and_2_and_a_bug_keeps_its_traceback(tmp_path, monkeypatch, capsys):
    import augrobust.train.trainer

    argv = ["train", "--out", str(tmp_path / "run"), "--epochs", "1"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(augrobust.train.trainer, "train", interrupted)
    assert main(argv) == 130
    assert _error_line(capsys.readouterr().err, "train") == "augrobust train: error: interrupted"

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/data/cifar")

    monkeypatch.setattr(augrobust.train.trainer, "train", denied)
    assert main(argv) == 2
    assert _error_line(capsys.readouterr().err, "train") == "augrobust train: error: Permission denied: '/data/cifar'"

    def bug(*args, **kwargs):
        raise RuntimeError("a bug, not a user's mistake")

    monkeypatch.setattr(augrobust.train.trainer, "train", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main(argv)


def test_a_real_process_exits_2_with_one_line(tmp_path):
    proc = _run("-m", "augrobust.cli", "eval", "--checkpoint", str(tmp_path / "missing.pt"))
    assert proc.returncode == 2
    missing = str(tmp_path / "missing.pt")
    assert _error_line(proc.stderr, "eval") == f"augrobust eval: error: checkpoint not found: {missing!r}."
    assert proc.stdout == ""


def test_ctrl_c_in_a_real_process_exits_130_with_one_line(tmp_path):
    argv = ["-m", "augrobust.cli", "train", "--arch", "resnet8_cifar", "--data", "synthetic:64", "--batch-size", "8",
            "--epochs", "1000", "--out", str(tmp_path / "run")]  # fmt: skip
    pipe = subprocess.PIPE
    proc = subprocess.Popen([sys.executable, *argv], stdout=pipe, stderr=pipe, text=True, env=_env())
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until training runs (past the imports and the first epoch)
            if line.startswith("epoch 1/"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert _error_line(err, "train") == "augrobust train: error: interrupted"


# -------------------------------------------------------------------------------------------------- progress


def test_dfm_shows_progress_in_a_log_and_nothing_with_quiet(tmp_path, checkpoint, capsys):
    common = ["dfm", "--checkpoint", str(checkpoint), "--num-images", "10", "--image-size", "8"]
    assert main([*common, "--out", str(tmp_path / "a.pt")]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()  # stderr is not a terminal: whole lines, no carriage returns
    assert lines and all(line.startswith("DFM sweep") for line in lines) and "\r" not in captured.err
    assert "100%" in lines[-1] and "level" in lines[-1]
    assert "wrote" in captured.out
    assert main([*common, "--out", str(tmp_path / "b.npy"), "--quiet"]) == 0  # .npy: the bare array, no metadata
    assert capsys.readouterr().err == ""
    import numpy as np

    from augrobust.dfm import load_dfms

    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "b.npy")), load_dfms(tmp_path / "a.pt"))


def test_train_prints_its_epochs_unless_quiet(tmp_path, capsys):
    common = ["train", "--arch", "resnet8_cifar", "--data", "synthetic:16", "--batch-size", "8", "--epochs", "1"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert "epoch 1/1" in capsys.readouterr().out
    assert main([*common, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_the_help_lists_the_data_specs_that_from_spec_reads():
    from augrobust.commands.eval import DATA_SPECS
    from augrobust.data import DATA_SPECS as READ

    assert DATA_SPECS == READ


def test_eval_benchmark_p_writes_a_perturbation_report_equal_to_the_python_one(tmp_path, checkpoint, capsys):
    from augrobust.data import from_spec
    from augrobust.perturbation_eval import PerturbationReport, evaluate_perturbations
    from augrobust.train.checkpoint import load_model

    out = tmp_path / "p"
    argv = ["eval", "--benchmark", "p", "--checkpoint", str(checkpoint), "--data", "synthetic", "--num-images", "2",
            "--batch-size", "2", "--out", str(out), "--no-figures", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"]
    got = PerturbationReport.load_json(out / "report.json")
    model, _ = load_model(checkpoint)
    data = from_spec("synthetic", train=False, num_images=2, num_classes=10)
    want = evaluate_perturbations(model, data, variant="cifar", batch_size=2, seed=0)
    assert got.to_dict() == want.to_dict()
    assert "| FP (%) |" in capsys.readouterr().out
    assert main(["eval", "--benchmark", "p", "--checkpoint", str(checkpoint), "--baseline", "alexnet",
                 "--out", str(tmp_path / "q"), "--no-figures"]) == 2  # fmt: skip


def test_eval_benchmark_p_from_generated_cifar_p_files_equals_on_the_fly(tmp_path, checkpoint, capsys):
    # `augrobust generate --format cifar-p` then `augrobust eval --benchmark p --p-root` gives the report that
    # `augrobust eval --benchmark p` makes on the fly from the same images (CIFAR-P arrays are lossless).
    from augrobust.perturbation_eval import PerturbationReport

    files = tmp_path / "cifar-p"
    assert main(["generate", "--data", "synthetic:10", "--format", "cifar-p", "--out", str(files), "--num-images",
                 "2", "--quiet"]) == 0  # fmt: skip
    common = ["eval", "--benchmark", "p", "--checkpoint", str(checkpoint), "--batch-size", "2", "--no-figures", "--quiet"]
    assert main([*common, "--p-root", str(files), "--out", str(tmp_path / "from_files")]) == 0
    assert main([*common, "--data", "synthetic:10", "--num-images", "2", "--out", str(tmp_path / "on_the_fly")]) == 0
    from_files = PerturbationReport.load_json(tmp_path / "from_files" / "report.json").to_dict()
    on_the_fly = PerturbationReport.load_json(tmp_path / "on_the_fly" / "report.json").to_dict()
    assert from_files["results"] and from_files["results"] == on_the_fly["results"]
    assert main([*common, "--p-root", str(files), "--benchmark", "c", "--out", str(tmp_path / "x")]) == 2


def test_the_command_backs_large_tensors_with_huge_pages_unless_the_user_said_otherwise():
    import subprocess
    import sys

    code = (
        "import os, sys; from augrobust.cli import main\n"
        "try:\n    main(['bench', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, os.environ.get('THP_MEM_ALLOC_ENABLE'), file=sys.stderr)"
    )
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "False 1"  # set before torch loads, where torch reads it
    done = subprocess.run(
        [sys.executable, "-c", code], env={**env, "THP_MEM_ALLOC_ENABLE": "0"}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.stderr.strip().splitlines()[-1] == "False 0"


def test_threads_default_follows_omp_num_threads_then_the_idle_cores_per_local_rank(monkeypatch):
    from augrobust.commands._options import default_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3  # torchrun and users set it: their choice wins
    monkeypatch.delenv("OMP_NUM_THREADS")
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert default_threads() == max(1, min(cores, 4))
    assert default_threads(workers=cores) == 1  # the command's own DataLoader workers take the cores
    monkeypatch.setattr(os, "getloadavg", lambda: (cores - 0.8, 0.0, 0.0))  # other jobs keep all but one core busy
    assert default_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0 * cores, 0.0, 0.0))  # overloaded: still one thread
    assert default_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(2 * cores))  # more ranks than cores: one thread each
    assert default_threads() == 1


@pytest.mark.parametrize("command", ["eval", "train", "generate", "dfm", "bench"])
def test_threads_below_one_is_a_one_line_error(command, capsys):
    import torch

    before = torch.get_num_threads()
    required = ["--checkpoint", "never-read.pt"] if command == "dfm" else []
    assert main([command, *required, "--threads", "0", "--out", "/tmp/never-written-by-this-test"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert torch.get_num_threads() == before
