"""Per-step cost of DAMP vs plain SGD at the same batch size (torch.utils.benchmark, JSON output).

One step = forward + cross-entropy + backward + SGD (Nesterov) update, on a fixed random batch. DAMP runs
the same single pass with per-sub-batch perturbed weights (M sub-batches, sigma 0.2) and whole-batch BN.
The two are measured in alternating rounds so that load on a shared machine hits both alike; the ratio of
the medians is reported.

    python benchmarks/damp_cost.py --arch resnet18_cifar --batch-size 128 --device cpu --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from augrobust.benchmark.timing import device_info, device_sync, write_json
from augrobust.train import DAMP, build_model


def make_step(model, optimizer, x, y, damp):
    def step() -> None:
        logits = damp.forward(model, x) if damp is not None else model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet18_cifar")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--size", type=int, default=32, help="image side")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--damp-m", type=int, default=8)
    p.add_argument("--damp-sigma", type=float, default=0.2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--rounds", type=int, default=5, help="alternating SGD/DAMP measurement rounds")
    p.add_argument("--steps", type=int, default=2, help="steps per measurement")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--timer",
        choices=("wall", "process"),
        default="wall",
        help="'process' (CPU only, use with --threads 1): CPU time of this process, robust to other load",
    )
    p.add_argument("--json", default=None, help="write the result here")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.timer == "process" and device.type != "cpu":
        p.error("--timer process measures CPU time; use it only with --device cpu")
    timer_fn = time.process_time if args.timer == "process" else time.perf_counter
    torch.manual_seed(0)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(args.batch_size, 3, args.size, args.size, device=device)
    y = torch.randint(0, args.num_classes, (args.batch_size,), device=device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    if args.channels_last:
        x = x.contiguous(memory_format=memory_format)
    timers = {}
    for name, damp in (("sgd", None), ("damp", DAMP(args.damp_sigma, args.damp_m, generator=gen))):
        model = build_model(args.arch, args.num_classes).to(device, memory_format=memory_format).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
        step = make_step(model, opt, x, y, damp)
        step()  # warm-up (allocator, cuDNN autotune)
        timers[name] = benchmark.Timer(
            stmt="step(); sync()",
            globals={"step": step, "sync": device_sync(device)},
            num_threads=torch.get_num_threads(),
            timer=timer_fn,
            label="train step",
            sub_label=name,
        )
    times: dict[str, list[float]] = {"sgd": [], "damp": []}
    for _ in range(args.rounds):
        for name, timer in timers.items():
            times[name].append(timer.timeit(args.steps).median)
    sgd, damp_t = statistics.median(times["sgd"]), statistics.median(times["damp"])
    result = {
        "arch": args.arch,
        "batch_size": args.batch_size,
        "image_size": args.size,
        "damp_m": args.damp_m,
        "damp_sigma": args.damp_sigma,
        **device_info(device),
        "timer": args.timer,
        "sgd_step_s": sgd,
        "damp_step_s": damp_t,
        "ratio": damp_t / sgd,
        "sgd_rounds_s": times["sgd"],
        "damp_rounds_s": times["damp"],
        "target_ratio": 1.15,
    }
    print(json.dumps(result, indent=2))
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
