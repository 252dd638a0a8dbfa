"""``train`` under a real ``torchrun --nproc_per_node=2`` with gloo on CPU, no code change.

Proven: the process group comes up from torchrun's environment, the DistributedSampler shards the data,
DDP keeps both ranks' weights identical (DAMP included: each rank perturbs its own sub-batches with its
own noise, gradients are averaged), only rank 0 writes the checkpoint, and it stores every rank's RNG.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from augrobust.train import CHECKPOINT_NAME, build_model, load_checkpoint

_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from augrobust.data import SyntheticShapes
    from augrobust.train import TrainConfig, train

    out = sys.argv[1]
    config = TrainConfig(arch="resnet8_cifar", data="synthetic16", epochs=2, batch_size=8, lr=0.05,
                         damp_sigma=0.2, damp_m=4, seed=0)
    data = (SyntheticShapes(16, seed=2, train=True, size=16), SyntheticShapes(8, seed=2, train=False, size=16))
    result = train(config, out, datasets=data, log=print)
    rank = int(os.environ["RANK"])
    flat = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"world_size": int(os.environ["WORLD_SIZE"]), "params": flat.tolist(),
                   "steps": len(result.history)}, f)
    """
)


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["params"] == ranks[1]["params"]  # DDP kept the replicas identical
    assert "x2" in proc.stdout  # rank 0 logged the world size
    ckpt = load_checkpoint(out / CHECKPOINT_NAME)
    assert ckpt["epoch"] == 2 and len(ckpt["rng_ranks"]) == 2
    assert not torch.equal(ckpt["rng_ranks"][0]["damp"], ckpt["rng_ranks"][1]["damp"])  # per-rank noise
    model = build_model(ckpt["config"]["arch"], ckpt["config"]["num_classes"])
    model.load_state_dict(ckpt["model"])
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.equal(flat, torch.tensor(ranks[0]["params"]))
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_NAME, "metrics.jsonl", "rank0.json", "rank1.json"]


_TWO_PASS_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from augrobust.data import SyntheticShapes
    from augrobust.train import TrainConfig, train

    out, method = sys.argv[1], sys.argv[2]
    options = {"cycle_steps": 1, "retrain_steps": 2, "eps": 2.0} if method == "ant" else {}
    config = TrainConfig(arch="resnet8_cifar", method=method, method_options=options, data="synthetic16", epochs=2,
                         batch_size=8, lr=0.05)
    data = (SyntheticShapes(16, seed=2, train=True, size=16), SyntheticShapes(8, seed=2, train=False, size=16))
    result = train(config, out, datasets=data, log=None)
    state = {k: v.flatten().tolist() for k, v in result.model.state_dict().items() if v.is_floating_point()}
    with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as f:
        json.dump(state, f)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["afa", "ant"])
def test_torchrun_with_a_two_pass_method_keeps_replicas_identical(tmp_path, method):
    """AFA (main + auxiliary-BN forward, one backward) and ANT (a generator step, then the classifier step).

    DDP still averages every classifier gradient (AFA's aux BNs included), and ANT's ranks play one generator.
    """
    script = tmp_path / "ddp_two_pass.py"
    script.write_text(_TWO_PASS_SCRIPT)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(out),
        method,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0, rank1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    weights = [k for k in rank0 if "running" not in k]  # BN running stats are per-rank (not synced), weights not
    if method == "afa":
        assert any(".aux." in k for k in weights) and any(".main." in k for k in weights)
    for k in weights:
        assert rank0[k] == rank1[k], k
    if method == "ant":
        states = load_checkpoint(out / CHECKPOINT_NAME)["method_ranks"]
        generators = [state["generator"] for state in states]
        assert generators[0].keys() == generators[1].keys()
        for k in generators[0]:
            assert torch.equal(generators[0][k], generators[1][k]), k
        assert len(states[0]["history"]) == len(states[1]["history"]) >= 2


_NONFINITE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from augrobust.data import SyntheticShapes
    from augrobust.train import Method, NonFiniteLossError, TrainConfig, train

    out, mode = sys.argv[1], sys.argv[2]
    rank = int(os.environ["RANK"])

    class PoisonRank1(Method):  # rank 1's loss is NaN at its third step (epoch 2, step 1); rank 0's never
        calls = 0
        def loss(self, model, forward, x, y):
            self.calls += 1
            loss, logits = super().loss(model, forward, x, y)
            return (loss * float("nan") if rank == 1 and self.calls == 3 else loss), logits

    config = TrainConfig(arch="resnet8_cifar", data="synthetic16", epochs=3, batch_size=8, lr=0.05, nonfinite=mode)
    data = (SyntheticShapes(16, seed=2, train=True, size=16), SyntheticShapes(8, seed=2, train=False, size=16))
    try:
        result = train(config, out, datasets=data, method=PoisonRank1(), log=None)
        report = {"skipped": [row["skipped_steps"] for row in result.history],
                  "params": torch.cat([p.detach().flatten() for p in result.model.parameters()]).tolist()}
    except NonFiniteLossError as err:
        report = {"error": [err.epoch, err.step]}
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(report, f)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["error", "skip"])
def test_torchrun_a_nan_on_one_rank_stops_or_skips_on_every_rank(tmp_path, mode):
    """One rank's NaN reaches every rank: all stop together naming the step (no rank left waiting in a
    collective), or all skip the same step and the replicas stay identical."""
    script = tmp_path / "ddp_nonfinite.py"
    script.write_text(_NONFINITE_SCRIPT)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = [*run, str(script), str(out), mode]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0, rank1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    if mode == "error":
        assert rank0 == rank1 == {"error": [2, 1]}
    else:
        assert rank0["skipped"] == rank1["skipped"] == [0, 1, 0]
        assert rank0["params"] == rank1["params"]
