"""Evaluate a classifier on corrupted data: on the fly with :func:`augrobust.corrupt`, or from ``.npy`` files.

On the fly, each batch of clean images is moved to the device once and corrupted there with every corruption
and severity. The random draws of a batch come from a ``torch.Generator`` seeded by
:func:`corruption_batch_seed` from ``(seed, corruption, severity, batch index)``, so a result does not depend
on the order in which corruptions are evaluated (it does depend on ``batch_size``, which fixes what a batch
index means). Images are corrupted in the dataset's dtype: ``uint8`` datasets are corrupted as ``uint8``
(floored like ``np.uint8``, as when CIFAR-10-C was written to disk) and then scaled to ``[0, 1]`` for the
model.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from augrobust._io import atomic_write_bytes
from augrobust._tensor import to_float
from augrobust.corruptions import CORRUPTION_ORDER, SUBSETS, corrupt, get_spec, registered_names
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.metrics import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, mce, relative_mce

__all__ = ["CorruptionReport", "corruption_batch_seed", "evaluate_corruptions"]

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


# ------------------------------------------------------------------------------------------------- progress


class _Progress:
    """A plain one-line progress counter on stderr, shown only on a terminal."""

    def __init__(self, total: int, desc: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled) and total > 0 and getattr(self.stream, "isatty", lambda: False)()
        self.total, self.desc, self.done = total, desc, 0
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1, desc: str | None = None) -> None:
        self.done += n
        if desc is not None:
            self.desc = desc
        now = time.monotonic()
        if self.enabled and (now - self.last >= 0.2 or self.done >= self.total):
            self.last = now
            elapsed = now - self.start
            eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
            self.stream.write(
                f"\r{self.desc}: {self.done}/{self.total} ({100 * self.done / self.total:.0f}%) "
                f"{elapsed:.0f}s elapsed, ~{eta:.0f}s left   "
            )
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# ----------------------------------------------------------------------------------------------- evaluation


def _collate(batch: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.stack([torch.as_tensor(img) for img, _ in batch])
    labels = torch.as_tensor([int(label) for _, label in batch], dtype=torch.long)
    return images, labels


def _check_severities(severities: Iterable[int]) -> tuple[int, ...]:
    sevs = tuple(severities)
    if not sevs:
        raise AugrobustValueError("severities is empty; give some of 1..5.")
    for s in sevs:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise AugrobustTypeError(f"severities must be ints in 1..5, got {s!r}.")
        if not 1 <= s <= 5:
            raise AugrobustValueError(f"severities must be in 1..5, got {s}.")
    if len(set(sevs)) != len(sevs):
        raise AugrobustValueError(f"severities has duplicates: {sevs}.")
    return tuple(int(s) for s in sevs)


def _ordered(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    rank = {n: i for i, n in enumerate(CORRUPTION_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


class _Counter:
    """Counts correct top-1 predictions on the device, so the batch loop never syncs with the host."""

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> None:
        self.model, self.device = model, device

    def correct(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = to_float(images).to(torch.float32)
        logits = self.model(x)
        if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
            raise AugrobustValueError(
                f"the model must return (B, num_classes) logits; for a batch of {labels.shape[0]} it returned "
                f"shape {tuple(logits.shape)}."
            )
        return (logits.argmax(dim=1) == labels).sum()


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
) -> CorruptionReport:
    """Top-1 error of ``model`` on ``dataset``, clean and under each corruption and severity.

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
        progress: show a progress line on stderr (only when stderr is a terminal).
        npy_root: read CIFAR-10-C-style ``<corruption>.npy`` files from this folder instead of corrupting.
        num_workers: DataLoader workers.

    Returns:
        A :class:`CorruptionReport`.

    Example:
        >>> import torch
        >>> from augrobust.data import SyntheticShapes
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
        >>> report = evaluate_corruptions(model, SyntheticShapes(8, train=False), corruptions=["gaussian_noise"],
        ...                               severities=(1, 5), batch_size=4, progress=False)
        >>> report.severities, len(report.errors["gaussian_noise"]), report.num_images
        ((1, 5), 2, 8)
    """
    sevs = _check_severities(severities)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise AugrobustValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    dev = torch.device(device)
    if dataset is None and npy_root is None:
        raise AugrobustValueError("give a dataset, npy_root, or both.")
    if dataset is not None and len(dataset) == 0:  # type: ignore[arg-type]
        raise AugrobustValueError("the dataset is empty.")

    if npy_root is not None:
        from augrobust.data.npy import CorruptedNpyDataset, available_npy_corruptions

        available = available_npy_corruptions(npy_root)
        names = _ordered(available) if corruptions is None else list(corruptions)
    else:
        names = list(registered_names()) if corruptions is None else list(corruptions)
        for n in names:
            get_spec(n)  # unknown names fail before any work, with the list of valid ones
    if not names:
        raise AugrobustValueError("no corruptions to evaluate.")
    if len(set(names)) != len(names):
        raise AugrobustValueError(f"corruptions has duplicates: {names}.")

    was_training = getattr(model, "training", None)
    if isinstance(model, torch.nn.Module):
        model.eval()
    counter = _Counter(model, dev)
    loader_kw: dict[str, Any] = dict(batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate)
    correct = torch.zeros(len(names), len(sevs), dtype=torch.long, device=dev)
    clean_correct = torch.zeros((), dtype=torch.long, device=dev)
    n_clean = 0
    n_corrupt = [[0] * len(sevs) for _ in names]
    try:
        with torch.inference_mode():
            if npy_root is None:
                assert dataset is not None
                loader = DataLoader(dataset, **loader_kw)
                bar = _Progress(len(loader), "evaluating", progress)
                for b, (images, labels) in enumerate(loader):
                    x, y = images.to(dev, non_blocking=True), labels.to(dev, non_blocking=True)
                    clean_correct += counter.correct(x, y)
                    n_clean += len(y)
                    for i, name in enumerate(names):
                        for j, s in enumerate(sevs):
                            g = torch.Generator(device=dev)
                            g.manual_seed(corruption_batch_seed(seed, name, s, b))
                            xc = corrupt(x, name, s, preset=preset, reference=reference, generator=g)
                            correct[i, j] += counter.correct(xc, y)
                            n_corrupt[i][j] += len(y)
                    bar.update(1)
                bar.close()
            else:
                if dataset is not None:
                    loader = DataLoader(dataset, **loader_kw)
                    bar = _Progress(len(loader), "clean", progress)
                    for images, labels in loader:
                        clean_correct += counter.correct(images.to(dev), labels.to(dev))
                        n_clean += len(labels)
                        bar.update(1)
                    bar.close()
                bar = _Progress(len(names) * len(sevs), "corrupted .npy", progress)
                for i, name in enumerate(names):
                    for j, s in enumerate(sevs):
                        npy_ds = CorruptedNpyDataset(npy_root, name, s)
                        for images, labels in DataLoader(npy_ds, **loader_kw):
                            correct[i, j] += counter.correct(images.to(dev), labels.to(dev))
                            n_corrupt[i][j] += len(labels)
                        bar.update(1, desc=f"{name} s{s}")
                bar.close()
    finally:
        if isinstance(model, torch.nn.Module) and was_training:
            model.train()

    counts = correct.cpu().tolist()  # the one host sync
    errors = {
        name: [1.0 - counts[i][j] / max(n_corrupt[i][j], 1) for j in range(len(sevs))] for i, name in enumerate(names)
    }
    clean_error = None if n_clean == 0 else 1.0 - int(clean_correct) / n_clean
    sizes = {n for row in n_corrupt for n in row}
    metadata: dict[str, Any] = {
        "source": "npy" if npy_root is not None else "on_the_fly",
        "batch_size": batch_size,
        "device": str(dev),
    }
    if npy_root is None:
        metadata.update(preset=preset, reference=reference, seed=seed)
    else:
        metadata["npy_root"] = str(npy_root)
    if len(sizes) > 1:
        metadata["images_per_corruption"] = {name: n_corrupt[i] for i, name in enumerate(names)}
    if clean_error is not None and math.isnan(clean_error):  # pragma: no cover - defensive
        clean_error = None
    return CorruptionReport(
        clean_error=clean_error, errors=errors, severities=sevs, num_images=max(sizes), metadata=metadata
    )
