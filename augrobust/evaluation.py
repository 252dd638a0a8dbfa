"""Evaluate a classifier on corrupted data: on the fly with :func:`augrobust.corrupt`, or from ``.npy`` files.

On the fly, the clean images are loaded in chunks of whole batches (within 256 MiB by default); a chunk is
moved to the device once, and every corruption and severity is run over it there: a unit of work is one
(corruption, severity) over one chunk, small enough that a killed run loses little (with ``out_dir``, each
finished unit is kept and a rerun continues), while each image is still loaded and decoded once. The random
draws of a batch come from a ``torch.Generator`` seeded by
:func:`corruption_batch_seed` from ``(seed, corruption, severity, batch index)``, so a result does not depend
on the order in which corruptions are evaluated (it does depend on ``batch_size``, which fixes what a batch
index means). Images are corrupted in the dataset's dtype: ``uint8`` datasets are corrupted as ``uint8``
(floored like ``np.uint8``, as when CIFAR-10-C was written to disk) and then scaled to ``[0, 1]`` for the
model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from augrobust._checks import check_bool, check_count, check_preset, check_reference, check_severities
from augrobust._io import atomic_write_text, remove_stale_temporaries
from augrobust._progress import progress_bar
from augrobust._tensor import check_values as _check_values
from augrobust._tensor import to_float
from augrobust.corruptions import CORRUPTION_ORDER, SUBSETS, corrupt, get_spec, registered_names
from augrobust.data import DatasetFileNotFoundError, check_labels, dataset_targets
from augrobust.data.imagenet_c import CIFARC, CorruptedBenchmark
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.metrics import ece_bin_stats, ece_from_bins
from augrobust.models import NORMALIZATIONS, Normalized, parse_normalize
from augrobust.report import Baseline, CorruptionReport, alexnet_baseline

__all__ = [
    "AUTO_PRESET_RULE",
    "NORMALIZATIONS",
    "STATE_NAME",
    "CorruptionReport",
    "auto_preset",
    "corruption_batch_seed",
    "evaluate",
    "evaluate_corruptions",
    "resolve_baseline",
]

_ALL_SEVERITIES = (1, 2, 3, 4, 5)


def corruption_batch_seed(seed: int, corruption: str, severity: int, batch_index: int) -> int:
    """The generator seed of one batch: a 63-bit hash of ``(seed, corruption, severity, batch_index)``.

    Example:
        >>> corruption_batch_seed(0, "fog", 3, 7) == corruption_batch_seed(0, "fog", 3, 7)
        True
        >>> corruption_batch_seed(0, "fog", 3, 7) != corruption_batch_seed(0, "fog", 4, 7)
        True
    """
    key = [int(seed), zlib.crc32(corruption.encode()), int(severity), int(batch_index)]
    state = np.random.SeedSequence(key).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)


# --------------------------------------------------------------------------------- the rules of the defaults

#: How ``preset="auto"`` and ``reference="auto"`` resolve, in Python and in ``augrobust eval`` alike (one rule,
#: :func:`auto_preset`); the report's metadata carries it.
AUTO_PRESET_RULE = (
    "auto: 32 px -> cifar, 64 px -> tinyimagenet, else imagenet (by the images' side); reference hendrycks for "
    "cifar and tinyimagenet (the released CIFAR-10-C / Tiny-ImageNet-C), imagecorruptions for imagenet"
)


def auto_preset(image_side: int, preset: str = "auto", reference: str = "auto") -> tuple[str, str]:
    """Resolve ``"auto"`` preset and reference from the images' side (:data:`AUTO_PRESET_RULE`).

    Example:
        >>> auto_preset(32), auto_preset(64)
        (('cifar', 'hendrycks'), ('tinyimagenet', 'hendrycks'))
        >>> auto_preset(224), auto_preset(32, "imagenet")
        (('imagenet', 'imagecorruptions'), ('imagenet', 'imagecorruptions'))
    """
    if preset == "auto":
        preset = {32: "cifar", 64: "tinyimagenet"}.get(int(image_side), "imagenet")
    preset = check_preset(preset)
    if reference == "auto":
        reference = "hendrycks" if preset in ("cifar", "tinyimagenet") else "imagecorruptions"
    return preset, check_reference(reference)


def resolve_baseline(
    baseline: Any, *, num_classes: int, preset: str, severities: Sequence[int] = _ALL_SEVERITIES
) -> Baseline | None:
    """The baseline of CE / mCE: ``"auto"`` (or ``None``) gives AlexNet's published ImageNet-C errors when the
    data is ImageNet-C-shaped (1000 classes, the imagenet preset) and no baseline otherwise; ``"alexnet"``
    asks for them (an error on other data); ``"none"`` for none; a path to a ``report.json``, a
    :class:`CorruptionReport` or a :class:`~augrobust.report.Baseline` for another model's errors.

    Example:
        >>> resolve_baseline("auto", num_classes=1000, preset="imagenet").name.startswith("AlexNet")
        True
        >>> resolve_baseline("auto", num_classes=10, preset="cifar") is None
        True
    """
    if baseline is None or baseline == "auto":
        return alexnet_baseline() if num_classes == 1000 and preset == "imagenet" else None
    if isinstance(baseline, str) and baseline == "none":
        return None
    if isinstance(baseline, str) and baseline == "alexnet":
        if num_classes != 1000 or preset != "imagenet":
            raise AugrobustValueError(
                f"AlexNet's errors are ImageNet-C errors; they normalise only ImageNet-C-shaped results (1000 "
                f"classes, preset imagenet), not {num_classes} classes with preset {preset!r}. Give another "
                "model's report.json as the baseline, or none."
            )
        return alexnet_baseline()
    if isinstance(baseline, Baseline):
        return baseline
    if isinstance(baseline, (CorruptionReport, str, os.PathLike)):
        return Baseline.from_report(baseline)
    raise AugrobustTypeError(
        "baseline must be 'auto', 'alexnet', 'none', a report.json path, a CorruptionReport or a Baseline, "
        f"got {type(baseline).__name__}."
    )


# ----------------------------------------------------------------------------------------- resumable state

#: The file in ``out_dir`` that keeps the finished units of an evaluation (see :func:`evaluate_corruptions`).
STATE_NAME = "eval_state.json"
_STATE_FORMAT = "augrobust.eval-state"
_STATE_VERSION = 2  # 2: each unit also keeps its calibration bins
# On the fly, a chunk of the clean dataset is held on the device and every (corruption, severity) is run over
# it: one load per image as before, and a unit of work small enough that a kill loses little.
_CHUNK_BYTES = 256 * 2**20


def _sha256_of_tensor(h: Any, t: torch.Tensor) -> None:
    t = t.detach().to("cpu").contiguous().reshape(-1)
    h.update(f"{t.dtype}:{tuple(t.shape)}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes())


def _model_fingerprint(model: Callable[[torch.Tensor], torch.Tensor]) -> str:
    """SHA-256 of an ``nn.Module``'s state_dict; a plain callable is known by its name only."""
    if not isinstance(model, torch.nn.Module):
        qualname = getattr(model, "__qualname__", type(model).__qualname__)
        return f"callable:{getattr(model, '__module__', '?')}.{qualname}"
    h = hashlib.sha256()  # the weights are the model's identity (a wrapper class does not change it)
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        if isinstance(value, torch.Tensor):
            _sha256_of_tensor(h, value)
        else:  # extra state
            h.update(repr(value).encode())
    return "sha256:" + h.hexdigest()


