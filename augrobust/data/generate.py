"""Write corrupted benchmark datasets: ImageNet-C, Tiny-ImageNet-C and CIFAR-10/100-C layouts, resumable and sharded.

:func:`generate_dataset` (the ``augrobust generate`` command) reads a source through
:func:`augrobust.data.from_spec`, corrupts every image with every requested corruption and severity, and writes
the layouts the original scripts wrote (``hendrycks/robustness``, ``ImageNet-C/create_c``):

=================  ============================================================================================
format             layout
=================  ============================================================================================
``imagenet-c``     ``Resize(256)`` + ``CenterCrop(224)`` (torchvision, PIL bilinear), corruption, ``np.uint8``
                   truncation, Pillow JPEG ``quality=85, optimize=True``; ``<corruption>/<severity>/<class>/<file>``
                   keeping the source file names (a non-JPEG name gets ``.JPEG`` in place of its suffix)
``tinyimagenet-c`` as ``imagenet-c`` with ``Resize((64, 64))`` and the ``tinyimagenet`` table
``cifar-c``        ``<corruption>.npy``: ``(5N, H, W, 3)`` uint8, severities 1..5 stacked; ``labels.npy``: the N
                   labels repeated 5 times (uint8 when they fit), as ``make_cifar_c.py``
=================  ============================================================================================

How the bytes are made independent of the way they were computed:

* **Canonical randomness**: each image's parameters are drawn from its own generator
  (:func:`augrobust.data.canonical.canonical_seed` of dataset seed, image key, corruption, severity), then the
  per-image parameters are stacked and the corruption is applied batched on the device (in float64 by default,
  as the reference computes, then floored to uint8 as ``np.uint8`` does).
* **Units**: the images are cut into fixed blocks in source order (64 images for ``imagenet-c``, 256 for
  ``tinyimagenet-c``, 1,000 for ``cifar-c``); a unit is (corruption, severity, block). Every output file, unit
  record and ``.npy`` part is written atomically under its final name only when complete
  (:mod:`augrobust._io`); a rerun skips the finished units, so a run killed at any moment (SIGKILL included)
  and run again writes the same bytes as an uninterrupted run.
* **Shards**: block ``b`` belongs to shard ``b % N`` (``shard=(I, N)``, or torchrun's ``RANK`` /
  ``WORLD_SIZE``). The process that finds every unit done (under torchrun: rank 0 after a barrier) assembles
  the ``.npy`` files (memory-mapped, never all in RAM) and writes ``manifest.json``
  (:mod:`augrobust.data.manifest`).
* **Pipeline**: decoding (and resizing) in ``DataLoader`` workers, corruption batched on the device, JPEG
  encoding and writing in a thread pool (Pillow's encoder releases the GIL).

Bad source images (undecodable) are reported by path and reason and listed in the manifest; the run then
raises :class:`~augrobust.errors.AugrobustValueError` unless ``skip_bad=True``.

Example:
    >>> import tempfile, numpy as np
    >>> from augrobust.data.generate import generate_dataset
    >>> out = tempfile.mkdtemp()
    >>> result = generate_dataset("synthetic:10", out, format="cifar-c", corruptions=["contrast"], progress=False)
    >>> np.load(f"{out}/contrast.npy").shape, np.load(f"{out}/labels.npy").shape, result.complete
    ((10, 32, 32, 3), (10,), True)
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Subset

from augrobust._checks import check_bool, check_choice, check_count, check_preset, check_reference, check_severities
from augrobust._io import atomic_path, atomic_save, atomic_write_bytes, atomic_write_text, remove_stale_temporaries
from augrobust._progress import progress_bar
from augrobust.data.canonical import SEED_RULE, canonical_generator
from augrobust.data.folder import ImageFolderDataset
from augrobust.data.manifest import MANIFEST_NAME, read_manifest, sha256_bytes, sha256_file, write_manifest
from augrobust.data.perturbation_files import P_FORMATS, P_VARIANTS, encode_mp4, is_noise, require_av, set_name
from augrobust.data.spec import from_spec
from augrobust.errors import AugrobustValueError

__all__ = ["BLOCK_IMAGES", "FORMATS", "GenerateResult", "P_SEED_RULE", "generate_dataset", "parse_shard"]

#: The output layouts.
FORMATS: tuple[str, ...] = ("imagenet-c", "tinyimagenet-c", "cifar-c", *P_FORMATS)

#: Images per block (the unit of work and of sharding) for each format. Part of the on-disk state: fixed.
BLOCK_IMAGES: dict[str, int] = {
    "imagenet-c": 64, "tinyimagenet-c": 256, "cifar-c": 1000, "imagenet-p": 16, "tinyimagenet-p": 64, "cifar-p": 250,
}  # fmt: skip

#: The seed rule of the P formats: the perturbations' own canonical generators, so files equal on-the-fly frames.
P_SEED_RULE = (
    "generator of image k (its index in source order) = torch.Generator(device).manual_seed(perturbation_seed(seed, "
    "k, perturbation, difficulty)), perturbation_seed = int.from_bytes(sha256(json.dumps(['augrobust-p', seed, k, "
    "perturbation, difficulty], separators=(',', ':')).encode()).digest()[:8], 'big') & (2**63 - 1); frames = "
    "augrobust.perturb(x, perturbation, difficulty, variant=, generator=[generators]); the sequences whose "
    "difficulty is a stride are made at difficulty 1"
)

_STATE = ".generate"  # hidden folder of unit records and .npy parts; removed once the manifest is written
_JPEG_SUFFIXES = (".jpeg", ".jpg")
_AUTO_PRESET = {"imagenet-c": "imagenet", "tinyimagenet-c": "tinyimagenet"}


@dataclass
class GenerateResult:
    """What one call of :func:`generate_dataset` did.

    Attributes:
        out: the output folder.
        images: corrupted images this process wrote (image x corruption x severity).
        seconds: wall time of the call.
        complete: every unit of every shard is done and ``manifest.json`` is written.
        shard: ``(index, count)`` of this process.
        bad: bad source images seen (``{"path", "reason"}``), of the whole dataset when ``complete``.
        pending_units: units of other shards still to do (0 when ``complete``).
    """

    out: Path
    images: int = 0
    seconds: float = 0.0
    complete: bool = False
    shard: tuple[int, int] = (0, 1)
    bad: list[dict[str, str]] = field(default_factory=list)
    pending_units: int = 0

    def summary(self) -> str:
        """One line: images, time, rate, bad sources, state."""
        rate = self.images / self.seconds if self.seconds > 0 else 0.0
        shard = f" (shard {self.shard[0]}/{self.shard[1]})" if self.shard[1] > 1 else ""
        state = (
            f"complete, {MANIFEST_NAME} written"
            if self.complete
            else f"{self.pending_units} units of other shards pending (their last run or a plain rerun finishes it)"
        )
        return (
            f"generated {self.images} images in {self.seconds:.1f} s ({rate:.1f} images/s){shard}; "
            f"{len(self.bad)} bad source images; {state}; out {self.out}"
        )


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``.

    Example:
        >>> parse_shard("1/4")
        (1, 4)
    """
    try:
        i, n = (int(t) for t in str(text).split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise AugrobustValueError(f"a shard is 'I/N' with 0 <= I < N (e.g. '0/2' and '1/2'), got {text!r}.")
    return i, n


# ----------------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class _Item:
    key: str  # canonical key
    label: int
    out_name: str  # class/file for the JPEG layouts
    path: str | None  # source file, or None for an indexed (tensor) source
    index: int  # index in the tensor source


def _resolve_folder(ds: Dataset[Any]) -> tuple[ImageFolderDataset, list[int]] | None:
    if isinstance(ds, ImageFolderDataset):
        return ds, list(range(len(ds)))
    if isinstance(ds, Subset) and isinstance(ds.dataset, ImageFolderDataset):
        return ds.dataset, list(ds.indices)
    return None


def _items(ds: Dataset[Any]) -> tuple[list[_Item], list[str]]:
    folder = _resolve_folder(ds)
    items: list[_Item] = []
    if folder is not None:
        base, indices = folder
        seen: dict[str, str] = {}
        for i in indices:
            path, label = base.samples[i]
            rel = path.relative_to(base.root)
            key = rel.as_posix()
            out_rel = rel if rel.suffix.lower() in _JPEG_SUFFIXES else rel.with_suffix(".JPEG")
            out_name = out_rel.as_posix()
            if out_name in seen:
                raise AugrobustValueError(
                    f"{seen[out_name]!r} and {key!r} would both be written as {out_name!r}; rename one of them."
                )
            seen[out_name] = key
            items.append(_Item(key, int(label), out_name, str(path), i))
        return items, list(base.classes)
    targets = getattr(ds, "targets", None)
    classes = getattr(ds, "classes", None)
    for i in range(len(ds)):  # type: ignore[arg-type]
        label = int(targets[i]) if targets is not None else int(ds[i][1])
        cls = str(classes[label]) if classes is not None and label < len(classes) else str(label)
        items.append(_Item(f"test/{i:06d}", label, f"{cls}/{i:06d}.JPEG", None, i))
    return items, [str(c) for c in classes] if classes is not None else []


def _prepare(im: Image.Image, fmt: str) -> Image.Image:
    """The reference's source transform (torchvision on PIL: bilinear, antialiased)."""
    import torchvision.transforms.functional as TF

    if fmt == "imagenet-c":
        return TF.center_crop(TF.resize(im, 256), 224)
    if fmt == "tinyimagenet-c":
        return TF.resize(im, [64, 64])
    if fmt == "imagenet-p":  # the P scripts keep the uncropped Resize(256) image; perturb() crops the frames
        return TF.resize(im, 256)
    if fmt == "tinyimagenet-p":
        return TF.resize(im, 64)
    return im


class _Blocks(Dataset[dict[str, Any]]):
    """Item ``j``: the decoded images of block ``blocks[j]`` (runs in DataLoader workers)."""

    def __init__(self, source: Dataset[Any], items: list[_Item], blocks: list[int], size: int, fmt: str) -> None:
        self.source, self.items, self.blocks, self.size, self.fmt = source, items, blocks, size, fmt

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, j: int) -> dict[str, Any]:
        b = self.blocks[j]
        chosen = range(b * self.size, min((b + 1) * self.size, len(self.items)))
        images, good, bad = [], [], []
        for k in chosen:
            item = self.items[k]
            try:
                if item.path is not None:
                    with Image.open(item.path) as im:
                        pil = im.convert("RGB")
                else:
                    pil = Image.fromarray(self.source[item.index][0].permute(1, 2, 0).numpy())
                arr = np.asarray(_prepare(pil, self.fmt), dtype=np.uint8)
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
                bad.append({"path": item.path or item.key, "reason": f"{type(e).__name__}: {e}"})
                continue
            images.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
            good.append(k)
        shapes = {tuple(t.shape) for t in images}
        if self.fmt in ("imagenet-p", "tinyimagenet-p"):  # photographs of several sizes: grouped by size later
            return {"block": b, "images": images, "good": good, "bad": bad}
        if len(shapes) > 1:
            raise AugrobustValueError(
                f"block {b} holds images of several sizes {sorted(shapes)}; the {self.fmt} layout needs one size: "
                "resize the source images first, or use --format imagenet-c / imagenet-p."
            )
        batch = torch.stack(images) if images else torch.empty(0, 3, 1, 1, dtype=torch.uint8)
        return {"block": b, "images": batch, "good": good, "bad": bad}


