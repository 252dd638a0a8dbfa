"""Per-corruption CPU time of ``augrobust generate``'s corruption step against the reference, at 224 px.

For each of the 19 corruptions and 5 severities: augrobust's corruption step as ``generate`` runs it
(canonical per-image parameter draws, the batched kernel, uint8 floor; ``augrobust.data.generate._corrupt_block``)
on a batch of real photographs resized and cropped as ImageNet-C (``Resize(256)`` + ``CenterCrop(224)``), against
``imagecorruptions.corrupt`` + ``np.uint8`` per image on a sample. Then the pipeline parts per image: decode and
resize, JPEG encode (q85 optimize) and the atomic write. CPU time (``time.process_time``, one torch thread), so
that the ratios hold on a shared machine.

Usage: ``python benchmarks/generate_profile.py [--images 8] [--ref-images 1] [--dtype float64] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _sources(n: int) -> list[Image.Image]:
    import skimage.data

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = Image.fromarray(photos[i % len(photos)]).resize((667, 500), Image.BILINEAR)
        top, left = int(rng.integers(0, 126)), int(rng.integers(0, 168))
        buf = io.BytesIO()
        img.crop((left, top, left + 500, top + 375)).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--ref-images", type=int, default=1)
    parser.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    parser.add_argument("--severities", default="1,2,3,4,5")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from augrobust.benchmark.reference import load_imagecorruptions
    from augrobust.corruptions import get_corruption_names
    from augrobust.data.generate import _corrupt_block, _prepare, _write_jpeg

    ic = load_imagecorruptions()
    jpegs = _sources(args.images)
    with Image.open(io.BytesIO(jpegs[0])) as im:  # warm-up: the first resize imports torchvision's transforms
        _prepare(im.convert("RGB"), "imagenet-c")
    t = time.process_time()
    arrs = []
    for data in jpegs:
        with Image.open(io.BytesIO(data)) as im:
            arrs.append(np.asarray(_prepare(im.convert("RGB"), "imagenet-c"), dtype=np.uint8))
    decode = (time.process_time() - t) / len(jpegs)
    x = torch.stack([torch.from_numpy(a.copy()).permute(2, 0, 1) for a in arrs])
    keys = [f"k{i}" for i in range(len(arrs))]
    dtype = getattr(torch, args.dtype)
    sevs = [int(s) for s in args.severities.split(",")]
    names = args.only or list(get_corruption_names("all"))
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        t = time.process_time()
        for i, a in enumerate(arrs):
            _write_jpeg(Path(d) / f"{i}.JPEG", a)
        encode = (time.process_time() - t) / len(arrs)
        for name in names:
            kw = dict(seed=0, preset="imagenet", reference="hendrycks", device=torch.device("cpu"), dtype=dtype,
                      batch_size=16, frost_dir=None)  # fmt: skip
            _corrupt_block(x[:1], keys[:1], name, sevs[0], **kw)  # warm-up (caches, textures)
            row = {}
            for s in sevs:
                t = time.process_time()
                _corrupt_block(x, keys, name, s, **kw)
                ours = (time.process_time() - t) / len(arrs)
                ref = float("nan")
                if not args.no_reference:
                    t = time.process_time()
                    for a in arrs[: args.ref_images]:
                        np.uint8(ic.corrupt(a, severity=s, corruption_name=name))
                    ref = (time.process_time() - t) / args.ref_images
                row[s] = {"ours_ms": 1e3 * ours, "ref_ms": 1e3 * ref}
            o = sum(v["ours_ms"] for v in row.values()) / len(row)
            r = sum(v["ref_ms"] for v in row.values()) / len(row)
            rows[name] = {"ours_ms": o, "ref_ms": r, "ratio": r / o, "per_severity": row}
            print(f"{name:20s} ours {o:8.2f} ms  ref {r:8.2f} ms  ratio {r / o:6.1f}x  "
                  + " ".join(f"{v['ours_ms']:.1f}" for v in row.values()), flush=True)  # fmt: skip
    res = {"dtype": args.dtype, "images": args.images, "ref_images": args.ref_images, "load": os.getloadavg(),
           "decode_resize_ms": 1e3 * decode, "jpeg_encode_write_ms": 1e3 * encode, "corruptions": rows}  # fmt: skip
    print(f"decode+resize {1e3 * decode:.2f} ms/img, jpeg encode+write {1e3 * encode:.2f} ms/img, "
          f"load {os.getloadavg()}")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