def _dataset_fingerprint(dataset: Dataset[Any]) -> dict[str, Any]:
    """Type, length and a hash of the first, middle and last items: enough to tell another dataset apart."""
    n = len(dataset)  # type: ignore[arg-type]
    h = hashlib.sha256()
    for i in sorted({0, n // 2, n - 1}):
        image, label = dataset[i]
        _sha256_of_tensor(h, torch.as_tensor(image))
        h.update(str(int(label)).encode())
    return {"type": type(dataset).__qualname__, "length": n, "items_sha256": h.hexdigest()}


def _file_fingerprint(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as f:
        h.update(f.read(2**20))
        f.seek(max(size - 2**20, 0))
        h.update(f.read(2**20))
    return {"size": size, "ends_sha256": h.hexdigest()}


class _State:
    """The finished units of one evaluation, ``{unit: [correct, total, ece bins]}``, kept atomically in
    ``out_dir`` (the bins: :func:`augrobust.metrics.ece_bin_stats` of the unit, which add up across units)."""

    def __init__(self, out_dir: Path | None, arguments: dict[str, Any]) -> None:
        self.path = None if out_dir is None else out_dir / STATE_NAME
        self.arguments = arguments
        self.done: dict[str, list[Any]] = {}
        if self.path is None:
            return
        if self.path.is_file():
            self._load()
        self._save()  # proves the folder writable before any compute

    def _load(self) -> None:
        assert self.path is not None
        delete = f"delete {str(self.path)!r} to start over, or give another out_dir"
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as e:
            raise AugrobustValueError(f"cannot read the evaluation state {str(self.path)!r} ({e}); {delete}.") from e
        if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT or data.get("version") != _STATE_VERSION:
            raise AugrobustValueError(
                f"{str(self.path)!r} is not an augrobust evaluation state of version {_STATE_VERSION}; {delete}."
            )
        before = data.get("arguments", {})
        if before != self.arguments:
            keys = sorted(k for k in {*before, *self.arguments} if before.get(k) != self.arguments.get(k))
            changes = "; ".join(f"{k}: {before.get(k)!r} then, {self.arguments.get(k)!r} now" for k in keys)
            raise AugrobustValueError(
                f"{str(self.path.parent)!r} holds a partial evaluation made with other arguments ({changes}); its "
                f"results would be mixed with these. Rerun with the same arguments to continue it, or {delete}."
            )
        self.done = {str(k): [int(v[0]), int(v[1]), v[2]] for k, v in data.get("done", {}).items()}

    def _save(self) -> None:
        if self.path is None:
            return
        state = {"format": _STATE_FORMAT, "version": _STATE_VERSION, "arguments": self.arguments, "done": self.done}
        atomic_write_text(self.path, json.dumps(state, indent=1, sort_keys=True) + "\n")

    def record(self, unit: str, correct: int, total: int, bins: torch.Tensor) -> None:
        self.done[unit] = [int(correct), int(total), bins.cpu().tolist()]
        self._save()


def _prepare_out_dir(out_dir: str | os.PathLike[str] | None) -> Path | None:
    if out_dir is None:
        return None
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise AugrobustValueError(f"out_dir {str(path)!r} is a file; give a folder for the evaluation state.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise AugrobustValueError(f"cannot write into out_dir {str(path)!r} ({e}); give a writable folder.") from e
    remove_stale_temporaries(path, STATE_NAME)  # what a killed run may have left
    return path


# ----------------------------------------------------------------------------------------------- evaluation


def _as_image(image: Any, where: str) -> torch.Tensor:
    t = torch.as_tensor(image)
    if t.ndim != 3 or t.shape[0] != 3 or not (t.dtype == torch.uint8 or t.is_floating_point()):
        raise AugrobustValueError(
            f"{where}: an image must be a (3, H, W) uint8 or float tensor, got shape {tuple(t.shape)} dtype {t.dtype}; "
            "convert the dataset's images (e.g. torchvision's PILToTensor)."
        )
    return t


def _collate(batch: list[tuple[Any, Any]], check_values: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    images = [_as_image(img, "the dataset") for img, _ in batch]
    shapes = {tuple(t.shape) for t in images}
    if len(shapes) > 1:
        raise AugrobustValueError(
            f"the dataset's images differ in size ({sorted(shapes)[:4]}) and cannot be batched; resize them to one "
            "size (e.g. ImageFolderDataset(size=...), or --image-size)."
        )
    labels = torch.as_tensor([int(label) for _, label in batch], dtype=torch.long)
    stacked = torch.stack(images)
    if check_values:  # on the host, in the loader: a 0..255 float or a NaN image is an error, not a number
        _check_values(stacked, "the dataset's float images")
    return stacked, labels


def _ordered(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    rank = {n: i for i, n in enumerate(CORRUPTION_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


class _Counter:
    """Counts correct top-1 predictions on the device, so the batch loop never syncs with the host."""

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> None:
        self.model, self.device = model, device

    def logits(self, images: torch.Tensor, n: int) -> torch.Tensor:
        logits = self.model(to_float(images).to(torch.float32))
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != n:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise AugrobustValueError(
                f"the model must return (B, num_classes) logits; for a batch of {n} it returned {shape}."
            )
        return logits

    def correct(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The number of correct top-1 predictions and the calibration bins, both on the device."""
        logits = self.logits(images, labels.shape[0])
        return (logits.argmax(dim=1) == labels).sum(), ece_bin_stats(logits, labels)


class _Tally:
    """Correct predictions and calibration bins of one unit, summed on the device."""

    def __init__(self, device: torch.device) -> None:
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.bins: torch.Tensor | None = None

    def add(self, correct: torch.Tensor, bins: torch.Tensor) -> None:
        self.correct += correct
        self.bins = bins if self.bins is None else self.bins + bins

    def record(self, state: _State, unit: str, total: int) -> None:
        assert self.bins is not None
        state.record(unit, int(self.correct), total, self.bins)


def _check_batch_labels(labels: torch.Tensor, num_classes: int, first_index: int) -> None:
    # Host-side (the batch is still on the CPU): for datasets that do not expose their targets up front.
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        check_labels(
            labels.numpy(), num_classes, source=f"the dataset's items {first_index}..{first_index + len(labels) - 1}",
            classes_of="the model", fix="evaluate on data labelled with the model's classes",
        )  # fmt: skip


def evaluate_corruptions(
    model: Callable[[torch.Tensor], torch.Tensor],
    dataset: Dataset[Any] | None,
    *,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = _ALL_SEVERITIES,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    seed: int = 0,
    preset: str = "auto",
    reference: str = "auto",
    progress: bool = True,
    npy_root: str | os.PathLike[str] | None = None,
    num_workers: int = 0,
    num_classes: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    chunk_images: int | None = None,
    benchmark: CorruptedBenchmark | None = None,
    baseline: Any = "auto",
    model_name: str | None = None,
    check_values: bool = True,
) -> CorruptionReport:
    """Top-1 error of ``model`` on ``dataset``, clean and under each corruption and severity.

    The work is split into units: on the fly, one (corruption, severity) over one chunk of the dataset (the
    chunk's clean images are loaded once, held on the device and corrupted with every corruption and
    severity); from ``.npy`` files, one (corruption, severity) file block. With ``out_dir``, each finished
    unit's counts are written atomically to ``out_dir/eval_state.json``; a rerun with the same arguments
    continues from there (a kill loses at most the unit in progress) and returns the same report as an
    uninterrupted run. The random draws of a batch depend only on ``(seed, corruption, severity, batch
    index)`` (:func:`corruption_batch_seed`), never on where a run stopped. Arguments, the output folder, the
    files and the labels are all checked before any compute.

    Args:
        model: maps float images in ``[0, 1]`` ``(B, 3, H, W)`` on ``device`` to ``(B, num_classes)`` logits
            (an ``nn.Module`` is put in eval mode for the call and restored afterwards).
        dataset: yields ``(image (3, H, W) uint8 or float, int label)``; its clean error is measured, and on the
            fly it is the source of the corrupted images. May be ``None`` with ``npy_root`` (no clean error).
        corruptions: names to evaluate; ``None`` means every registered corruption
            (:func:`augrobust.corruptions.registered_names`), or with ``npy_root`` every ``.npy`` file there.
        severities: a subset of 1..5.
        batch_size: images per batch. On the fly, the random draws depend on it (see
            :func:`corruption_batch_seed`).
        device: where the images are corrupted and the model runs.
        seed: the evaluation seed.
        preset: severity table of :func:`augrobust.corrupt` (``"cifar"`` for CIFAR-10-C's).
        reference: ``"imagecorruptions"`` or ``"hendrycks"``.
        progress: show progress on stderr (a bar on a terminal, periodic lines in a log).
        npy_root: read CIFAR-10-C-style ``<corruption>.npy`` files from this folder instead of corrupting.
        num_workers: DataLoader workers.
        num_classes: the model's classes; every label must be below it. Default: the width of the model's
            logits on one image (given, it must equal that width).
        out_dir: a folder for the resumable state (``eval_state.json``); ``None`` keeps nothing. A state made
            with other arguments (model weights, data, corruptions, severities, seed, ...) is refused.
        chunk_images: on the fly, the clean images held on the device at once (rounded to whole batches;
            default: as many as fit in 256 MiB). Part of the arguments a resumed run must repeat.
        check_values: check each batch of float images on the host (finite, in ``[0, 1]``;
            :func:`augrobust._tensor.check_values`): a ``0..255`` float or a normalised dataset is an error
            naming the fix, not a silently saturated evaluation. ``False`` skips the pass.

    Returns:
        A :class:`CorruptionReport`.

    Raises:
        AugrobustValueError: a bad argument, an unknown corruption, an empty dataset, images that cannot be
            batched, a label outside the model's classes, a model that does not return ``(B, K)`` logits, an
            ``out_dir`` that cannot be written or holds another evaluation's state.
        DatasetFileNotFoundError: a requested corruption's ``.npy`` file (or ``labels.npy``) is missing.

    Example:
        >>> import torch
        >>> from augrobust.data import SyntheticShapes
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
        >>> report = evaluate_corruptions(model, SyntheticShapes(8, train=False), corruptions=["gaussian_noise"],
        ...                               severities=(1, 5), batch_size=4, progress=False)
        >>> report.severities, len(report.errors["gaussian_noise"]), report.num_images
        ((1, 5), 2, 8)
    """
    # -- arguments, names, output folder and files: everything is checked before any compute
    preset_was_auto = preset == "auto"
    sevs = check_severities(severities)
    batch_size = check_count(batch_size, "batch_size", minimum=1)
    seed = check_count(seed, "seed")
    if preset != "auto":
        check_preset(preset)
    if reference != "auto":
        check_reference(reference)
    progress = check_bool(progress, "progress")
    check_values = check_bool(check_values, "check_values")
    num_workers = check_count(num_workers, "num_workers")
    if num_classes is not None:
        num_classes = check_count(num_classes, "num_classes", minimum=1)
    if chunk_images is not None:
        chunk_images = check_count(chunk_images, "chunk_images", minimum=1)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise AugrobustValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r}.") from e
    if npy_root is not None and benchmark is not None:
        raise AugrobustValueError("give npy_root or benchmark, not both (npy_root is a CIFAR-10-C-style benchmark).")
    if benchmark is not None and not isinstance(benchmark, CorruptedBenchmark):
        raise AugrobustTypeError(
            f"benchmark must be a CorruptedBenchmark (e.g. augrobust.data.ImageNetC), got {type(benchmark).__name__}."
        )
    if dataset is None and npy_root is None and benchmark is None:
        raise AugrobustValueError("give a dataset, npy_root or benchmark (or a dataset and one of the others).")
    if dataset is not None and len(dataset) == 0:  # type: ignore[arg-type]
        raise AugrobustValueError("the dataset is empty; give a dataset with at least one image.")
    bench = benchmark if benchmark is not None else (None if npy_root is None else CIFARC(_npy_dir(npy_root)))
    names = _resolve_names(corruptions, npy_root, bench)
    out_path = _prepare_out_dir(out_dir)

    was_training = getattr(model, "training", None)
    if isinstance(model, torch.nn.Module):
        model.eval()
    counter = _Counter(model, dev)
    try:
        with torch.inference_mode():
            # The model's classes, from one image: labels and files are checked against them before the work.
            if dataset is not None:
                first = _as_image(dataset[0][0], "the dataset's item 0")
            else:
                first = _as_image(bench.dataset(names[0], sevs[0])[0][0], f"{bench.spec}")  # type: ignore[union-attr]
            num_classes = _model_classes(counter, first.to(dev), num_classes)
            if bench is not None:  # the files were made already: their preset, no reference to choose
                preset, reference = (bench.preset, "n/a (pre-made files)") if preset == "auto" else (preset, "n/a")
            else:
                preset, reference = auto_preset(int(first.shape[-1]), preset, reference)
            base = resolve_baseline(baseline, num_classes=num_classes, preset=preset, severities=sevs)
            _check_baseline_covers(base, names, sevs)
            if dataset is not None and (targets := dataset_targets(dataset)) is not None:
                check_labels(
                    targets, num_classes, source=f"the dataset ({type(dataset).__name__})", classes_of="the model",
                    fix="evaluate on data labelled with the model's classes",
                )  # fmt: skip
            premade = {
                (name, s): bench.dataset(name, s, num_classes=num_classes)
                for name in (names if bench is not None else [])
                for s in sevs
            }

            n_images = 0 if dataset is None else len(dataset)  # type: ignore[arg-type]
            if chunk_images is None:
                chunk_images = max(_CHUNK_BYTES // max(first.numel() * first.element_size() * batch_size, 1), 1)
                chunk_images *= batch_size
            chunk = -(-chunk_images // batch_size) * batch_size  # whole batches: batch indices stay global
            job = _Job(
                names, sevs, [(a, min(a + chunk, n_images)) for a in range(0, n_images, chunk)], bench is not None
            )
            source = "on_the_fly" if bench is None else ("npy" if npy_root is not None else bench.spec)
            arguments: dict[str, Any] = {
                "corruptions": names, "severities": list(sevs), "batch_size": batch_size, "seed": seed,
                "preset": preset, "reference": reference, "device_type": dev.type, "num_classes": num_classes,
                "chunk_images": chunk, "source": source,
            }  # fmt: skip
            if out_path is not None:  # what a resumed run must repeat, beyond the arguments
                arguments.update(_fingerprints(model, dataset, npy_root, bench, names, sevs))
            state = _State(out_path, arguments)

            units = job.units()
            desc = "evaluating" if bench is None else "pre-made files"
            loader_kw: dict[str, Any] = dict(
                batch_size=batch_size, shuffle=False, num_workers=num_workers,
                collate_fn=functools.partial(_collate, check_values=check_values),
            )
            with progress_bar(total=len(units), desc=desc, quiet=not progress, unit="unit") as bar:
                bar.update(sum(u in state.done for u in units))
                if dataset is not None:
                    _run_chunks(
                        job, dataset, counter, state, bar, loader_kw,
                        seed=seed, preset=preset, reference=reference, num_classes=num_classes,
                    )  # fmt: skip
                for (name, s), pre_ds in premade.items():
                    if job.unit(name, s) not in state.done:
                        tally = _Tally(dev)
                        for images, labels in DataLoader(pre_ds, **loader_kw):
                            tally.add(*counter.correct(images.to(dev), labels.to(dev)))
                        tally.record(state, job.unit(name, s), len(pre_ds))
                        bar.set_postfix_str(f"{name} s{s}", refresh=False)
                        bar.update(1)
    finally:
        if isinstance(model, torch.nn.Module) and was_training:
            model.train()

    metadata: dict[str, Any] = {}
    if model_name is not None:
        metadata["model"] = str(model_name)
    metadata.update(source=source, batch_size=batch_size, device=str(dev), num_classes=num_classes)
    if bench is None:
        metadata.update(preset=preset, reference=reference, seed=seed)
        if preset_was_auto:
            metadata["preset_rule"] = AUTO_PRESET_RULE
    else:
        metadata.update(preset=preset, reference=reference)
        if npy_root is not None:
            metadata["npy_root"] = str(npy_root)
    return _report(job, state, metadata, base)


def _npy_dir(root: str | os.PathLike[str]) -> str | os.PathLike[str]:
    if not Path(root).is_dir():
        raise DatasetFileNotFoundError(f"corrupted .npy dataset directory not found: {str(root)!r}.")
    return root


def _check_baseline_covers(base: Baseline | None, names: list[str], sevs: tuple[int, ...]) -> None:
    """A given baseline must have the evaluated benchmark corruptions and severities: else mCE would be
    silently absent or over another set."""
    if base is None:
        return
    wanted = [n for n in SUBSETS["common"] if n in names] or names
    missing = [n for n in wanted if n not in base.errors]
    missing_sevs = [s for s in sevs if s not in base.severities]
    if missing or missing_sevs:
        what = f"corruptions {missing}" if missing else f"severities {missing_sevs}"
        raise AugrobustValueError(
            f"the baseline {base.name!r} lacks the evaluated {what}; evaluate the baseline model on the same "
            "corruptions and severities, or give no baseline."
        )


def _resolve_names(
    corruptions: Sequence[str] | str | None, npy_root: str | os.PathLike[str] | None, bench: CorruptedBenchmark | None
) -> list[str]:
    """The corruptions to evaluate, each known (registered, or in the pre-made files), none twice.
    ``corruptions`` may name a set: ``"common"`` (the 15), ``"validation"`` (the 4 hold-out), ``"all"``."""
    if isinstance(corruptions, str):
        if corruptions not in SUBSETS:
            raise AugrobustValueError(
                f"corruptions={corruptions!r} is no corruption set; give one of {', '.join(SUBSETS)} or a list "
                "of names."
            )
        corruptions = list(SUBSETS[corruptions])
    if bench is not None:
        available = bench.corruptions()
        names = list(available) if corruptions is None else list(corruptions)
        missing = [n for n in names if n not in available]
        if missing:
            where = f"(expected {bench.layout})"
            raise DatasetFileNotFoundError(
                f"no file for corruption(s) {missing} in {str(getattr(bench, 'root', bench.spec))!r} {where}; "
                f"available: {', '.join(sorted(available)) if available else 'none'}."
            )
    else:
        names = list(registered_names()) if corruptions is None else list(corruptions)
        for n in names:
            get_spec(n)  # unknown names fail before any work, with the list of valid ones
    if not names:
        raise AugrobustValueError("no corruptions to evaluate.")
    if len(set(names)) != len(names):
        raise AugrobustValueError(f"corruptions has duplicates: {names}.")
    return names


def _model_classes(counter: _Counter, image: torch.Tensor, num_classes: int | None) -> int:
    """The width of the model's logits on one image (checked against ``num_classes`` when given)."""
    width = int(counter.logits(image.unsqueeze(0), 1).shape[1])
    if num_classes is not None and num_classes != width:
        raise AugrobustValueError(
            f"num_classes={num_classes} but the model returns {width} logits per image; give the model's number "
            "of classes (or leave num_classes unset)."
        )
    return width


def _fingerprints(
    model: Callable[[torch.Tensor], torch.Tensor],
    dataset: Dataset[Any] | None,
    npy_root: str | os.PathLike[str] | None,
    bench: CorruptedBenchmark | None,
    names: list[str],
    sevs: tuple[int, ...],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": _model_fingerprint(model),
        "dataset": None if dataset is None else _dataset_fingerprint(dataset),
    }
    if npy_root is not None:
        files = sorted({*(f"{n}.npy" for n in names), "labels.npy"})
        out["npy_files"] = {f: _file_fingerprint(Path(npy_root) / f) for f in files}
    elif bench is not None:
        out["benchmark"] = bench.fingerprint(names, sevs)
    return out


@dataclass
class _Job:
    """The units of one evaluation: per chunk of the clean dataset, its clean count and, on the fly, each
    (corruption, severity) over it; from ``.npy`` files, each (corruption, severity) file block."""

    names: list[str]
    severities: tuple[int, ...]
    chunks: list[tuple[int, int]]
    premade: bool

    @staticmethod
    def clean(k: int) -> str:
        return f"/clean/{k}"  # "/" never occurs in a corruption name (a file stem with npy_root)

    def unit(self, name: str, severity: int, k: int | None = None) -> str:
        return f"{name}/{severity}" if k is None else f"{name}/{severity}/{k}"

    def pairs(self) -> list[tuple[str, int]]:
        return [(name, s) for name in self.names for s in self.severities]

    def corrupted(self, name: str, severity: int) -> list[str]:
        if self.premade:
            return [self.unit(name, severity)]
        return [self.unit(name, severity, k) for k in range(len(self.chunks))]

    def units(self) -> list[str]:
        return [self.clean(k) for k in range(len(self.chunks))] + [u for p in self.pairs() for u in self.corrupted(*p)]


def _run_chunks(
    job: _Job,
    dataset: Dataset[Any],
    counter: _Counter,
    state: _State,
    bar: Any,
    loader_kw: dict[str, Any],
    *,
    seed: int,
    preset: str,
    reference: str,
    num_classes: int,
) -> None:
    """The clean units and, on the fly, the corrupted units, chunk by chunk; each finished unit is recorded."""
    on_the_fly = [] if job.premade else job.pairs()
    batch_size, dev = loader_kw["batch_size"], counter.device

    def todo(k: int) -> tuple[bool, list[tuple[str, int]]]:
        return job.clean(k) not in state.done, [(n, s) for n, s in on_the_fly if job.unit(n, s, k) not in state.done]

    # Chunks finish in order, so the finished ones are a prefix: one loader from the first other one on (its
    # workers keep prefetching across chunk boundaries).
    first = next((k for k in range(len(job.chunks)) if any(todo(k))), len(job.chunks))
    if first == len(job.chunks):
        return
    batches = iter(DataLoader(Subset(dataset, range(job.chunks[first][0], job.chunks[-1][1])), **loader_kw))
    for k in range(first, len(job.chunks)):
        start, stop = job.chunks[k]
        clean_todo, pairs = todo(k)
        # Load the chunk once: clean counts now, the corrupted copies below from the same device tensors.
        held: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        clean = _Tally(dev)
        for b in range(start // batch_size, -(-stop // batch_size)):
            images, labels = next(batches)
            _check_batch_labels(labels, num_classes, b * batch_size)
            x, y = images.to(dev, non_blocking=True), labels.to(dev, non_blocking=True)
            if clean_todo:
                clean.add(*counter.correct(x, y))
            if pairs:
                held.append((b, x, y))
        if clean_todo:
            clean.record(state, job.clean(k), stop - start)
            bar.update(1)
        for name, s in pairs:
            tally = _Tally(dev)
            for b, x, y in held:
                g = torch.Generator(device=dev)
                g.manual_seed(corruption_batch_seed(seed, name, s, b))
                xc = corrupt(x, name, s, preset=preset, reference=reference, generator=g)
                tally.add(*counter.correct(xc, y))
            tally.record(state, job.unit(name, s, k), stop - start)  # the one host sync of a unit
            bar.set_postfix_str(f"{name} s{s}", refresh=False)
            bar.update(1)


def _report(job: _Job, state: _State, metadata: dict[str, Any], baseline: Baseline | None) -> CorruptionReport:
    """The report from the recorded counts and bins only, so that a resumed run gives the same numbers."""

    def total(keys: list[str]) -> tuple[int, int]:
        return sum(state.done[u][0] for u in keys), sum(state.done[u][1] for u in keys)

    def ece(keys: list[str]) -> float | None:
        if not keys:
            return None
        bins = torch.zeros(3, len(state.done[keys[0]][2][0]), dtype=torch.float64)
        for u in keys:  # a fixed order: the same float sums whether or not the run was resumed
            bins += torch.tensor(state.done[u][2], dtype=torch.float64)
        return ece_from_bins(bins)

    errors: dict[str, list[float]] = {}
    eces: dict[str, list[float]] = {}
    n_corrupt: dict[str, list[int]] = {}
    for name in job.names:
        counts = [total(job.corrupted(name, s)) for s in job.severities]
        errors[name] = [1.0 - c / max(n, 1) for c, n in counts]
        eces[name] = [ece(job.corrupted(name, s)) for s in job.severities]  # type: ignore[misc]
        n_corrupt[name] = [n for _, n in counts]
    clean_keys = [job.clean(k) for k in range(len(job.chunks))]
    clean_correct, n_clean = total(clean_keys)
    clean_error = None if n_clean == 0 else 1.0 - clean_correct / n_clean
    sizes = {n for row in n_corrupt.values() for n in row}
    if len(sizes) > 1:
        metadata["images_per_corruption"] = n_corrupt
    return CorruptionReport(
        clean_error=clean_error, errors=errors, severities=job.severities, num_images=max(sizes), metadata=metadata,
        baseline=baseline, ece=eces, clean_ece=ece(clean_keys) if n_clean else None,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- the front door


class _TensorImages(Dataset[tuple[torch.Tensor, int]]):
    """A dataset's items with PIL images (or ``(H, W, 3)`` uint8 arrays) as ``(3, H, W)`` uint8 tensors."""

    def __init__(self, dataset: Dataset[Any]) -> None:
        self.dataset = dataset
        self.targets = getattr(dataset, "targets", None)
        self.classes = getattr(dataset, "classes", None)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[index]
        if isinstance(image, torch.Tensor):
            return image, label
        if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
            image = np.array(image.convert("RGB"), dtype=np.uint8)  # a writable copy
        if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[-1] == 3:
            return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous(), label
        raise AugrobustValueError(
            f"item {index} of the dataset is a {type(image).__name__}; give (3, H, W) tensors, PIL images or "
            "(H, W, 3) uint8 arrays."
        )


def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor],
    data: Any,
    *,
    corruptions: str | Sequence[str] = "common",
    severities: Sequence[int] = _ALL_SEVERITIES,
    preset: str = "auto",
    reference: str = "auto",
    normalize: Any = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    baseline: Any = "auto",
    num_classes: int | None = None,
    clean: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    num_workers: int | None = None,
    model_name: str | None = None,
    progress: bool = True,
    check_values: bool = True,
) -> CorruptionReport:
    """Corruption robustness of any classifier: clean and corrupted errors, means per corruption set, ECE,
    and CE / mCE against a stated baseline. ``augrobust eval`` calls this with the same defaults.

    Args:
        model: maps ``(B, 3, H, W)`` float images in ``[0, 1]`` (after ``normalize``) to ``(B, K)`` logits.
        data: clean test images, corrupted on the fly (a Dataset of tensors, PIL images or ``(H, W, 3)``
            arrays with int labels; a DataLoader, whose dataset, batch size and workers are used, in order; a
            ``--data`` spec string), or pre-made corrupted files (a
            :class:`~augrobust.data.CorruptedBenchmark` or a spec such as ``"cifar10-c:DIR"``).
        corruptions: ``"common"`` (the 15 benchmark corruptions), ``"validation"`` (the 4 hold-out),
            ``"all"`` or a list of names.
        severities: a subset of 1..5.
        preset, reference: ``"auto"`` resolves from the images' side by :data:`AUTO_PRESET_RULE`
            (:func:`auto_preset`); the report records what was used and the rule.
        normalize: ``None``, ``"imagenet"``, ``"cifar"`` or ``(mean, std)``: applied after the corruption.
        batch_size: images per batch (default: the DataLoader's, else 128). The on-the-fly draws depend on it.
        device: where the images are corrupted and the model runs; default: the device of the model's
            parameters (the CPU for a callable or a model without parameters).
        seed: the corruptions' seed.
        baseline: ``"auto"`` (AlexNet's published errors for ImageNet-C-shaped data, 1000 classes and the
            imagenet preset; none otherwise), ``"alexnet"``, ``"none"``, or another model's report (a
            ``report.json`` path or a :class:`CorruptionReport`). Without one, CE / mCE are absent.
        num_classes: the model's classes (default: the width of its logits).
        clean: with pre-made ``data``, the clean test set for the clean error (optional).
        out_dir: keep finished units there; a rerun with the same arguments continues.
        num_workers: DataLoader workers (default: the DataLoader's, else 0).
        model_name: the name in the report and figures (default: the model's class name).
        progress: progress on stderr.
        check_values: check each batch of float images on the host (finite, in ``[0, 1]``); ``False`` skips it.

    Returns:
        A :class:`CorruptionReport`.

    Example:
        >>> import torch, augrobust
        >>> from augrobust.data import SyntheticShapes
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
        >>> r = augrobust.evaluate(model, SyntheticShapes(8, train=False), corruptions=["fog"], severities=(1,),
        ...                        device="cpu", progress=False)
        >>> r.metadata["preset"], r.mce(), r.means()["benchmark"]["description"]
        ('cifar', None, '1 of the 15 benchmark corruptions')
    """
    from torch.utils.data import DataLoader as _Loader

    if isinstance(data, str):
        from augrobust.data import from_spec

        data = from_spec(data, train=False, benchmarks=True)
    if isinstance(clean, str):
        from augrobust.data import from_spec

        clean = from_spec(clean, train=False)
    bench: CorruptedBenchmark | None = None
    if isinstance(data, CorruptedBenchmark):
        bench, dataset = data, clean
    else:
        if clean is not None:
            raise AugrobustValueError("clean= is for pre-made corrupted data; on the fly, data is the clean set.")
        dataset = data
    if isinstance(dataset, _Loader):
        batch_size = dataset.batch_size if batch_size is None else batch_size
        num_workers = dataset.num_workers if num_workers is None else num_workers
        dataset = dataset.dataset
    if dataset is not None:
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise AugrobustTypeError(
                "data must be a Dataset, a DataLoader, a CorruptedBenchmark or a spec string, got "
                f"{type(data).__name__}."
            )
        dataset = _TensorImages(dataset)
    if device is None:  # where the model is (so the CLI, which puts it on --device, agrees), else the CPU
        params = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
        device = "cpu" if params is None else params.device
    norm = parse_normalize(normalize)
    name = model_name or type(model).__name__
    if norm is not None:
        if not isinstance(model, torch.nn.Module):
            raise AugrobustTypeError("normalize= needs an nn.Module model; normalise inside your callable instead.")
        model = Normalized(model, *norm).to(device)
    report = evaluate_corruptions(
        model, dataset, corruptions=corruptions, severities=severities,  # type: ignore[arg-type]
        batch_size=128 if batch_size is None else batch_size, device=device, seed=seed, preset=preset,
        reference=reference, progress=progress, num_workers=0 if num_workers is None else num_workers,
        num_classes=num_classes, out_dir=out_dir, benchmark=bench, baseline=baseline, model_name=name,
        check_values=check_values,
    )  # fmt: skip
    if norm is not None:
        report.metadata["normalize"] = {"mean": list(norm[0]), "std": list(norm[1])}
    return report
