"""Frames per second of every ImageNet-P sequence, augrobust vs the reference's frame loop, in one run.

The reference is the scripts' per-image frame loop (hendrycks/robustness ImageNet-P/create_p/make_*_p.py) as
transcribed in tests/test_perturbations.py (Pillow, NumPy, SciPy, scikit-image, OpenCV; tilt calls the installed
cv2.warpPerspective; the random draws are made inside the timed loop on both sides; motion blur and snow use imagecorruptions' NumPy port of ImageMagick's blur, the stand-in
the tests use, since Wand is not installable), without the PNG writes and the ffmpeg encoding. augrobust: one
``perturb`` call on the batch (the random draws included). 32 px: the CIFAR-10-P variant, 8 images of 32 x 32;
224 px: the ImageNet-P variant, 1 image of 256 x 256 cropped to 224. One warm-up call, then the median of
``--repeats`` timed calls per side.

Usage: PYTHONPATH=. python benchmarks/perturbation_throughput.py [--out benchmarks/results/perturbation_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augrobust.perturbations import get_perturbation_names, get_spec, perturb  # noqa: E402
from tests.oracle import photo  # noqa: E402
from tests.test_perturbations import ref_frames, shared_draws, tilt_forward  # noqa: E402


def reference_frames(name: str, images: np.ndarray, work: torch.Tensor, variant: str) -> None:
    _, draws = shared_draws(name, work, variant, 1, 0)  # the random draws are part of the reference's loop too
    for b, im in enumerate(images):
        if name == "tilt":  # the real OpenCV call, not the test's NumPy transcription
            import cv2

            h, w = im.shape[:2]
            k = 0.75 if variant == "cifar" else 1.0
            for i in range(31):
                z = cv2.warpPerspective(im, tilt_forward(w, h, k * (i - 15)), (w, h))
                if variant == "imagenet":
                    np.asarray(Image.fromarray(z).crop((16, 16, 240, 240)))
        else:
            ref_frames(name, Image.fromarray(im), variant, 1, draws[b])


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/perturbation_throughput.json")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--names", nargs="*", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    load_before = os.getloadavg()
    setups = {
        32: ("cifar", np.stack([photo(n, (32, 32)) for n in ("astronaut", "coffee", "chelsea", "rocket")] * 2)),
        224: ("imagenet", np.stack([photo("chelsea", (256, 256))])),
    }
    for name in args.names or get_perturbation_names():
        for size, (variant, images) in setups.items():
            u = torch.from_numpy(images.copy()).permute(0, 3, 1, 2).contiguous()
            spec = get_spec(name)
            work = u if spec.geometric or variant == "cifar" else u[..., 16:240, 16:240]
            g = torch.Generator().manual_seed(0)
            ours = timed(lambda: perturb(u, name, 1, variant=variant, generator=g), args.repeats)
            ref = timed(lambda: reference_frames(name, images, work, variant), args.repeats)
            frames = len(images) * spec.frames[variant]
            row = {
                "perturbation": name,
                "px": size,
                "images": len(images),
                "frames": frames,
                "ours_frames_per_s": frames / ours,
                "reference_frames_per_s": frames / ref,
                "speedup": ref / ours,
            }
            rows.append(row)
            print(f"{name:15s} {size:4d}px  ours {row['ours_frames_per_s']:9.1f} f/s  "
                  f"reference {row['reference_frames_per_s']:9.1f} f/s  x{row['speedup']:.2f}", flush=True)  # fmt: skip
    meta = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "repeats": args.repeats,
    }
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
