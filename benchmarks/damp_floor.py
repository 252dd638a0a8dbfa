"""DAMP's step against SGD's and against its floor: SGD's step plus the noise draws and one multiply per weight.

resnet18_cifar, batch 128 of 32-px images, Nesterov SGD, DAMP sigma 0.2, M 8, on the CPU. Each quantity is the
fastest of ``--repeats`` timings after a warm-up (process time with one thread, wall time otherwise), so that a
busy moment of the machine does not enter the ratio; ``damp_cost.py`` reports the median of interleaved rounds
instead. The floor is what DAMP cannot avoid: ``M x`` the perturbed weights' standard normals
(:func:`augrobust.train.damp.standard_normal_`) and ``w * (1 + sigma z)``.

    python benchmarks/damp_floor.py --threads 1 --json benchmarks/results/damp_floor_cpu1.json
    python benchmarks/damp_floor.py --threads 2 --json benchmarks/results/damp_floor_cpu2.json
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from augrobust.benchmark.timing import write_json
from augrobust.train import DAMP, build_model
from augrobust.train.damp import damp_parameter_names, standard_normal_


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet18_cifar")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    model = build_model(args.arch, num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x, y = torch.rand(args.batch_size, 3, 32, 32), torch.randint(0, 10, (args.batch_size,))
    damp = DAMP(0.2, 8, torch.Generator().manual_seed(0))

    def step(with_damp: bool) -> None:
        logits = damp.forward(model, x) if with_damp else model(x)
        F.cross_entropy(logits, y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def fastest(fn) -> float:  # noqa: ANN001
        fn()
        times = []
        for _ in range(args.repeats):
            start = clock()
            fn()
            times.append(clock() - start)
        return min(times)

    weights = [model.get_parameter(n).detach() for n in damp_parameter_names(model)]
    noise = [torch.empty((8, *w.shape)) for w in weights]
    generator = torch.Generator().manual_seed(1)
    sgd = fastest(lambda: step(False))
    damp_step = fastest(lambda: step(True))
    draws = fastest(lambda: [standard_normal_(z, generator) for z in noise])
    multiply = fastest(lambda: [torch.addcmul(w, w, z, value=0.2) for w, z in zip(weights, noise)])
    result = {
        "arch": args.arch, "batch_size": args.batch_size, "threads": args.threads,
        "timer": "process" if args.threads == 1 else "wall", "repeats": args.repeats,
        "sgd_step_s": sgd, "damp_step_s": damp_step, "draws_s": draws, "multiply_s": multiply,
        "ratio": damp_step / sgd, "floor_ratio": (sgd + draws + multiply) / sgd, "torch": torch.__version__,
    }  # fmt: skip
    print(
        f"SGD {sgd:.3f} s, DAMP {damp_step:.3f} s: {result['ratio']:.3f}x; floor (draws {draws:.3f} s + "
        f"multiply {multiply:.3f} s) {result['floor_ratio']:.3f}x"
    )
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
