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

import hashlib
import io
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from augrobust._checks import check_bool, check_count, check_preset, check_reference, check_severities
from augrobust._io import atomic_write_bytes, atomic_write_text, remove_stale_temporaries
from augrobust._progress import progress_bar
from augrobust._tensor import to_float
from augrobust.corruptions import CORRUPTION_ORDER, SUBSETS, corrupt, get_spec, registered_names
from augrobust.data import (
    CorruptedNpyDataset,
    DatasetFileNotFoundError,
    available_npy_corruptions,
    check_labels,
    dataset_targets,
)
from augrobust.errors import AugrobustValueError
from augrobust.metrics import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, mce, relative_mce

__all__ = ["STATE_NAME", "CorruptionReport", "corruption_batch_seed", "evaluate_corruptions"]

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


# --------------------------------------------------------------------------------------------------- report



def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.2f}"


@dataclass
class CorruptionReport:
    """Top-1 errors of one model: clean and per corruption and severity (fractions in ``[0, 1]``).

    Attributes:
        clean_error: error on the clean images (``None`` when no clean set was evaluated).
        errors: ``{corruption: [error at each of severities]}``.
        severities: the severities the error lists refer to, in order.
        num_images: images per (corruption, severity).
        metadata: how the numbers were made (preset, reference, seed, source, ...).

    Example:
        >>> r = CorruptionReport(clean_error=0.1, errors={"fog": [0.2, 0.3, 0.4, 0.5, 0.6]})
        >>> round(r.mean_corruption_accuracy(), 6)
        0.6
        >>> round(r.mce(baseline={"fog": [0.4, 0.6, 0.8, 1.0, 1.0]}), 6)
        0.526316
    """

    clean_error: float | None
    errors: dict[str, list[float]]
    severities: tuple[int, ...] = _ALL_SEVERITIES
    num_images: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.severities = tuple(int(s) for s in self.severities)
        self.errors = {name: [float(e) for e in errs] for name, errs in self.errors.items()}
        for name, errs in self.errors.items():
            if len(errs) != len(self.severities):
                raise AugrobustValueError(
                    f"corruption {name!r} has {len(errs)} errors but the report has severities {self.severities}."
                )

    # -- summaries
    def corruption_errors(self) -> dict[str, float]:
        """Mean error over severities, per corruption."""
        return {name: sum(errs) / len(errs) for name, errs in self.errors.items()}

    def mean_corruption_error(self) -> float:
        """Mean error over every corruption and severity evaluated."""
        if not self.errors:
            raise AugrobustValueError("the report holds no corruption errors.")
        return sum(self.corruption_errors().values()) / len(self.errors)

    def mean_corruption_accuracy(self) -> float:
        """Mean accuracy over every corruption and severity evaluated (1 - :meth:`mean_corruption_error`)."""
        return 1.0 - self.mean_corruption_error()

    def benchmark_corruptions(self) -> list[str]:
        """The corruptions mCE averages over by default: those of the 15 benchmark ("common") corruptions
        present in the report, or every corruption of the report if it holds none of them."""
        common = [n for n in SUBSETS["common"] if n in self.errors]
        return common or list(self.errors)

    def _selected(self, corruptions: Iterable[str] | None) -> dict[str, list[float]]:
        names = self.benchmark_corruptions() if corruptions is None else list(corruptions)
        missing = [n for n in names if n not in self.errors]
        if missing:
            raise AugrobustValueError(f"corruptions {missing} are not in the report; it has {list(self.errors)}.")
        return {n: self.errors[n] for n in names}

    def _baseline(self, baseline: Mapping[str, Sequence[float]] | None, names: Iterable[str]) -> dict[str, list[float]]:
        table = ALEXNET_ERRORS if baseline is None else baseline
        out = {}
        for n in names:
            if n not in table:
                raise AugrobustValueError(f"no baseline errors for {n!r}; the baseline has {list(table)}.")
            errs = list(table[n])
            if len(errs) == 5 and len(self.severities) != 5:  # a full table: pick the evaluated severities
                errs = [errs[s - 1] for s in self.severities]
            out[n] = errs
        return out

    def mce(self, baseline: Mapping[str, Sequence[float]] | None = None, *, corruptions: Iterable[str] | None = None) -> float:
        """mCE against ``baseline`` (AlexNet by default) over :meth:`benchmark_corruptions` or ``corruptions``.

        A baseline with all five severities is restricted to the severities of the report.
        """
        model = self._selected(corruptions)
        return mce(model, self._baseline(baseline, model))

    def relative_mce(
        self,
        baseline: Mapping[str, Sequence[float]] | None = None,
        baseline_clean: float | None = None,
        *,
        corruptions: Iterable[str] | None = None,
    ) -> float:
        """Relative mCE against ``baseline`` (AlexNet and its clean error by default); needs ``clean_error``."""
        if self.clean_error is None:
            raise AugrobustValueError("relative mCE needs the clean error; evaluate with a clean dataset.")
        if baseline is None and baseline_clean is None:
            baseline_clean = ALEXNET_CLEAN_ERROR
        model = self._selected(corruptions)
        return relative_mce(model, self.clean_error, self._baseline(baseline, model), baseline_clean)

    # -- serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the fields plus a ``summary`` of derived numbers (absent when undefined)."""
        summary: dict[str, Any] = {}
        if self.errors:
            summary["corruption_errors"] = self.corruption_errors()
            summary["mean_corruption_error"] = self.mean_corruption_error()
            summary["mean_corruption_accuracy"] = self.mean_corruption_accuracy()
            summary["mce_corruptions"] = self.benchmark_corruptions()
            try:
                summary["mce"] = self.mce()
                if self.clean_error is not None:
                    summary["relative_mce"] = self.relative_mce()
            except AugrobustValueError:  # no AlexNet baseline for these corruptions
                pass
        return {
            "clean_error": self.clean_error,
            "clean_accuracy": None if self.clean_error is None else 1.0 - self.clean_error,
            "errors": self.errors,
            "severities": list(self.severities),
            "num_images": self.num_images,
            "metadata": self.metadata,
            "summary": summary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorruptionReport:
        """Rebuild a report from :meth:`to_dict` output (the summary is recomputed, not read)."""
        return cls(
            clean_error=data.get("clean_error"),
            errors={k: list(v) for k, v in data["errors"].items()},
            severities=tuple(data.get("severities", _ALL_SEVERITIES)),
            num_images=int(data.get("num_images", 0)),
            metadata=dict(data.get("metadata", {})),
        )

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON, atomically (temporary file + ``os.replace``)."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        return atomic_write_bytes(path, text.encode())

    @classmethod
    def load_json(cls, path: str | os.PathLike[str]) -> CorruptionReport:
        """Read a report written by :meth:`save_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_markdown(self) -> str:
        """A Markdown summary and a table of errors (%) per corruption and severity."""
        lines = ["# Corruption robustness report", ""]
        meta = ", ".join(f"{k}: {v}" for k, v in self.metadata.items())
        lines.append(f"- images per (corruption, severity): {self.num_images}" + (f" ({meta})" if meta else ""))
        if self.clean_error is not None:
            lines.append(f"- clean error: {_pct(self.clean_error)} % (accuracy {_pct(1.0 - self.clean_error)} %)")
        summary = self.to_dict()["summary"]
        if self.errors:
            lines.append(f"- mean corruption accuracy: {_pct(summary['mean_corruption_accuracy'])} %")
            lines.append(f"- mean corruption error: {_pct(summary['mean_corruption_error'])} %")
        if "mce" in summary:
            k = len(summary["mce_corruptions"])
            lines.append(f"- mCE (AlexNet-normalised, over {k} corruptions): {_pct(summary['mce'])} %")
        if "relative_mce" in summary:
            lines.append(f"- relative mCE (AlexNet-normalised): {_pct(summary['relative_mce'])} %")
        lines.append("")
        head = ["corruption", *(f"s{s}" for s in self.severities), "mean", "CE"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |")
        for name, errs in self.errors.items():
            try:
                ce_text = _pct(mce({name: errs}, self._baseline(None, [name])))
            except AugrobustValueError:
                ce_text = "n/a"
            row = [name, *(_pct(e) for e in errs), _pct(sum(errs) / len(errs)), ce_text]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines.append("Errors in %. CE: the corruption error relative to AlexNet on ImageNet-C (100 = AlexNet).")
        return "\n".join(lines) + "\n"

    def save_markdown(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_markdown` atomically."""
        return atomic_write_bytes(path, self.to_markdown().encode())

    def save_heatmap(self, path: str | os.PathLike[str]) -> Path:
        """Draw a PNG heat map of the errors: one row per corruption (and a clean row), one column per
        severity, cells shaded from white (0 %) to dark red (100 %) with the error printed in each."""
        return atomic_write_bytes(path, _heatmap_png(self))


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def _heat_colour(err: float) -> tuple[int, int, int]:
    # White -> orange -> dark red, a perceptually monotone ramp.
    stops = [(0.0, (255, 255, 255)), (0.5, (244, 165, 96)), (1.0, (140, 12, 28))]
    err = min(max(err, 0.0), 1.0)
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if err <= b:
            t = (err - a) / (b - a)
            return tuple(round(x + (y - x) * t) for x, y in zip(ca, cb))  # type: ignore[return-value]
    return stops[-1][1]


def _heatmap_png(report: CorruptionReport) -> bytes:
    from PIL import Image, ImageDraw

    rows: list[tuple[str, list[float | None]]] = []
    if report.clean_error is not None:
        rows.append(("clean", [report.clean_error] + [None] * (len(report.severities) - 1)))
    rows += [(name, list(errs)) for name, errs in report.errors.items()]
    font, small = _font(13), _font(11)
    cell_w, cell_h, left, top, pad = 60, 24, 150, 46, 8
    width = left + cell_w * max(len(report.severities), 1) + pad
    height = top + cell_h * max(len(rows), 1) + pad
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((pad, pad), "top-1 error (%)", fill="black", font=font)
    for j, s in enumerate(report.severities):
        draw.text((left + j * cell_w + cell_w // 2, top - 6), f"s{s}", fill="black", font=font, anchor="ms")
    for i, (name, errs) in enumerate(rows):
        y0 = top + i * cell_h
        draw.text((left - 6, y0 + cell_h // 2), name, fill="black", font=font, anchor="rm")
        for j, err in enumerate(errs):
            if err is None:
                continue
            x0 = left + j * cell_w
            colour = _heat_colour(err)
            draw.rectangle([x0, y0, x0 + cell_w - 1, y0 + cell_h - 1], fill=colour, outline=(200, 200, 200))
            luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
            draw.text(
                (x0 + cell_w // 2, y0 + cell_h // 2), f"{100 * err:.1f}",
                fill="white" if luma < 128 else "black", font=small, anchor="mm",
            )  # fmt: skip
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------- resumable state

#: The file in ``out_dir`` that keeps the finished units of an evaluation (see :func:`evaluate_corruptions`).
STATE_NAME = "eval_state.json"
_STATE_FORMAT = "augrobust.eval-state"
_STATE_VERSION = 1
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
    """The finished units of one evaluation, ``{unit: [correct, total]}``, kept atomically in ``out_dir``."""

    def __init__(self, out_dir: Path | None, arguments: dict[str, Any]) -> None:
        self.path = None if out_dir is None else out_dir / STATE_NAME
        self.arguments = arguments
        self.done: dict[str, list[int]] = {}
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
        self.done = {str(k): [int(c), int(n)] for k, (c, n) in data.get("done", {}).items()}

    def _save(self) -> None:
        if self.path is None:
            return
        state = {"format": _STATE_FORMAT, "version": _STATE_VERSION, "arguments": self.arguments, "done": self.done}
        atomic_write_text(self.path, json.dumps(state, indent=1, sort_keys=True) + "\n")

    def record(self, unit: str, correct: int, total: int) -> None:
        self.done[unit] = [int(correct), int(total)]
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


def _collate(batch: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    images = [_as_image(img, "the dataset") for img, _ in batch]
    shapes = {tuple(t.shape) for t in images}
    if len(shapes) > 1:
        raise AugrobustValueError(
            f"the dataset's images differ in size ({sorted(shapes)[:4]}) and cannot be batched; resize them to one "
            "size (e.g. ImageFolderDataset(size=...), or --image-size)."
        )
    labels = torch.as_tensor([int(label) for _, label in batch], dtype=torch.long)
    return torch.stack(images), labels


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

    def correct(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (self.logits(images, labels.shape[0]).argmax(dim=1) == labels).sum()


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
    preset: str = "imagenet",
    reference: str = "imagecorruptions",
    progress: bool = True,
    npy_root: str | os.PathLike[str] | None = None,
    num_workers: int = 0,
    num_classes: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    chunk_images: int | None = None,
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
    sevs = check_severities(severities)
    batch_size = check_count(batch_size, "batch_size", minimum=1)
    seed = check_count(seed, "seed")
    preset, reference = check_preset(preset), check_reference(reference)
    progress = check_bool(progress, "progress")
    num_workers = check_count(num_workers, "num_workers")
    if num_classes is not None:
        num_classes = check_count(num_classes, "num_classes", minimum=1)
    if chunk_images is not None:
        chunk_images = check_count(chunk_images, "chunk_images", minimum=1)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise AugrobustValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r}.") from e
    if dataset is None and npy_root is None:
        raise AugrobustValueError("give a dataset, npy_root, or both.")
    if dataset is not None and len(dataset) == 0:  # type: ignore[arg-type]
        raise AugrobustValueError("the dataset is empty; give a dataset with at least one image.")
    names = _resolve_names(corruptions, npy_root)
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
                first = CorruptedNpyDataset(npy_root, names[0], sevs[0])[0][0]  # type: ignore[arg-type]
            num_classes = _model_classes(counter, first.to(dev), num_classes)
            if dataset is not None and (targets := dataset_targets(dataset)) is not None:
                check_labels(
                    targets, num_classes, source=f"the dataset ({type(dataset).__name__})", classes_of="the model",
                    fix="evaluate on data labelled with the model's classes",
                )  # fmt: skip
            npy_sets = {
                (name, s): CorruptedNpyDataset(npy_root, name, s, num_classes=num_classes)  # type: ignore[arg-type]
                for name in (names if npy_root is not None else [])
                for s in sevs
            }

            n_images = 0 if dataset is None else len(dataset)  # type: ignore[arg-type]
            if chunk_images is None:
                chunk_images = max(_CHUNK_BYTES // max(first.numel() * first.element_size() * batch_size, 1), 1)
                chunk_images *= batch_size
            chunk = -(-chunk_images // batch_size) * batch_size  # whole batches: batch indices stay global
            job = _Job(names, sevs, [(a, min(a + chunk, n_images)) for a in range(0, n_images, chunk)], npy_root)
            arguments: dict[str, Any] = {
                "corruptions": names, "severities": list(sevs), "batch_size": batch_size, "seed": seed,
                "preset": preset, "reference": reference, "device_type": dev.type, "num_classes": num_classes,
                "chunk_images": chunk, "source": "npy" if npy_root is not None else "on_the_fly",
            }  # fmt: skip
            if out_path is not None:  # what a resumed run must repeat, beyond the arguments
                arguments.update(_fingerprints(model, dataset, npy_root, names))
            state = _State(out_path, arguments)

            units = job.units()
            desc = "evaluating" if npy_root is None else "corrupted .npy"
            loader_kw: dict[str, Any] = dict(
                batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate
            )
            with progress_bar(total=len(units), desc=desc, quiet=not progress, unit="unit") as bar:
                bar.update(sum(u in state.done for u in units))
                if dataset is not None:
                    _run_chunks(
                        job, dataset, counter, state, bar, loader_kw,
                        seed=seed, preset=preset, reference=reference, num_classes=num_classes,
                    )  # fmt: skip
                for (name, s), npy_ds in npy_sets.items():
                    if job.unit(name, s) not in state.done:
                        correct = torch.zeros((), dtype=torch.long, device=dev)
                        for images, labels in DataLoader(npy_ds, **loader_kw):
                            correct += counter.correct(images.to(dev), labels.to(dev))
                        state.record(job.unit(name, s), int(correct), len(npy_ds))
                        bar.set_postfix_str(f"{name} s{s}", refresh=False)
                        bar.update(1)
    finally:
        if isinstance(model, torch.nn.Module) and was_training:
            model.train()

    metadata: dict[str, Any] = {
        "source": "npy" if npy_root is not None else "on_the_fly",
        "batch_size": batch_size,
        "device": str(dev),
    }
    if npy_root is None:
        metadata.update(preset=preset, reference=reference, seed=seed)
    else:
        metadata["npy_root"] = str(npy_root)
    return _report(job, state, metadata)


def _resolve_names(corruptions: Sequence[str] | None, npy_root: str | os.PathLike[str] | None) -> list[str]:
    """The corruptions to evaluate, each known (registered, or a file in ``npy_root``), none twice."""
    if npy_root is not None:
        available = available_npy_corruptions(npy_root)
        names = _ordered(available) if corruptions is None else list(corruptions)
        missing = [n for n in names if n not in available]
        if missing:
            raise DatasetFileNotFoundError(
                f"no file for corruption(s) {missing} in {str(npy_root)!r} (expected <corruption>.npy); "
                f"available: {', '.join(available) if available else 'none'}."
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
    names: list[str],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": _model_fingerprint(model),
        "dataset": None if dataset is None else _dataset_fingerprint(dataset),
    }
    if npy_root is not None:
        files = sorted({*(f"{n}.npy" for n in names), "labels.npy"})
        out["npy_files"] = {f: _file_fingerprint(Path(npy_root) / f) for f in files}
    return out


@dataclass
class _Job:
    """The units of one evaluation: per chunk of the clean dataset, its clean count and, on the fly, each
    (corruption, severity) over it; from ``.npy`` files, each (corruption, severity) file block."""

    names: list[str]
    severities: tuple[int, ...]
    chunks: list[tuple[int, int]]
    npy_root: str | os.PathLike[str] | None

    @staticmethod
    def clean(k: int) -> str:
        return f"/clean/{k}"  # "/" never occurs in a corruption name (a file stem with npy_root)

    def unit(self, name: str, severity: int, k: int | None = None) -> str:
        return f"{name}/{severity}" if k is None else f"{name}/{severity}/{k}"

    def pairs(self) -> list[tuple[str, int]]:
        return [(name, s) for name in self.names for s in self.severities]

    def corrupted(self, name: str, severity: int) -> list[str]:
        if self.npy_root is not None:
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
    on_the_fly = job.pairs() if job.npy_root is None else []
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
        clean = torch.zeros((), dtype=torch.long, device=dev)
        for b in range(start // batch_size, -(-stop // batch_size)):
            images, labels = next(batches)
            _check_batch_labels(labels, num_classes, b * batch_size)
            x, y = images.to(dev, non_blocking=True), labels.to(dev, non_blocking=True)
            if clean_todo:
                clean += counter.correct(x, y)
            if pairs:
                held.append((b, x, y))
        if clean_todo:
            state.record(job.clean(k), int(clean), stop - start)
            bar.update(1)
        for name, s in pairs:
            correct = torch.zeros((), dtype=torch.long, device=dev)
            for b, x, y in held:
                g = torch.Generator(device=dev)
                g.manual_seed(corruption_batch_seed(seed, name, s, b))
                xc = corrupt(x, name, s, preset=preset, reference=reference, generator=g)
                correct += counter.correct(xc, y)
            state.record(job.unit(name, s, k), int(correct), stop - start)  # the one host sync of a unit
            bar.set_postfix_str(f"{name} s{s}", refresh=False)
            bar.update(1)


def _report(job: _Job, state: _State, metadata: dict[str, Any]) -> CorruptionReport:
    """The report from the recorded integer counts only, so that a resumed run gives the same numbers."""

    def total(keys: list[str]) -> tuple[int, int]:
        return sum(state.done[u][0] for u in keys), sum(state.done[u][1] for u in keys)

    errors: dict[str, list[float]] = {}
    n_corrupt: dict[str, list[int]] = {}
    for name in job.names:
        counts = [total(job.corrupted(name, s)) for s in job.severities]
        errors[name] = [1.0 - c / max(n, 1) for c, n in counts]
        n_corrupt[name] = [n for _, n in counts]
    clean_correct, n_clean = total([job.clean(k) for k in range(len(job.chunks))])
    clean_error = None if n_clean == 0 else 1.0 - clean_correct / n_clean
    sizes = {n for row in n_corrupt.values() for n in row}
    if len(sizes) > 1:
        metadata["images_per_corruption"] = n_corrupt
    return CorruptionReport(
        clean_error=clean_error, errors=errors, severities=job.severities, num_images=max(sizes), metadata=metadata
    )
