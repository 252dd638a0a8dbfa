"""Per-step cost of dynamic sparse training (SET, RigL, MEST, GraNet) against dense SGD (JSON output).

One step = forward + cross-entropy + backward + SGD (Nesterov, weight decay) on a fixed random batch; a DST
step adds :meth:`SparseTraining.optimizer_step`'s re-masking of weights and momentum, and every
``interval``-th step a mask update. What is reported, per algorithm:

- ``step_ratio``: a plain DST step (re-masking only) over a dense step;
- ``mask_s``: the re-masking alone (what a DST step adds to a dense step), timed alone over 20 calls;
- ``update_s``: one mask update (drop + grow on every layer; GraNet's pruning included), timed alone;
- ``ratio_at_interval``: ``(step + update / interval) / dense step``, the cost averaged over one update
  interval (``--interval``, RigL's 100 by default), the number the <= 1.05x target is about;
- ``composed_ratio``: ``(dense step + mask_s + update_s / interval) / dense step``: the same from the two
  added parts timed alone, which on a loaded machine is far less noisy than a difference of two step times;
- ``measured_ratio``: a direct check, ``--check-steps`` consecutive DST steps that include one update (with
  the interval set to ``--check-steps``) over as many dense steps: the same amortisation at a shorter
  interval, so an upper bound of ``ratio_at_interval``.

Dense and DST steps are measured in alternating rounds (so that load on a shared machine hits both alike),
with ``--timer process`` (CPU time of this process, use it with ``--threads 1``) or wall time (on a GPU: the
device is synchronised before each clock reading); medians over the rounds. The load average is recorded.

    python benchmarks/sparse_cost.py --arch resnet8_cifar --batch-size 64 --threads 1 --timer process \\
        --json benchmarks/results/sparse_cost_resnet8_cifar_b64_cpu1.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from augrobust.benchmark.timing import device_info, device_sync, write_json
from augrobust.train import build_model
from augrobust.train.sparse import SPARSE_ALGORITHMS, SparseTraining


def _setup(arch: str, num_classes: int, device: torch.device, algorithm: str | None, args: argparse.Namespace,
           interval: int):  # fmt: skip
    torch.manual_seed(0)
    model = build_model(arch, num_classes).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    dst = None
    if algorithm is not None:
        # end=1.0 and the step counter parked so that the measured steps fall inside the update period
        dst = SparseTraining(model, opt, algorithm, sparsity=args.sparsity, total_steps=10**6, interval=interval,
                             end=1.0, mest_lambda=1.0)  # fmt: skip
    return model, opt, dst


def _step(model, opt, dst, x, y) -> None:
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if dst is None:
        opt.step()
    else:
        dst.optimizer_step()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet8_cifar")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=32, help="image side")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--sparsity", type=float, default=0.5)
    p.add_argument("--interval", type=int, default=100, help="update interval the amortised ratio is for")
    p.add_argument("--check-steps", type=int, default=10,
                   help="steps of the direct check (one update among them); 0 skips it")  # fmt: skip
    p.add_argument("--algorithms", nargs="+", default=list(SPARSE_ALGORITHMS), choices=SPARSE_ALGORITHMS)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--rounds", type=int, default=5, help="alternating dense / DST measurement rounds")
    p.add_argument("--steps", type=int, default=3, help="steps per step measurement")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--timer", choices=("wall", "process"), default="wall",
                   help="'process' (CPU only, with --threads 1): CPU time of this process, robust to other load")
    p.add_argument("--json", default=None, help="write the result here")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.timer == "process" and device.type != "cpu":
        p.error("--timer process measures CPU time; use it only with --device cpu")
    clock = time.process_time if args.timer == "process" else time.perf_counter
    sync = device_sync(device)

    def timed(fn, n: int) -> float:
        sync()
        t0 = clock()
        for _ in range(n):
            fn()
        sync()
        return (clock() - t0) / n

    x = torch.rand(args.batch_size, 3, args.size, args.size, device=device)
    y = torch.randint(0, args.num_classes, (args.batch_size,), device=device)
    runs = {"dense": _setup(args.arch, args.num_classes, device, None, args, args.interval)}
    checks = {"dense": runs["dense"]}
    for name in args.algorithms:
        runs[name] = _setup(args.arch, args.num_classes, device, name, args, 10**9)  # no update inside steps
        if args.check_steps:
            checks[name] = _setup(args.arch, args.num_classes, device, name, args, args.check_steps)
    for model, opt, dst in list(runs.values()) + list(checks.values()):
        _step(model, opt, dst, x, y)  # warm-up (allocator, momentum buffers)
    load_before = os.getloadavg()
    steps: dict[str, list[float]] = {k: [] for k in runs}
    updates: dict[str, list[float]] = {k: [] for k in args.algorithms}
    masking: dict[str, list[float]] = {k: [] for k in args.algorithms}
    check: dict[str, list[float]] = {k: [] for k in checks}
    for _ in range(args.rounds):
        for name, (model, opt, dst) in runs.items():
            steps[name].append(timed(lambda: _step(model, opt, dst, x, y), args.steps))
            if dst is not None:  # one update at a step inside GraNet's pruning phase and every update period
                updates[name].append(timed(lambda: dst.update(args.interval), 1))
                masking[name].append(timed(dst.apply_masks, 20))
        for name, (model, opt, dst) in checks.items() if args.check_steps else ():
            if dst is not None:
                dst.step_count = 0  # the check's last step is an update step
            check[name].append(timed(lambda: _step(model, opt, dst, x, y), args.check_steps))
    dense = statistics.median(steps["dense"])
    dense_check = statistics.median(check["dense"]) if args.check_steps else math.nan
    algorithms = {}
    for name in args.algorithms:
        step, update = statistics.median(steps[name]), statistics.median(updates[name])
        mask = statistics.median(masking[name])
        algorithms[name] = {
            "step_s": step,
            "update_s": update,
            "mask_s": mask,
            "composed_ratio": (dense + mask + update / args.interval) / dense,
            "step_ratio": step / dense,
            "ratio_at_interval": (step + update / args.interval) / dense,
            "measured_ratio": statistics.median(check[name]) / dense_check if args.check_steps else None,
            "step_rounds_s": steps[name],
            "update_rounds_s": updates[name],
            "mask_rounds_s": masking[name],
            "check_rounds_s": check.get(name, []),
        }
    result = {
        "arch": args.arch,
        "batch_size": args.batch_size,
        "image_size": args.size,
        "sparsity": args.sparsity,
        "interval": args.interval,
        "check_steps": args.check_steps,
        **device_info(device),
        "timer": args.timer,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "dense_step_s": dense,
        "dense_rounds_s": steps["dense"],
        "dense_check_rounds_s": check["dense"],
        "algorithms": algorithms,
        "target_ratio": 1.05,
    }
    print(json.dumps(result, indent=2))
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