def _identity(x: Any) -> Any:
    return x


def _save_npy(arr: np.ndarray, f: Any) -> None:
    np.save(f, arr, allow_pickle=False)


# ------------------------------------------------------------------------------------------------ the generator


class _Layout:
    def __init__(self, out: Path, fmt: str) -> None:
        self.out, self.fmt, self.state = out, fmt, out / _STATE

    def block_record(self, b: int) -> Path:
        return self.state / "blocks" / f"{b:06d}.json"

    def unit_record(self, c: str, s: int, b: int) -> Path:
        return self.state / "units" / c / str(s) / f"{b:06d}.json"

    def part(self, c: str, s: int, b: int) -> Path:
        return self.state / "parts" / c / str(s) / f"{b:06d}.npy"

    def final_npy(self, c: str) -> Path:
        return self.out / f"{c}.npy"

    def unit_done(self, c: str, s: int, b: int) -> bool:
        if self.fmt in ("cifar-c", "cifar-p"):
            return self.final_npy(c).is_file() or self.part(c, s, b).is_file()
        return self.unit_record(c, s, b).is_file()


def _encode_jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=85, optimize=True)
    return buf.getvalue()


def _write_jpeg(path: Path, arr: np.ndarray) -> str:
    data = _encode_jpeg(arr)
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def _versions() -> dict[str, str]:
    import PIL
    import torchvision

    import augrobust

    return {
        "augrobust": augrobust.__version__,
        "torch": torch.__version__.split("+")[0],
        "torchvision": torchvision.__version__.split("+")[0],
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
    }


