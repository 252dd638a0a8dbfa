"""End-to-end throughput of ``augrobust generate`` against the reference per-image pipeline, in the same run.

1. CIFAR-C: ``generate_dataset("synthetic:..", format="cifar-c", corruptions="all")`` (19 x 5) from N 32-px images,
   end to end (read, corrupt in float64, write parts, assemble the memory-mapped .npy files, manifest), with 1
   process and with 2 processes (``--shard 0/2`` and ``1/2`` at the same time); the time for 10,000 images is
   extrapolated linearly. The reference: ``imagecorruptions`` per image (as ``make_cifar_c.py`` loops) on a
   sample of images per corruption, extrapolated the same way.
2. ImageNet-C: images per second from 224-px-scale JPEG sources (real photographs, random crops 375 x 500)
   including decode, Resize(256) + CenterCrop(224), corruption, JPEG q85 optimize and writes, for the 15 common
   corruptions at severity 3, against the reference loop (PIL load, torchvision resize/crop, imagecorruptions,
   Pillow save) on a sample.

Under load (a shared machine) wall times are noisy: the ratios use CPU time (``time.process_time``) of the
single-threaded reference and of augrobust with one torch thread, in-process, after a warm-up.

On a GPU (``--device cuda``) the corruptions run there (decoding, hashing and the JPEG / ``.npy`` writes stay on
the host, as in ``augrobust generate --device cuda``); the CPU time of this process then misses the GPU's work, so
the throughput to read is the wall time (the device synchronised before each clock reading) and ``speedup_wall``
(reference CPU seconds, single-threaded, over augrobust's wall seconds). ``throughput`` sums up the wall images/s
of each layout (output images: source images x corruptions x severities).

Usage: ``python benchmarks/generate_throughput.py [--cifar-images 200] [--imagenet-images 16] [--ref-images 2]
[--device cuda] [--skip-scaling] [--dtypes float64]`` (``--ref-images 0`` skips the reference).
Writes ``benchmarks/results/generate_throughput.json``; the rendered numbers go in
``benchmarks/results/generate_throughput.md`` by hand, with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from augrobust.benchmark.timing import device_sync


def _photos_folder(root: Path, n: int) -> Path:
    """n JPEG sources of 500 x 375, random crops of scikit-image's photographs (quality 90, like ImageNet)."""
    import skimage.data
    from PIL import Image

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    rng = np.random.default_rng(0)
    for i in range(n):
        img = Image.fromarray(photos[i % len(photos)]).resize((667, 500), Image.BILINEAR)
        top, left = int(rng.integers(0, 500 - 375 + 1)), int(rng.integers(0, 667 - 500 + 1))
        (root / f"n{i % 4:08d}").mkdir(parents=True, exist_ok=True)
        img.crop((left, top, left + 500, top + 375)).save(root / f"n{i % 4:08d}" / f"img_{i:05d}.JPEG", quality=90)
    return root


