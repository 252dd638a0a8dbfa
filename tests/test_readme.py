"""The README's Python snippets run as pasted, on a CPU-only machine, in order (as a reader pastes them into
one session). Where a snippet names a file (the CIFAR-10-C folder, the weights, the baseline report), the
test writes a small stand-in with the same layout first: 8 images instead of 10,000, random weights."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

import augrobust
from augrobust.corruptions import SUBSETS
from augrobust.data import SyntheticShapes

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _stand_ins(root: Path) -> None:
    """CIFAR-10-C/ (the 15 benchmark corruptions, labels.npy), resnet18_cifar10.pt, baseline/report.json."""
    ds = SyntheticShapes(8, train=False)
    imgs = np.stack([ds[i][0].permute(1, 2, 0).numpy() for i in range(8)])
    rng = np.random.default_rng(0)
    (root / "CIFAR-10-C").mkdir()
    for name in SUBSETS["common"]:
        noisy = [np.clip(imgs + rng.integers(-10 * s, 10 * s + 1, imgs.shape), 0, 255) for s in range(1, 6)]
        np.save(root / "CIFAR-10-C" / f"{name}.npy", np.concatenate(noisy).astype(np.uint8))
    np.save(root / "CIFAR-10-C" / "labels.npy", np.array([ds[i][1] for i in range(8)]))
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), root / "resnet18_cifar10.pt")
    baseline = torchvision.models.resnet18(num_classes=10)  # another model: the baseline's report
    report = augrobust.evaluate(baseline, f"cifar10-c:{root / 'CIFAR-10-C'}", normalize="cifar", device="cpu",
                                progress=False, model_name="ResNet-18 baseline")  # fmt: skip
    report.save_json(root / "baseline" / "report.json")


def test_readme_has_the_evaluation_recipe():
    blocks = [b for b in _python_blocks() if "augrobust.evaluate(" in b]
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) == 6  # the six-line recipe


@pytest.mark.slow
def test_the_python_snippets_run_as_pasted(tmp_path, monkeypatch, capsys):
    _stand_ins(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for block in _python_blocks():
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the snippets are the test subject
    out = capsys.readouterr().out
    assert re.search(r"mCE \d+\.\d % against ResNet-18 baseline, the 15 benchmark corruptions", out), out
    assert (tmp_path / "resnet18" / "report.json").is_file() and (tmp_path / "resnet18" / "heatmap.png").is_file()