def _corruption_names(corruptions: str | Sequence[str]) -> list[str]:
    from augrobust.corruptions import get_corruption_names, registered_names

    if isinstance(corruptions, str):
        return list(get_corruption_names(corruptions))
    names = list(corruptions)
    known = set(registered_names())
    unknown = [n for n in names if n not in known]
    if unknown or not names or len(set(names)) != len(names):
        raise AugrobustValueError(
            f"corruptions must be distinct registered names, got {names!r}"
            f"{f' (unknown: {unknown})' if unknown else ''}; valid: {', '.join(sorted(known))}."
        )
    return names


# Elements per corruption call on the CPU (~2.5 MB of float64: 2 images at 224 px, 104 at 32 px).
_CPU_CALL_ELEMENTS = 320_000


def _corrupt_block(
    x: torch.Tensor, keys: list[str], name: str, severity: int, *, seed: int, preset: str, reference: str,
    device: torch.device, dtype: torch.dtype, batch_size: int, frost_dir: str | None,
) -> np.ndarray:  # fmt: skip
    """(n, 3, H, W) uint8 on ``device`` -> (n, H, W, 3) uint8 on the host, each image with its canonical draw."""
    import augrobust

    shape = (1, *x.shape[1:])
    per_image = [
        augrobust.sample_corruption_params(
            name, shape, severity, preset=preset, reference=reference,
            generator=canonical_generator(seed, key, name, severity), device="cpu", frost_dir=frost_dir,
        )
        for key in keys
    ]  # fmt: skip
    params = {k: torch.cat([p[k] for p in per_image]).to(device) for k in (per_image[0] if per_image else {})}
    outs = []
    # On the CPU, cache-sized calls: the kernels' whole-batch passes then stay in L2 (224 px float64: 1.2-1.9x
    # faster per corruption with 2 images per call than with 16). The bytes do not depend on it (per-image params).
    step = batch_size if device.type != "cpu" else min(batch_size, max(1, _CPU_CALL_ELEMENTS // math.prod(x.shape[1:])))
    for i in range(0, x.shape[0], step):
        xf = x[i : i + step].to(dtype).div_(255.0)
        y = augrobust.corrupt(
            xf, name, severity, preset=preset, reference=reference,
            params={k: v[i : i + step] for k, v in params.items()}, frost_dir=frost_dir,
        )  # fmt: skip
        # np.uint8(clip(y, 0, 1) * 255): a floor, as the reference.
        outs.append(y.mul(255.0).floor_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).cpu())
    return torch.cat(outs).numpy() if outs else np.empty((0, *x.shape[2:], 3), np.uint8)


def _perturbation_names(perturbations: str | Sequence[str]) -> list[str]:
    from augrobust.perturbations import get_perturbation_names

    known = get_perturbation_names("all")
    if isinstance(perturbations, str):
        if perturbations in ("test", "validation", "all"):
            return get_perturbation_names(perturbations)
        perturbations = [p for p in perturbations.split(",") if p]
    names = list(perturbations)
    unknown = [n for n in names if n not in known]
    if unknown or not names or len(set(names)) != len(names):
        raise AugrobustValueError(
            f"perturbations must be 'test', 'validation', 'all' or distinct names, got {names!r}"
            f"{f' (unknown: {unknown})' if unknown else ''}; valid: {', '.join(known)}."
        )
    return names


def _perturb_block(
    images: list[torch.Tensor], indices: list[int], name: str, difficulty: int, *, seed: int, variant: str,
    device: torch.device, batch_size: int,
) -> list[np.ndarray]:  # fmt: skip
    """Each image's sequence as ``(T, H, W, 3)`` uint8, drawn from its canonical generator; batched by image size."""
    from augrobust.perturbations import perturb, perturbation_generators

    out: list[np.ndarray | None] = [None] * len(images)
    groups: dict[tuple[int, ...], list[int]] = {}
    for j, t in enumerate(images):
        groups.setdefault(tuple(t.shape), []).append(j)
    for members in groups.values():
        for i in range(0, len(members), batch_size):
            chunk = members[i : i + batch_size]
            x = torch.stack([images[j] for j in chunk]).to(device)
            gens = perturbation_generators(name, difficulty, [indices[j] for j in chunk], seed=seed, device=device)
            frames = perturb(x, name, difficulty, variant=variant, generator=gens).permute(0, 1, 3, 4, 2).cpu().numpy()
            for j, f in zip(chunk, frames):
                out[j] = f
    return out  # type: ignore[return-value]


def _write_mp4(path: Path, frames: np.ndarray, noise: bool) -> str:
    data = encode_mp4(frames, noise=noise)
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def generate_dataset(
    data: str,
    out: str | os.PathLike[str],
    *,
    format: str,
    corruptions: str | Sequence[str] = "common",
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    preset: str = "auto",
    reference: str = "auto",
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: str = "float64",
    shard: tuple[int, int] | str | None = None,
    batch_size: int = 64,
    workers: int = 0,
    num_images: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    frost_dir: str | os.PathLike[str] | None = None,
    block_images: int | None = None,
    perturbations: str | Sequence[str] = "test",
    difficulties: Sequence[int] = (1, 2, 3),
) -> GenerateResult:
    """Generate (or finish generating) a corrupted dataset in ``out``; see the module for the layouts and rules.

    Args:
        data: a data spec (``folder:DIR``, ``cifar10:DIR``, ``cifar100:DIR``, ``synthetic:N``); the test split.
        out: output folder (created; a rerun with the same content arguments continues it).
        format: ``"imagenet-c"``, ``"tinyimagenet-c"``, ``"cifar-c"``, or the ImageNet-P layouts ``"imagenet-p"``,
            ``"tinyimagenet-p"`` (MP4, needs PyAV: ``pip install 'augrobust[video]'``) and ``"cifar-p"``
            (:mod:`augrobust.data.perturbation_files`).
        corruptions: a subset name (``"common"``, ``"all"``, ...) or a list of names.
        severities: severities in 1..5 (``cifar-c`` needs all five, the layout stacks them).
        preset: severity table, or ``"auto"``: ``imagenet`` for ``imagenet-c``, ``tinyimagenet`` for
            ``tinyimagenet-c``, by image side for ``cifar-c`` (32: ``cifar``, 64: ``tinyimagenet``, else
            ``imagenet``).
        reference: ``"hendrycks"``, ``"imagecorruptions"`` or ``"auto"`` (``hendrycks``: the scripts that built
            the released datasets).
        seed: dataset seed of the canonical per-image draws.
        device: where the corruptions run (``"cuda"`` under torchrun: ``cuda:LOCAL_RANK``).
        dtype: ``"float64"`` (as the reference computes; default) or ``"float32"`` (faster, may differ by one
            grey level on a few pixels).
        shard: ``(I, N)`` or ``"I/N"``: do the blocks ``b`` with ``b % N == I`` only. Default: torchrun's
            ``RANK`` / ``WORLD_SIZE`` when set, else the whole dataset.
        batch_size: images per corruption call on the device (the bytes do not depend on it).
        workers: DataLoader worker processes decoding the source, and threads encoding JPEGs (0: in-process
            decoding, one encoder thread).
        num_images: only the first ``num_images`` source images.
        skip_bad: accept undecodable source images (listed in the manifest) instead of raising at the end.
        progress: show a progress bar (images/s, ETA).
        frost_dir: folder of the frost textures (default: as :func:`augrobust.corrupt`).
        block_images: images per block (default :data:`BLOCK_IMAGES` of the format); smaller blocks mean
            finer resumption and sharding. Recorded: a rerun must use the same value.
        perturbations: P formats: ``"test"``, ``"validation"``, ``"all"`` or names (comma-separated or a list).
        difficulties: P formats: the noise sequences get one set per difficulty (``gaussian_noise_2``...); the
            others one set, made at difficulty 1 (their difficulty is the evaluation's stride).

    Returns:
        A :class:`GenerateResult`; ``result.summary()`` is the one-line summary.

    Raises:
        AugrobustValueError: bad arguments, an output folder holding a different generation, or (at the end,
            after writing everything else) bad source images without ``skip_bad``.
    """
    start = time.perf_counter()
    fmt = check_choice(format, "format", FORMATS)
    p_format = fmt in P_FORMATS
    if p_format:
        if fmt != "cifar-p":
            require_av()
        names = _perturbation_names(perturbations)
        diffs = sorted(set(check_severities(tuple(difficulties), "difficulties")))
        if any(d > 3 for d in diffs):
            raise AugrobustValueError(f"difficulties must be in 1..3 for the P formats, got {diffs}.")
        # (set, difficulty) units: the noise sequences per difficulty, the others once
        p_sets = [(set_name(n, d), d) for n in names for d in (diffs if is_noise(n) else [1])]
        sevs = diffs
    else:
        names = _corruption_names(corruptions)
        sevs = sorted(check_severities(tuple(severities), "severities"))
    if fmt == "cifar-c" and sevs != [1, 2, 3, 4, 5]:
        raise AugrobustValueError(
            f"the cifar-c layout stacks severities 1..5 in one array; got severities {sevs}: use all five."
        )
    seed = check_count(seed, "seed")
    batch_size = check_count(batch_size, "batch_size", minimum=1)
    workers = check_count(workers, "workers")
    skip_bad, progress = check_bool(skip_bad, "skip_bad"), check_bool(progress, "progress")
    torch_dtype = {"float64": torch.float64, "float32": torch.float32}[check_choice(dtype, "dtype", ("float64", "float32"))]
    frost = None if frost_dir is None else str(frost_dir)

    distributed = shard is None and int(os.environ.get("WORLD_SIZE", "1")) > 1
    if isinstance(shard, str):
        shard = parse_shard(shard)
    elif shard is None:
        shard = (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))) if distributed else (0, 1)
    else:
        shard = parse_shard(f"{shard[0]}/{shard[1]}")
    dev = torch.device(device)
    if distributed and dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))

    source = from_spec(data, train=False, num_images=num_images)
    items, classes = _items(source)
    first = _Blocks(source, items, [0], 1, fmt)[0]["images"] if not p_format else None
    side = int(first.shape[-1]) if first is not None and first.numel() else 224
    if p_format:
        preset, reference = "none", "hendrycks"  # the P scripts have no presets; recorded as such
    else:
        if preset == "auto":
            preset = _AUTO_PRESET.get(fmt) or {32: "cifar", 64: "tinyimagenet"}.get(side, "imagenet")
        preset = check_preset(preset)
        reference = "hendrycks" if reference == "auto" else check_reference(reference)

    size = BLOCK_IMAGES[fmt] if block_images is None else check_count(block_images, "block_images", minimum=1)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    layout = _Layout(out_dir, fmt)
    arguments = {
        "data": data, "format": fmt, "corruptions": names, "severities": sevs, "preset": preset,
        "reference": reference, "seed": seed, "num_images": len(items), "dtype": dtype,
        "block_images": size,
    }  # fmt: skip
    if p_format:
        # CPU and CUDA generators draw different numbers: the generator's device is part of the content
        arguments = {
            "data": data, "format": fmt, "perturbations": names, "difficulties": sevs, "seed": seed,
            "num_images": len(items), "block_images": size, "generator_device": dev.type,
        }  # fmt: skip
    result = GenerateResult(out=out_dir, shard=shard)

    if (out_dir / MANIFEST_NAME).is_file():  # finished earlier: same arguments means nothing to do
        manifest = read_manifest(out_dir)
        if manifest.get("arguments") != arguments:
            raise AugrobustValueError(
                f"{str(out_dir)!r} holds a finished generation with other arguments ({manifest.get('arguments')}); "
                f"use another --out for {arguments}."
            )
        # A kill during the last clean-up leaves the state folder or killed writers' temporaries: finish it.
        shutil.rmtree(layout.state, ignore_errors=True)
        _remove_temporaries(out_dir, manifest["files"])
        result.complete, result.bad = True, list(manifest.get("bad_sources", []))
        return _finish(result, start, skip_bad)
    run_file = layout.state / "run.json"
    if run_file.is_file():
        if json.loads(run_file.read_text()) != arguments:
            raise AugrobustValueError(
                f"{str(out_dir)!r} holds an unfinished generation with other arguments "
                f"({run_file.read_text().strip()}); rerun it with those, or use another --out."
            )
    else:
        atomic_write_text(run_file, json.dumps(arguments, sort_keys=True))

    n_blocks = math.ceil(len(items) / size)
    units = p_sets if p_format else [(c, s) for c in names for s in sevs]
    mine = [b for b in range(n_blocks) if b % shard[1] == shard[0]]
    todo = {b: [u for u in units if not layout.unit_done(*u, b)] for b in mine}
    todo = {b: u for b, u in todo.items() if u or not layout.block_record(b).is_file()}
    total = sum(len(u) * len(range(b * size, min((b + 1) * size, len(items)))) for b, u in todo.items())
    loader = DataLoader(
        _Blocks(source, items, sorted(todo), size, fmt), batch_size=None, num_workers=workers, collate_fn=_identity,
        prefetch_factor=2 if workers else None,
    )  # fmt: skip
    bad: list[dict[str, str]] = []
    with progress_bar(total=total, desc=f"generate {fmt}", quiet=not progress, unit="img") as bar, ThreadPoolExecutor(
        max(workers, 1)
    ) as pool:
        for block in loader:
            b, good = block["block"], block["good"]
            bad.extend(block["bad"])
            record = {"good": good, "labels": [items[k].label for k in good], "bad": block["bad"]}
            if not layout.block_record(b).is_file():
                atomic_write_text(layout.block_record(b), json.dumps(record, sort_keys=True))
            if p_format:
                for c, s in todo[b]:
                    name = c if s == 1 else c[: -len(f"_{s}")]
                    seqs = _perturb_block(
                        list(block["images"]), good, name, s, seed=seed, variant=P_VARIANTS[fmt], device=dev,
                        batch_size=batch_size,
                    )  # fmt: skip
                    if fmt == "cifar-p":
                        arr = np.stack(seqs) if seqs else np.empty((0, 0, 0, 0, 3), np.uint8)
                        atomic_save(layout.part(c, s, b), arr, save=_save_npy)
                    else:
                        rels = [f"{c}/{Path(items[k].out_name).with_suffix('.mp4').as_posix()}" for k in good]
                        noise = [is_noise(name)] * len(seqs)
                        digests = list(pool.map(_write_mp4, [out_dir / r for r in rels], seqs, noise))
                        atomic_write_text(
                            layout.unit_record(c, s, b), json.dumps(dict(zip(rels, digests)), sort_keys=True)
                        )
                    result.images += len(good)
                    bar.update(len(block["good"]) + len(block["bad"]))
                continue
            x = block["images"].to(dev)
            keys = [items[k].key for k in good]
            for c, s in todo[b]:
                arr = _corrupt_block(
                    x, keys, c, s, seed=seed, preset=preset, reference=reference, device=dev, dtype=torch_dtype,
                    batch_size=batch_size, frost_dir=frost,
                )  # fmt: skip
                if fmt == "cifar-c":
                    atomic_save(layout.part(c, s, b), arr, save=_save_npy)
                else:
                    rels = [f"{c}/{s}/{items[k].out_name}" for k in good]
                    digests = list(pool.map(_write_jpeg, [out_dir / r for r in rels], list(arr)))
                    atomic_write_text(layout.unit_record(c, s, b), json.dumps(dict(zip(rels, digests)), sort_keys=True))
                result.images += len(good)
                bar.update(len(block["good"]) + len(block["bad"]))
    result.bad = bad

    if distributed:
        import torch.distributed as dist

        created = not dist.is_initialized()
        if created:
            dist.init_process_group(backend="gloo")
        dist.barrier()  # every rank's units are on disk
        if shard[0] == 0:
            result.complete = _finalize(layout, items, units, n_blocks, arguments, result)
        dist.barrier()
        result.complete = (out_dir / MANIFEST_NAME).is_file()
        if created:
            dist.destroy_process_group()
    else:
        pending = sum(1 for b in range(n_blocks) for u in units if not layout.unit_done(*u, b))
        pending += sum(1 for b in range(n_blocks) if not layout.block_record(b).is_file())
        result.pending_units = pending
        if pending == 0:
            result.complete = _finalize(layout, items, units, n_blocks, arguments, result)
    return _finish(result, start, skip_bad)