def _cifar_ours(n: int, procs: int, tmp: Path, device: str) -> float:
    out = tmp / f"cifar_{procs}_{n}"
    code = (
        "import sys; from augrobust.data.generate import generate_dataset; "
        f"generate_dataset('synthetic:10', {str(out)!r}, format='cifar-c', corruptions='all', num_images={n}, "
        f"block_images=max(1, {n} // 4), shard=sys.argv[1], progress=False, batch_size=256, device={device!r})"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    shards = [f"{i}/{procs}" for i in range(procs)]
    running = [subprocess.Popen([sys.executable, "-c", code, s], env=env) for s in shards]
    assert all(p.wait() == 0 for p in running)
    if not (out / "manifest.json").is_file():  # two shards finished at once: a plain rerun assembles
        subprocess.run([sys.executable, "-c", code, "0/1"], env=env, check=True)
    return time.perf_counter() - start


def _cifar_ours_cpu(n: int, tmp: Path, device: torch.device) -> dict[str, float]:
    """In-process, after a warm-up: wall and CPU seconds for n images x 19 x 5 (CPU time is robust to load)."""
    from augrobust.data.generate import generate_dataset

    kw = dict(format="cifar-c", corruptions="all", progress=False, batch_size=256, device=device)
    generate_dataset("synthetic:10", tmp / "warm", num_images=min(4, n), **kw)
    sync = device_sync(device)
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    generate_dataset("synthetic:10", tmp / "cpu", num_images=n, block_images=max(1, n // 4), **kw)
    sync()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def _cifar_reference(sample: int) -> dict[str, float]:
    """Seconds per image per corruption (all 5 severities) of imagecorruptions on 32-px images."""
    from augrobust.benchmark.reference import load_imagecorruptions
    from augrobust.data import from_spec

    ic = load_imagecorruptions()
    ds = from_spec("synthetic:10", train=False, num_images=sample)
    images = [ds[i][0].permute(1, 2, 0).numpy().copy() for i in range(sample)]
    per = {}
    for name in ic.get_corruption_names("all"):
        start = time.process_time()
        for img in images:
            for s in range(1, 6):
                np.uint8(ic.corrupt(img, severity=s, corruption_name=name))
        per[name] = (time.process_time() - start) / sample
    return per


def _imagenet_ours(src: Path, tmp: Path, n: int, dtype: str, device: torch.device) -> tuple[float, float]:
    from augrobust.corruptions import get_corruption_names
    from augrobust.data.generate import generate_dataset

    common = list(get_corruption_names("common"))
    # Warm-up on 2 images (imports, frost textures, kernel caches): a one-time cost that a real run amortises.
    generate_dataset(f"folder:{src}", tmp / f"warm_{dtype}", format="imagenet-c", corruptions=common, severities=(3,),
                     num_images=min(2, n), workers=0, progress=False, dtype=dtype, device=device)  # fmt: skip
    sync = device_sync(device)
    sync()
    start, cpu = time.perf_counter(), time.process_time()
    generate_dataset(f"folder:{src}", tmp / f"inc_{dtype}", format="imagenet-c", corruptions=common, severities=(3,),
                     workers=0, batch_size=16, progress=False, dtype=dtype, device=device)  # fmt: skip
    # workers=0: decoding in this process, so that its CPU time is counted (the JPEG thread's too).
    sync()
    return (time.perf_counter() - start) / (n * 15), (time.process_time() - cpu) / (n * 15)


def _imagenet_reference(src: Path, tmp: Path, sample: int) -> dict[str, float]:
    import io

    import torchvision.transforms as T
    from PIL import Image

    from augrobust.benchmark.reference import load_imagecorruptions

    ic = load_imagecorruptions()
    paths = sorted(src.rglob("*.JPEG"))[:sample]
    per = {}
    for name in ic.get_corruption_names("common"):
        start = time.process_time()
        for p in paths:
            with open(p, "rb") as f:
                img = Image.open(f).convert("RGB")
            img = T.Compose([T.Resize(256), T.CenterCrop(224)])(img)
            out = np.uint8(ic.corrupt(np.asarray(img), severity=3, corruption_name=name))
            buf = io.BytesIO()
            Image.fromarray(out).save(buf, format="JPEG", quality=85, optimize=True)
            (tmp / f"ref_{name}_{p.name}").write_bytes(buf.getvalue())
        per[name] = (time.process_time() - start) / sample
    return per


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar-images", type=int, default=200, help="source images of the CIFAR-C runs (>= 1)")
    parser.add_argument("--imagenet-images", type=int, default=16, help="JPEG sources of the ImageNet-C runs (>= 1)")
    parser.add_argument("--ref-images", type=int, default=2, help="reference sample per corruption; 0 skips it")
    parser.add_argument("--device", default="cpu", help="where the corruptions run (cpu, cuda, cuda:1...)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of this process (default 1)")
    parser.add_argument("--skip-scaling", action="store_true",
                        help="skip the CIFAR-C end-to-end runs in 1 and 2 processes (the extrapolation to 10,000)")
    parser.add_argument("--dtypes", nargs="+", choices=("float64", "float32"), default=["float64", "float32"],
                        help="ImageNet-C compute dtypes to time (default both)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "generate_throughput.json"))
    args = parser.parse_args(argv)
    for name in ("cifar_images", "imagenet_images", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.ref_images < 0:
        parser.error(f"--ref-images must be 0 (no reference) or more, got {args.ref_images}")
    device = torch.device(args.device)

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res: dict[str, object] = {
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                        "threads": args.threads, "load_average_start": os.getloadavg()},  # fmt: skip
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
            "cifar_images": args.cifar_images,
        }
        n = args.cifar_images
        ref = _cifar_reference(args.ref_images) if args.ref_images else None
        ref_95 = sum(ref.values()) if ref else None  # CPU seconds per source image, 19 corruptions x 5 severities
        cpu = _cifar_ours_cpu(2 * n, tmp / "d", device)
        res["cifar_c_cpu_time"] = {
            "ours_in_process": cpu, "ours_cpu_s_per_image_95": cpu["cpu_s"] / (2 * n),
            "ours_10k_cpu_s": cpu["cpu_s"] / (2 * n) * 10_000, "reference_cpu_s_per_image_95": ref_95,
            "reference_10k_cpu_s": ref_95 * 10_000 if ref else None,
            "ratio": ref_95 / (cpu["cpu_s"] / (2 * n)) if ref else None,
            "speedup_wall": ref_95 / (cpu["wall_s"] / (2 * n)) if ref else None,
        }  # fmt: skip
        if not args.skip_scaling:
            c1 = _cifar_ours(n, 1, tmp / "a", args.device)
            c1_2n = _cifar_ours(2 * n, 1, tmp / "b", args.device)
            c2_2n = _cifar_ours(2 * n, 2, tmp / "c", args.device)
            # Two-point linear model t = fixed + per_image * images (fixed: interpreter start, imports, assembly).
            per_image = (c1_2n - c1) / n
            fixed = c1 - per_image * n
            per_image_2 = (c2_2n - fixed) / (2 * n)
            res["cifar_c"] = {
                "ours_1proc_s": {str(n): c1, str(2 * n): c1_2n}, "ours_2proc_s": {str(2 * n): c2_2n},
                "fixed_s": fixed, "per_image_s_1proc": per_image, "per_image_s_2proc": per_image_2,
                "ours_1proc_10k_extrapolated_s": fixed + per_image * 10_000,
                "ours_2proc_10k_extrapolated_s": fixed + per_image_2 * 10_000,
                "reference_s_per_image_all_95": ref_95,
                "reference_10k_extrapolated_s": ref_95 * 10_000 if ref else None,
                "reference_per_corruption_s_per_image_5_severities": ref,
            }  # fmt: skip
        src = _photos_folder(tmp / "src", args.imagenet_images)
        iref = _imagenet_reference(src, tmp, min(args.ref_images, args.imagenet_images)) if args.ref_images else None
        ref_mean = sum(iref.values()) / len(iref) if iref else None  # CPU s per image (single-threaded reference)
        inc: dict[str, object] = {}
        throughput = {}  # wall time, output images (source images x corruptions x severities) per second
        for dtype in args.dtypes:
            wall, cpu_s = _imagenet_ours(src, tmp, args.imagenet_images, dtype, device)
            key = "" if dtype == "float64" else f"{dtype}_"  # float64: the keys of the earlier runs' JSON
            inc[f"ours_{key}wall_images_per_s"] = throughput[f"imagenet_c_{dtype}_images_per_s"] = 1 / wall
            inc[f"ours_{key}cpu_images_per_s"] = 1 / cpu_s
            inc[f"speedup_{key}cpu"] = ref_mean / cpu_s if iref else None
            inc[f"speedup_{key}wall"] = ref_mean / wall if iref else None
        inc.update({
            "reference_cpu_images_per_s": 1 / ref_mean if iref else None,
            "reference_per_corruption_s_per_image": iref, "sources": args.imagenet_images,
            "reference_sample": min(args.ref_images, args.imagenet_images),
        })  # fmt: skip
        res["imagenet_c"] = inc
        res["throughput"] = {
            "device": str(device),
            "cifar_c_images_per_s": 2 * n * 95 / cpu["wall_s"],
            "cifar_c_source_images_per_s": 2 * n / cpu["wall_s"],
            **throughput,
        }
        res["machine"]["load_average_end"] = os.getloadavg()  # type: ignore[index]
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
