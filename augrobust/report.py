"""The result of a corruption evaluation: :class:`CorruptionReport`, and the baselines mCE is normalised by.

Every number of a report says what it is over:

* unnormalised errors and accuracies are always there: per corruption and severity, per corruption (mean
  over severities), and means over each corruption set (:data:`CORRUPTION_SETS`: the 15 benchmark
  corruptions, the 4 hold-out ones, all 19), each mean naming its set and the corruptions it averaged;
* CE, mCE and relative mCE exist only against a stated :class:`Baseline`: AlexNet's published ImageNet-C
  errors (:func:`alexnet_baseline`, valid for ImageNet-C-shaped data only) or another model's saved report
  (:meth:`Baseline.from_report`). Without one they are absent (``None``), never made up;
* expected calibration error (ECE, 15 equal-width confidence bins, L1; :func:`augrobust.metrics.ece_from_bins`)
  per corruption and severity, when the evaluation recorded it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augrobust._corruption_names import SUBSETS
from augrobust._io import atomic_write_bytes
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.metrics import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, ce, relative_ce

__all__ = ["ALEXNET_NAME", "CORRUPTION_SETS", "Baseline", "CorruptionReport", "alexnet_baseline"]

_ALL_SEVERITIES = (1, 2, 3, 4, 5)

#: The corruption sets every mean is reported over: ``(key, description, corruptions)``. "benchmark" is the
#: set mCE is defined on (Hendrycks & Dietterich 2019) and the one CIFAR-10-C papers average.
CORRUPTION_SETS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("benchmark", "the 15 benchmark corruptions", SUBSETS["common"]),
    ("holdout", "the 4 hold-out corruptions", SUBSETS["validation"]),
    ("all", "all 19 corruptions", SUBSETS["all"]),
)

#: The name :func:`alexnet_baseline` gives its baseline.
ALEXNET_NAME = "AlexNet on ImageNet-C (published errors, Hendrycks & Dietterich 2019)"


@dataclass(frozen=True)
class Baseline:
    """The errors CE and mCE are normalised by: ``{corruption: [error per severity]}`` and a clean error.

    Attributes:
        name: what the baseline is (printed next to every normalised number).
        errors: per corruption, one error per severity of ``severities``.
        severities: the severities the error lists refer to.
        clean_error: the baseline's clean error (relative mCE needs it; ``None`` leaves relative mCE absent).

    Example:
        >>> b = Baseline("my ResNet-18", {"fog": [0.2, 0.4]}, severities=(1, 2), clean_error=0.1)
        >>> b.errors_for("fog", (2,))
        [0.4]
    """

    name: str
    errors: dict[str, list[float]]
    severities: tuple[int, ...] = _ALL_SEVERITIES
    clean_error: float | None = None

    def errors_for(self, corruption: str, severities: Sequence[int]) -> list[float]:
        """The baseline's errors on ``corruption`` at ``severities`` (a clear error when it lacks them)."""
        if corruption not in self.errors:
            raise AugrobustValueError(
                f"the baseline {self.name!r} has no errors for {corruption!r}; it has: {', '.join(self.errors)}."
            )
        missing = [s for s in severities if s not in self.severities]
        if missing:
            raise AugrobustValueError(
                f"the baseline {self.name!r} has no errors at severities {missing} (it has {list(self.severities)})."
            )
        row = self.errors[corruption]
        return [row[self.severities.index(s)] for s in severities]

    def to_dict(self) -> dict[str, Any]:
        """The baseline as plain JSON values (``from_dict`` reads it back)."""
        return {
            "name": self.name, "errors": self.errors, "severities": list(self.severities),
            "clean_error": self.clean_error,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        return cls(
            name=str(data["name"]),
            errors={k: [float(e) for e in v] for k, v in data["errors"].items()},
            severities=tuple(int(s) for s in data.get("severities", _ALL_SEVERITIES)),
            clean_error=None if data.get("clean_error") is None else float(data["clean_error"]),
        )

    @classmethod
    def from_report(cls, report: CorruptionReport | str | os.PathLike[str], name: str | None = None) -> Baseline:
        """Another model's report (or the path of its ``report.json``) as the baseline."""
        if not isinstance(report, CorruptionReport):
            path = Path(report)
            report = CorruptionReport.load_json(path, what="baseline report")
            default_name = report.metadata.get("model") or f"the model of {path}"
        else:
            default_name = report.metadata.get("model") or "the baseline report"
        return cls(
            name=str(name or default_name), errors=dict(report.errors), severities=report.severities,
            clean_error=report.clean_error,
        )  # fmt: skip


def alexnet_baseline() -> Baseline:
    """AlexNet's published ImageNet-C errors and clean error (:data:`augrobust.metrics.ALEXNET_ERRORS`).

    They normalise ImageNet-C results only: on other data (CIFAR, Tiny-ImageNet, another label set) a ratio
    to them means nothing, and :func:`augrobust.evaluate` does not use them there.

    Example:
        >>> b = alexnet_baseline()
        >>> len(b.errors), b.clean_error
        (19, 0.4345)
    """
    return Baseline(ALEXNET_NAME, {k: list(v) for k, v in ALEXNET_ERRORS.items()}, _ALL_SEVERITIES, ALEXNET_CLEAN_ERROR)


def _as_baseline(
    value: Baseline | Mapping[str, Sequence[float]] | CorruptionReport, severities: tuple[int, ...]
) -> Baseline:
    if isinstance(value, Baseline):
        return value
    if isinstance(value, CorruptionReport):
        return Baseline.from_report(value)
    if isinstance(value, Mapping):  # a bare table: all five severities, or the report's own
        rows = {k: [float(e) for e in v] for k, v in value.items()}
        n = {len(v) for v in rows.values()}
        sevs = _ALL_SEVERITIES if n == {5} else severities
        return Baseline("the given baseline errors", rows, sevs)
    raise AugrobustTypeError(
        "a baseline must be a Baseline, a CorruptionReport or a {corruption: errors} dict, got "
        f"{type(value).__name__}."
    )


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
        metadata: how the numbers were made (model, preset and the rule that chose it, reference, seed, data).
        baseline: what CE and mCE are normalised by; ``None``: no CE, mCE or relative mCE.
        ece: expected calibration error per corruption and severity (``None`` if not recorded).
        clean_ece: expected calibration error on the clean images.

    Example:
        >>> r = CorruptionReport(clean_error=0.1, errors={"fog": [0.2, 0.3, 0.4, 0.5, 0.6]})
        >>> round(r.mean_corruption_accuracy(), 6), r.mce()  # no baseline: no mCE
        (0.6, None)
        >>> r.baseline = Baseline("ref", {"fog": [0.4, 0.6, 0.8, 1.0, 1.0]})
        >>> round(r.mce(), 6)
        0.526316
    """

    clean_error: float | None
    errors: dict[str, list[float]]
    severities: tuple[int, ...] = _ALL_SEVERITIES
    num_images: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    baseline: Baseline | None = None
    ece: dict[str, list[float]] | None = None
    clean_ece: float | None = None

    def __post_init__(self) -> None:
        self.severities = tuple(int(s) for s in self.severities)
        self.errors = {name: [float(e) for e in errs] for name, errs in self.errors.items()}
        for name, errs in self.errors.items():
            if len(errs) != len(self.severities):
                raise AugrobustValueError(
                    f"corruption {name!r} has {len(errs)} errors but the report has severities {self.severities}."
                )
        if self.baseline is not None and not isinstance(self.baseline, Baseline):
            self.baseline = _as_baseline(self.baseline, self.severities)

    # -- unnormalised summaries
    def corruption_errors(self) -> dict[str, float]:
        """Mean error over severities, per corruption."""
        return {name: sum(errs) / len(errs) for name, errs in self.errors.items()}

    def benchmark_corruptions(self) -> list[str]:
        """The default set of the means and of mCE: the 15 benchmark corruptions present in the report, or
        every corruption of the report if it holds none of them."""
        common = [n for n in SUBSETS["common"] if n in self.errors]
        return common or list(self.errors)

    def _selected(self, corruptions: Iterable[str] | None) -> dict[str, list[float]]:
        names = self.benchmark_corruptions() if corruptions is None else list(corruptions)
        missing = [n for n in names if n not in self.errors]
        if missing:
            raise AugrobustValueError(f"corruptions {missing} are not in the report; it has {list(self.errors)}.")
        if not names:
            raise AugrobustValueError("the report holds no corruption errors.")
        return {n: self.errors[n] for n in names}

    def mean_corruption_error(self, corruptions: Iterable[str] | None = None) -> float:
        """Mean error over ``corruptions`` (default :meth:`benchmark_corruptions`) and the severities."""
        sel = self._selected(corruptions)
        return sum(sum(e) / len(e) for e in sel.values()) / len(sel)

    def mean_corruption_accuracy(self, corruptions: Iterable[str] | None = None) -> float:
        """``1 -`` :meth:`mean_corruption_error` over the same set."""
        return 1.0 - self.mean_corruption_error(corruptions)

    def means(self) -> dict[str, dict[str, Any]]:
        """Per corruption set of :data:`CORRUPTION_SETS` with at least one corruption in the report: its
        description, the corruptions averaged, whether the set is complete, the mean error and accuracy and,
        with a baseline, mCE and relative mCE over the same corruptions.

        Example:
            >>> r = CorruptionReport(None, {"fog": [0.5] * 5, "spatter": [0.25] * 5})
            >>> m = r.means()
            >>> m["benchmark"]["corruptions"], m["benchmark"]["complete"], m["all"]["mean_error"]
            (['fog'], False, 0.375)
        """
        out: dict[str, dict[str, Any]] = {}
        for key, description, members in CORRUPTION_SETS:
            names = [n for n in members if n in self.errors]
            if not names:
                continue
            complete = len(names) == len(members)
            entry: dict[str, Any] = {
                "description": description if complete else f"{len(names)} of {description}",
                "corruptions": names, "complete": complete,
                "mean_error": self.mean_corruption_error(names), "mean_accuracy": self.mean_corruption_accuracy(names),
                "mce": self._covered(self.mce, names), "relative_mce": self._covered(self.relative_mce, names),
            }  # fmt: skip
            out[key] = entry
        others = [n for n in self.errors if n not in SUBSETS["all"]]
        if others:  # corruptions outside the 19 (e.g. files of another name): their own set
            out["other"] = {
                "description": f"{len(others)} corruptions outside the ImageNet-C 19", "corruptions": others,
                "complete": True, "mean_error": self.mean_corruption_error(others),
                "mean_accuracy": self.mean_corruption_accuracy(others), "mce": self._covered(self.mce, others),
                "relative_mce": self._covered(self.relative_mce, others),
            }  # fmt: skip
        return out

    # -- normalised summaries: only against a baseline
    def _baseline_or_none(self, baseline: Any) -> Baseline | None:
        return self.baseline if baseline is None else _as_baseline(baseline, self.severities)

    def corruption_ce(self, baseline: Any = None) -> dict[str, float] | None:
        """CE per corruption against ``baseline`` (default: the report's); ``None`` without a baseline.
        Corruptions the baseline lacks are left out."""
        base = self._baseline_or_none(baseline)
        if base is None:
            return None
        out = {}
        for name, errs in self.errors.items():
            if name in base.errors:
                out[name] = ce(errs, base.errors_for(name, self.severities))
        return out

    def mce(self, baseline: Any = None, *, corruptions: Iterable[str] | None = None) -> float | None:
        """mCE against ``baseline`` (default: the report's) over :meth:`benchmark_corruptions` or
        ``corruptions``; ``None`` without a baseline. A baseline lacking one of the corruptions is an error."""
        base = self._baseline_or_none(baseline)
        if base is None:
            return None
        model = self._selected(corruptions)
        return sum(ce(e, base.errors_for(n, self.severities)) for n, e in model.items()) / len(model)

    def relative_mce(self, baseline: Any = None, *, corruptions: Iterable[str] | None = None) -> float | None:
        """Relative mCE against ``baseline`` (default: the report's); ``None`` without a baseline, without
        this report's clean error or without the baseline's."""
        base = self._baseline_or_none(baseline)
        if base is None or self.clean_error is None or base.clean_error is None:
            return None
        model = self._selected(corruptions)
        total = sum(
            relative_ce(e, self.clean_error, base.errors_for(n, self.severities), base.clean_error)
            for n, e in model.items()
        )
        return total / len(model)

    def _covered(self, metric: Any, names: list[str]) -> float | None:
        """``metric`` over ``names``, or ``None`` when the baseline lacks one of them (a partial mean would
        not be the stated set's) or the metric is undefined there (relative mCE when the baseline's corrupted
        and clean errors are equal: the summary says so instead of failing the whole report)."""
        if self.baseline is None or any(n not in self.baseline.errors for n in names):
            return None
        if any(s not in self.baseline.severities for s in self.severities):
            return None
        try:
            return metric(corruptions=names)
        except AugrobustValueError:
            if metric != self.relative_mce:
                raise
            return None

    def mean_ece_by_severity(self, corruptions: Iterable[str] | None = None) -> list[float] | None:
        """ECE per severity, averaged over ``corruptions`` (default :meth:`benchmark_corruptions`)."""
        if self.ece is None:
            return None
        names = list(self._selected(corruptions))
        return [sum(self.ece[n][j] for n in names) / len(names) for j in range(len(self.severities))]

    # -- serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the fields plus a ``summary`` of derived numbers, each mean with its set."""
        summary: dict[str, Any] = {}
        if self.errors:
            bench = self.benchmark_corruptions()
            summary["corruption_errors"] = self.corruption_errors()
            summary["corruption_ce"] = self.corruption_ce()
            summary["mean_corruptions"] = bench
            summary["mean_corruption_error"] = self.mean_corruption_error()
            summary["mean_corruption_accuracy"] = self.mean_corruption_accuracy()
            summary["mce_corruptions"] = bench
            summary["mce"] = self._covered(self.mce, bench)
            summary["relative_mce"] = self._covered(self.relative_mce, bench)
            summary["baseline"] = None if self.baseline is None else self.baseline.name
            summary["means"] = self.means()
            summary["ece_by_severity"] = self.mean_ece_by_severity()
        return {
            "clean_error": self.clean_error,
            "clean_accuracy": None if self.clean_error is None else 1.0 - self.clean_error,
            "errors": self.errors,
            "severities": list(self.severities),
            "num_images": self.num_images,
            "metadata": self.metadata,
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "ece": self.ece,
            "clean_ece": self.clean_ece,
            "summary": summary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CorruptionReport:
        """Rebuild a report from :meth:`to_dict` output (the summary is recomputed, not read)."""
        base = data.get("baseline")
        return cls(
            clean_error=data.get("clean_error"),
            errors={k: list(v) for k, v in data["errors"].items()},
            severities=tuple(data.get("severities", _ALL_SEVERITIES)),
            num_images=int(data.get("num_images", 0)),
            metadata=dict(data.get("metadata", {})),
            baseline=None if base is None else Baseline.from_dict(base),
            ece=None if data.get("ece") is None else {k: list(v) for k, v in data["ece"].items()},
            clean_ece=data.get("clean_ece"),
        )

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON, atomically (temporary file + ``os.replace``)."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        return atomic_write_bytes(path, text.encode())

    @classmethod
    def load_json(cls, path: str | os.PathLike[str], *, what: str = "report") -> CorruptionReport:
        """Read a report written by :meth:`save_json` (``path`` may be its folder).

        Raises:
            AugrobustValueError: no such file, or not a readable report (``what`` names it in the message).
        """
        file = Path(path)
        if file.is_dir():
            file = file / "report.json"
        if not file.is_file():
            raise AugrobustValueError(
                f"{what} {str(file)!r} does not exist; give the report.json of an `augrobust eval` run."
            )
        try:
            return cls.from_dict(json.loads(file.read_text()))
        except (ValueError, KeyError, TypeError) as e:
            raise AugrobustValueError(f"{what} {str(file)!r} is not a readable report.json ({e}).") from e

    def to_markdown(self) -> str:
        """A Markdown summary (every mean with its corruption set, the baseline named) and a table of errors
        (%) per corruption and severity with each corruption's CE."""
        meta = self.metadata
        title = f"# Corruption robustness of {meta['model']}" if meta.get("model") else "# Corruption robustness report"
        lines = [title, ""]
        lines.append(f"- images per (corruption, severity): {self.num_images}")
        if "preset" in meta:
            rule = f" ({meta['preset_rule']})" if meta.get("preset_rule") else ""
            lines.append(f"- preset: {meta['preset']}{rule}; reference: {meta.get('reference', 'n/a')}")
        shown = {"model", "preset", "preset_rule", "reference"}
        rest = ", ".join(f"{k}: {v}" for k, v in meta.items() if k not in shown)
        if rest:
            lines.append(f"- {rest}")
        if self.clean_error is not None:
            lines.append(f"- clean error: {_pct(self.clean_error)} % (accuracy {_pct(1.0 - self.clean_error)} %)")
        for entry in self.means().values():
            line = (
                f"- over {entry['description']}: mean corruption error {_pct(entry['mean_error'])} %, "
                f"accuracy {_pct(entry['mean_accuracy'])} %"
            )
            if entry["mce"] is not None:
                line += f", mCE {_pct(entry['mce'])} %"
            if entry["relative_mce"] is not None:
                line += f", relative mCE {_pct(entry['relative_mce'])} %"
            elif entry["mce"] is not None and self.clean_error is not None and self.baseline.clean_error is not None:
                line += ", relative mCE undefined (the baseline's corrupted and clean errors are equal)"
            lines.append(line)
        if self.baseline is None:
            lines.append(
                "- CE / mCE: not computed (no baseline: give `baseline=` / `--baseline` another model's report)"
            )
        else:
            lines.append(f"- CE / mCE baseline: {self.baseline.name} (100 % = the baseline's error)")
        by_sev = self.mean_ece_by_severity()
        if by_sev is not None:
            sevs = ", ".join(f"s{s} {_pct(v)}" for s, v in zip(self.severities, by_sev))
            clean = f"clean {_pct(self.clean_ece)}, " if self.clean_ece is not None else ""
            lines.append(f"- ECE (%, 15 bins) over {len(self.benchmark_corruptions())} corruptions: {clean}{sevs}")
        lines.append("")
        head = ["corruption", *(f"s{s}" for s in self.severities), "mean", "CE"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |")
        ces = self.corruption_ce() or {}
        for name, errs in self.errors.items():
            row = [name, *(_pct(e) for e in errs), _pct(sum(errs) / len(errs)), _pct(ces.get(name))]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines.append("Errors in %. CE: the corruption error relative to the baseline (n/a without one).")
        return "\n".join(lines) + "\n"

    def save_markdown(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_markdown` atomically."""
        return atomic_write_bytes(path, self.to_markdown().encode())

    def save_heatmap(self, path: str | os.PathLike[str]) -> Path:
        """A titled heat map of the errors (needs matplotlib: ``pip install 'augrobust[plots]'``); see
        :func:`augrobust.figures.plot_heatmap`."""
        from augrobust.figures import plot_heatmap

        return plot_heatmap(self, path)

    def save_severity_curves(self, path: str | os.PathLike[str]) -> Path:
        """Accuracy versus severity per corruption family (:func:`augrobust.figures.plot_severity_curves`)."""
        from augrobust.figures import plot_severity_curves

        return plot_severity_curves(self, path)