def _finish(result: GenerateResult, start: float, skip_bad: bool) -> GenerateResult:
    result.seconds = time.perf_counter() - start
    if result.bad and not skip_bad:
        listed = "; ".join(f"{b['path']} ({b['reason']})" for b in result.bad[:10])
        more = f" and {len(result.bad) - 10} more" if len(result.bad) > 10 else ""
        raise AugrobustValueError(
            f"{len(result.bad)} source images could not be read and were skipped: {listed}{more}. Everything else was "
            f"written{' and the manifest lists them' if result.complete else ''}; fix or remove them and rerun, or "
            "pass --skip-bad (skip_bad=True) to accept the dataset without them."
        )
    return result


def _finalize(
    layout: _Layout, items: list[_Item], units: list[tuple[str, int]], n_blocks: int, arguments: dict[str, Any],
    result: GenerateResult,
) -> bool:  # fmt: skip
    """Every unit is done: assemble the .npy files (cifar-c, cifar-p), write the manifest, drop the state folder."""
    records = [json.loads(layout.block_record(b).read_text()) for b in range(n_blocks)]
    good = [k for r in records for k in r["good"]]
    bad = [x for r in records for x in r["bad"]]
    files: dict[str, str] = {}
    names = list(dict.fromkeys(c for c, _ in units))
    sevs = sorted({s for _, s in units})
    if layout.fmt == "cifar-p":
        for c, s in units:
            final = layout.final_npy(c)
            if not final.is_file():
                parts = [np.load(layout.part(c, s, b), mmap_mode="r") for b in range(n_blocks)]
                shape = next((p.shape[1:] for p in parts if p.shape[0]), (0, 0, 0, 3))
                _assemble(final, [parts], (len(good), *shape))
            files[final.name] = sha256_file(final)
        labels = np.array([items[k].label for k in good], dtype=np.int64)
        atomic_save(layout.out / "labels.npy", labels, save=_save_npy)
        files["labels.npy"] = sha256_file(layout.out / "labels.npy")
    elif layout.fmt == "cifar-c":
        labels = np.array([items[k].label for k in good], dtype=np.int64)
        shape = None
        for c in names:
            final = layout.final_npy(c)
            if not final.is_file():
                parts = [[np.load(layout.part(c, s, b), mmap_mode="r") for b in range(n_blocks)] for s in sevs]
                shape = next(p.shape[1:] for row in parts for p in row if p.shape[0])
                _assemble(final, parts, (len(sevs) * len(good), *shape))
            files[final.name] = sha256_file(final)
        small = labels.size == 0 or (labels.min() >= 0 and labels.max() < 256)
        tiled = np.tile(labels, len(sevs)).astype(np.uint8 if small else np.int64)
        atomic_save(layout.out / "labels.npy", tiled, save=_save_npy)
        files["labels.npy"] = sha256_file(layout.out / "labels.npy")
    else:
        for c, s in units:
            for b in range(n_blocks):
                files.update(json.loads(layout.unit_record(c, s, b).read_text()))
    header = {
        "generator": "augrobust generate",
        "versions": _versions(),
        "arguments": arguments,
        "seed_rule": P_SEED_RULE if layout.fmt in P_FORMATS else SEED_RULE,
        "images_per_severity": len(good),
        "bad_sources": bad,
    }
    write_manifest(layout.out, header, files)
    shutil.rmtree(layout.state, ignore_errors=True)
    _remove_temporaries(layout.out, files)
    result.bad = bad
    return True


def _remove_temporaries(out: Path, files: dict[str, str]) -> None:
    """Every unit is done, so a temporary file left in an output folder is a killed writer's: remove them."""
    for folder in {out, *(out / Path(rel).parent for rel in files)}:
        remove_stale_temporaries(folder)


def _assemble(final: Path, parts: list[list[np.ndarray]], shape: tuple[int, ...]) -> None:
    """Copy the parts, severity by severity, into a memory-mapped .npy under a temporary name, then rename it."""
    with atomic_path(final) as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        row = 0
        for sev_parts in parts:
            for p in sev_parts:
                arr[row : row + p.shape[0]] = p
                row += p.shape[0]
        arr.flush()
        del arr
