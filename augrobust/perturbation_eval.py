"""ImageNet-P / CIFAR-10-P evaluation on the fly: flip probability and top-5 distance of a model.

For every perturbation and difficulty, each image of ``data`` becomes its sequence
(:func:`augrobust.perturbations.perturb`, image ``k`` seeded with ``perturbation_seed(seed, k, name, d)``), the
model classifies every frame, and the per-video values of :mod:`augrobust.metrics` (the rules of
``ImageNet-P/test.py``) are averaged over videos. The consecutive sequences are the same at every difficulty
(the difficulty is the stride), so their frames are made and classified once for all difficulties.

Numbers: FP and uT5D unnormalised always; FR / T5D and their means only against a ``baseline`` report of the
same perturbations, difficulties and variant (no AlexNet values are shipped: they are not in the reference
code). A perturbation's value is the mean over the difficulties evaluated (augrobust's convention; the paper's
aggregation over difficulties is not in the reference code either).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augrobust._io import atomic_write_text
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.metrics import (
    flip_probability_per_video,
    flip_rate,
    p_rule,
    top5_distance_per_video,
    zipf_distance_per_video,
)
from augrobust.perturbations import get_perturbation_names, get_spec, perturb, perturbation_generators

__all__ = ["PerturbationReport", "evaluate_perturbation_files", "evaluate_perturbations"]

_SCHEMA = "augrobust.perturbation_report/1"


@dataclass
class PerturbationReport:
    """Per perturbation and difficulty: FP, uT5D, Zipf distance, video count and flips along the sequence.

    ``results[name][str(difficulty)]`` holds ``fp``, ``ut5d``, ``zipf``, ``videos`` and ``flips_by_pair`` (the share
    of videos whose prediction flips at each compared pair, in frame order).

    Example:
        >>> r = PerturbationReport(variant="cifar", seed=0, results={"rotate": {"1": {"fp": 0.1, "ut5d": 0.5,
        ...     "zipf": 0.0, "videos": 4, "flips_by_pair": []}}})
        >>> r.fp()["rotate"], r.mean_flip_rate(r)
        (0.1, 1.0)
    """

    variant: str
    seed: int
    results: dict[str, dict[str, dict[str, Any]]]
    provenance: dict[str, Any] = field(default_factory=dict)

    def _per_perturbation(self, key: str) -> dict[str, float]:
        out = {}
        for name, by_d in self.results.items():
            values = [v[key] for v in by_d.values()]
            if any(value is None for value in values):
                raise AugrobustValueError(f"{key} of {name} is undefined (a model with fewer than 5 classes).")
            out[name] = sum(values) / len(values)
        return out

    def fp(self) -> dict[str, float]:
        """Flip probability per perturbation (mean over the difficulties evaluated)."""
        return self._per_perturbation("fp")

    def ut5d(self) -> dict[str, float]:
        """Unnormalised top-5 distance per perturbation (mean over the difficulties evaluated)."""
        return self._per_perturbation("ut5d")

    def _check_baseline(self, baseline: PerturbationReport) -> None:
        if not isinstance(baseline, PerturbationReport):
            raise AugrobustTypeError(
                f"baseline must be a PerturbationReport (PerturbationReport.load_json(path)), got {type(baseline).__name__}."
            )
        if baseline.variant != self.variant:
            raise AugrobustValueError(f"the baseline is a {baseline.variant} report, this one {self.variant}.")
        for name, by_d in self.results.items():
            if name not in baseline.results or set(baseline.results[name]) != set(by_d):
                raise AugrobustValueError(
                    f"the baseline lacks {name} at difficulties {sorted(by_d)}; it has "
                    f"{ {n: sorted(d) for n, d in baseline.results.items()} }. Evaluate it on the same sequences."
                )

    def flip_rates(self, baseline: PerturbationReport) -> dict[str, float]:
        """FR per perturbation: FP over the baseline's FP."""
        self._check_baseline(baseline)
        base = baseline.fp()
        return {n: flip_rate(v, base[n]) for n, v in self.fp().items()}

    def top5_distances(self, baseline: PerturbationReport) -> dict[str, float]:
        """T5D per perturbation: uT5D over the baseline's uT5D."""
        self._check_baseline(baseline)
        base = baseline.ut5d()
        return {n: flip_rate(v, base[n]) for n, v in self.ut5d().items()}

    def mean_flip_rate(self, baseline: PerturbationReport) -> float:
        """mFR over this report's perturbations."""
        rates = self.flip_rates(baseline)
        return sum(rates.values()) / len(rates)

    def mean_top5_distance(self, baseline: PerturbationReport) -> float:
        """mT5D over this report's perturbations."""
        values = self.top5_distances(baseline)
        return sum(values.values()) / len(values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (schema ``augrobust.perturbation_report/1``)."""
        return {
            "schema": _SCHEMA,
            "variant": self.variant,
            "seed": self.seed,
            "normalisation": "none (FP, uT5D); FR / T5D only against a baseline report",
            "results": self.results,
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerturbationReport:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, Mapping) or data.get("schema") != _SCHEMA:
            raise AugrobustValueError(f"not a perturbation report (schema {_SCHEMA!r} expected).")
        return cls(
            variant=data["variant"], seed=data["seed"], results=data["results"], provenance=data.get("provenance", {})
        )

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the report atomically as JSON."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load_json(cls, path: str | os.PathLike[str]) -> PerturbationReport:
        """Read a report written by :meth:`save_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_markdown(self, baseline: PerturbationReport | None = None) -> str:
        """A table: perturbation, difficulty, FP, uT5D (and FR / T5D per perturbation with a baseline)."""
        lines = [
            f"# ImageNet-P evaluation ({self.variant}, seed {self.seed})",
            "",
            "| perturbation | difficulty | videos | FP (%) | uT5D |",
            "|---|---|---|---|---|",
        ]
        for name, by_d in self.results.items():
            for d, v in by_d.items():
                ut5d = "n/a" if v["ut5d"] is None else f"{v['ut5d']:.4f}"
                lines.append(f"| {name} | {d} | {v['videos']} | {100 * v['fp']:.2f} | {ut5d} |")
        if baseline is not None:
            fr, t5 = self.flip_rates(baseline), self.top5_distances(baseline)
            lines += ["", "| perturbation | FR (%) | T5D (%) |", "|---|---|---|"]
            lines += [f"| {n} | {100 * fr[n]:.1f} | {100 * t5[n]:.1f} |" for n in fr]
            lines += ["", f"mFR {100 * self.mean_flip_rate(baseline):.1f} %, "
                      f"mT5D {100 * self.mean_top5_distance(baseline):.1f} % (baseline: a given report)"]  # fmt: skip
        return "\n".join(lines) + "\n"

    def save_markdown(self, path: str | os.PathLike[str], baseline: PerturbationReport | None = None) -> Path:
        """Write :meth:`to_markdown` atomically."""
        return atomic_write_text(path, self.to_markdown(baseline))


def _images(data: Any) -> Callable[[int, int], torch.Tensor]:
    """A slicer over ``data``: a ``(N, 3, H, W)`` tensor, or a dataset of images or (image, label) pairs."""
    if isinstance(data, torch.Tensor):
        if data.ndim != 4:
            raise AugrobustValueError(f"data must be (N, 3, H, W) images, got shape {tuple(data.shape)}.")
        return lambda a, b: data[a:b]
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise AugrobustTypeError(f"data must be a tensor or a map-style dataset, got {type(data).__name__}.")

    def get(a: int, b: int) -> torch.Tensor:
        items = [data[i] for i in range(a, b)]
        images = [torch.as_tensor(it[0] if isinstance(it, (tuple, list)) else it) for it in items]
        if len({tuple(t.shape) for t in images}) > 1:
            raise AugrobustValueError("the dataset's images differ in size; resize or crop them to one size first.")
        return torch.stack(images)

    return get


def _check_difficulties(difficulties: Sequence[int]) -> list[int]:
    diffs = sorted(set(int(d) for d in difficulties))
    if not diffs or any(d not in (1, 2, 3) for d in diffs):
        raise AugrobustValueError(f"difficulties must be a non-empty subset of (1, 2, 3), got {difficulties!r}.")
    return diffs


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise AugrobustValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")


def _model_device(model: Callable[[torch.Tensor], torch.Tensor], device: str | torch.device | None) -> torch.device:
    if device is None:
        params = list(getattr(model, "parameters", lambda: [])())
        device = params[0].device if params else torch.device("cpu")
    return torch.device(device)


def _evaluate(
    model: Callable[[torch.Tensor], torch.Tensor],
    names: list[str],
    diffs: list[int],
    batches: Callable[[str, int], Iterable[torch.Tensor]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Classify every frame batch ``batches(name, made_at_difficulty)`` yields (uint8 ``(V, T, 3, H, W)``)."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        rule = p_rule(name)
        # noise: one set of frames per difficulty, stride 1; otherwise one set of frames, stride = difficulty
        passes = [(d, [(d, 1)]) for d in diffs] if rule == "noise" else [(1, [(d, d) for d in diffs])]
        acc: dict[int, dict[str, Any]] = {}
        for make_d, uses in passes:
            for frames in batches(name, make_d):
                v, t = frames.shape[:2]
                flat = frames.reshape(v * t, *frames.shape[2:])
                # uint8 frames are scaled here; float frames (perturb() of float images) are already uint8 / 255
                flat = flat.float() / 255 if flat.dtype == torch.uint8 else flat.float()
                with torch.no_grad():
                    logits = model(flat)
                if not isinstance(logits, torch.Tensor) or logits.shape[:1] != (v * t,) or logits.ndim != 2:
                    raise AugrobustValueError(f"the model must return (N, num_classes) logits for N={v * t} frames.")
                logits = logits.reshape(v, t, -1).float()
                classes = logits.shape[-1]
                preds = logits.argmax(-1)
                for d, stride in uses:
                    a = acc.setdefault(d, {"fp": 0.0, "ut5d": 0.0, "zipf": 0.0, "videos": 0, "flips": None})
                    a["fp"] += flip_probability_per_video(preds, rule=rule, stride=stride).sum()
                    if classes >= 5:  # uT5D is undefined below 5 classes: reported as None
                        a["ut5d"] += top5_distance_per_video(logits, rule=rule, stride=stride).sum()
                    a["zipf"] += zipf_distance_per_video(logits, rule=rule, stride=stride).sum()
                    nxt = torch.arange(stride if rule == "consecutive" else 1, t, device=preds.device)
                    prev = nxt - stride if rule == "consecutive" else torch.zeros_like(nxt)
                    flips = (preds[:, nxt] != preds[:, prev]).double().sum(0)
                    a["flips"] = flips if a["flips"] is None else a["flips"] + flips
                    a["videos"] += v
        results[name] = {
            str(d): {
                "fp": float(a["fp"]) / a["videos"],
                "ut5d": float(a["ut5d"]) / a["videos"] if classes >= 5 else None,
                "zipf": float(a["zipf"]) / a["videos"],
                "videos": a["videos"],
                "flips_by_pair": [float(f) / a["videos"] for f in a["flips"].tolist()],
            }
            for d, a in sorted(acc.items())
        }
    return results


def evaluate_perturbations(
    model: Callable[[torch.Tensor], torch.Tensor],
    data: Any,
    *,
    perturbations: Sequence[str] | None = None,
    difficulties: Sequence[int] = (1, 2, 3),
    variant: str = "imagenet",
    batch_size: int = 8,
    device: str | torch.device | None = None,
    seed: int = 0,
    baseline: PerturbationReport | None = None,
) -> PerturbationReport:
    """Flip probability and top-5 distance of ``model`` on the perturbation sequences of ``data``.

    Args:
        model: maps float frames in ``[0, 1]`` ``(N, 3, H, W)`` to ``(N, num_classes)`` logits.
        data: ``(N, 3, H, W)`` uint8 / float images or a dataset of them (or of ``(image, label)`` pairs), uncropped
            as :mod:`augrobust.perturbations` describes.
        perturbations: names (default: the implemented test perturbations).
        difficulties: 1-3; the noise sequences are regenerated per difficulty, the others strided.
        variant: ``"imagenet"``, ``"tinyimagenet"`` or ``"cifar"``.
        batch_size: images (videos) per model call; the model sees ``batch_size * T`` frames.
        device: where frames are made and classified (default: the model's parameters' device, else CPU).
        seed: dataset seed of the canonical per-image generators.
        baseline: if given, checked against the result (same perturbations and difficulties), so that
            ``report.mean_flip_rate(baseline)`` is defined.

    Example:
        >>> import torch
        >>> model = lambda x: torch.ones(x.shape[0], 10)  # never changes its mind
        >>> x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
        >>> r = evaluate_perturbations(model, x, perturbations=["rotate", "shot_noise"], variant="cifar")
        >>> r.fp()
        {'rotate': 0.0, 'shot_noise': 0.0}
    """
    names = list(perturbations) if perturbations is not None else get_perturbation_names("test")
    for name in names:
        get_spec(name)
    diffs = _check_difficulties(difficulties)
    _check_batch_size(batch_size)
    device = _model_device(model, device)
    get = _images(data)
    n = len(data)
    if n == 0:
        raise AugrobustValueError("data holds no images.")

    def batches(name: str, make_d: int) -> Iterator[torch.Tensor]:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            x = get(start, stop).to(device)
            gens = perturbation_generators(name, make_d, range(start, stop), seed=seed, device=device)
            yield perturb(x, name, make_d, variant=variant, generator=gens)

    results = _evaluate(model, names, diffs, batches)
    report = PerturbationReport(
        variant=variant,
        seed=seed,
        results=results,
        provenance={"difficulties": diffs, "seeding": "perturbation_seed(seed, index, name, difficulty)"},
    )
    if baseline is not None:
        report._check_baseline(baseline)
    return report


def _file_sets(root: Path, fmt: str) -> dict[str, list[int]]:
    """name -> difficulties present under ``root`` (``<set>.npy`` files or ``<set>/`` folders)."""
    from augrobust.data.perturbation_files import split_set_name

    stems = [p.stem for p in root.glob("*.npy")] if fmt == "cifar-p" else [p.name for p in root.iterdir() if p.is_dir()]
    found: dict[str, list[int]] = {}
    for stem in stems:
        name, d = split_set_name(stem)
        if name in get_perturbation_names("all"):
            found.setdefault(name, []).append(d)
    return found


def evaluate_perturbation_files(
    model: Callable[[torch.Tensor], torch.Tensor],
    root: str | os.PathLike[str],
    *,
    format: str | None = None,
    perturbations: Sequence[str] | None = None,
    difficulties: Sequence[int] = (1, 2, 3),
    batch_size: int = 8,
    device: str | torch.device | None = None,
    baseline: PerturbationReport | None = None,
) -> PerturbationReport:
    """:func:`evaluate_perturbations` on sequences read from files: ``augrobust generate --format *-p`` output or
    the released CIFAR-10-P / ImageNet-P folders (:mod:`augrobust.data.perturbation_files` layouts).

    The report has the same schema. For a generated folder, ``format``, the variant and the seed come from its
    ``manifest.json``, and the report equals the on-the-fly report of the same source, seed, generator device and
    ``batch_size`` byte for byte for the lossless ``cifar-p`` arrays (the MP4 layouts are lossy H.264: close, not
    equal). Without a manifest (a released download) give ``format``; the report's seed is then ``-1`` (unknown).
    Videos are read in source order (``cifar-p``) or sorted ``<class>/<file>`` order (MP4 layouts).

    Args:
        model: maps float frames in ``[0, 1]`` ``(N, 3, H, W)`` to ``(N, num_classes)`` logits.
        root: the folder holding the sets (``gaussian_noise.npy`` ... or ``gaussian_noise/`` ...).
        format: ``"cifar-p"``, ``"imagenet-p"`` or ``"tinyimagenet-p"``; default: the manifest's.
        perturbations: names (default: every perturbation with a set under ``root``, in the paper's order).
        difficulties: 1-3; the noise sequences read ``<name>_<d>`` for ``d > 1``, the others are strided.
        batch_size: videos per model call.
        device: where frames are classified (default: the model's parameters' device, else CPU).
        baseline: as :func:`evaluate_perturbations`.

    Example:
        >>> import tempfile, torch
        >>> from augrobust.data.generate import generate_dataset
        >>> out = tempfile.mkdtemp()
        >>> _ = generate_dataset("synthetic:4", out, format="cifar-p", perturbations=["rotate"], progress=False)
        >>> model = lambda x: torch.ones(x.shape[0], 10)  # never changes its mind
        >>> evaluate_perturbation_files(model, out).fp()
        {'rotate': 0.0}
    """
    from augrobust.data.manifest import MANIFEST_NAME, read_manifest
    from augrobust.data.perturbation_files import P_FORMATS, P_VARIANTS, read_cifar_p, read_mp4, require_av, set_name

    folder = Path(root)
    if not folder.is_dir():
        raise AugrobustValueError(f"{str(folder)!r} is not a folder of ImageNet-P / CIFAR-P sets.")
    seed, seeding = -1, "unknown (files without an augrobust manifest)"
    if (folder / MANIFEST_NAME).is_file():
        manifest = read_manifest(folder)
        made = manifest.get("arguments", {}).get("format")
        if made not in P_FORMATS:
            raise AugrobustValueError(f"{str(folder)!r} holds a {made!r} generation, not one of {P_FORMATS}.")
        if format is not None and format != made:
            raise AugrobustValueError(f"{str(folder)!r} holds {made!r} files, but format={format!r} was given.")
        format, seed = made, int(manifest["arguments"]["seed"])
        seeding = "perturbation_seed(seed, index, name, difficulty)"
    if format not in P_FORMATS:
        raise AugrobustValueError(
            f"format must be one of {P_FORMATS} (no manifest.json in {str(folder)!r}), got {format!r}."
        )
    if format != "cifar-p":
        require_av()
    diffs = _check_difficulties(difficulties)
    _check_batch_size(batch_size)
    device = _model_device(model, device)
    found = _file_sets(folder, format)
    names = [n for n in get_perturbation_names("all") if n in found] if perturbations is None else list(perturbations)
    if not names:
        raise AugrobustValueError(f"{str(folder)!r} holds no {format} sets.")
    for name in names:
        get_spec(name)
        need = diffs if "noise" in name else [1]
        missing = [set_name(name, d) for d in need if d not in found.get(name, [])]
        if missing:
            raise AugrobustValueError(
                f"{str(folder)!r} lacks the sets {missing} (it has "
                f"{sorted(set_name(n, d) for n, ds in found.items() for d in ds)}); generate them or choose other "
                "perturbations / difficulties."
            )

    def batches(name: str, make_d: int) -> Iterator[torch.Tensor]:
        if format == "cifar-p":
            arr = read_cifar_p(folder, name, make_d)
            for start in range(0, arr.shape[0], batch_size):
                chunk = torch.from_numpy(np.array(arr[start : start + batch_size]))  # a writable copy of the map
                yield chunk.permute(0, 1, 4, 2, 3).to(device)
            return
        videos = sorted((folder / set_name(name, make_d)).glob("*/*.mp4"))
        for start in range(0, len(videos), batch_size):
            chunk = np.stack([read_mp4(v) for v in videos[start : start + batch_size]])
            yield torch.from_numpy(chunk).permute(0, 1, 4, 2, 3).to(device)

    report = PerturbationReport(
        variant=P_VARIANTS[format],
        seed=seed,
        results=_evaluate(model, names, diffs, batches),
        provenance={"difficulties": diffs, "seeding": seeding},
    )
    if baseline is not None:
        report._check_baseline(baseline)
    return report
