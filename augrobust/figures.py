"""Figures of corruption reports, as the papers draw them (matplotlib, the optional extra ``plots``).

* :func:`plot_heatmap`: error per corruption and severity, a clean column, the model's name in the title and
  a colour bar;
* :func:`plot_severity_curves`: accuracy versus severity, one panel per corruption family (noise, blur,
  weather, digital, hold-out), clean accuracy at severity 0;
* :func:`plot_comparison`: several models side by side: mean accuracy / mCE bars and per-corruption bars.

Every function writes a PNG atomically and returns its path. Without matplotlib they raise an
:class:`~augrobust.errors.AugrobustValueError` that names the extra to install.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augrobust._corruption_names import SUBSETS
from augrobust._io import atomic_write_bytes
from augrobust.errors import AugrobustValueError

if TYPE_CHECKING:
    from augrobust.report import CorruptionReport

__all__ = ["FAMILIES", "plot_comparison", "plot_heatmap", "plot_severity_curves", "require_matplotlib"]

#: The panels of :func:`plot_severity_curves`: the four benchmark families and the hold-out set.
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("noise", SUBSETS["noise"]),
    ("blur", SUBSETS["blur"]),
    ("weather", SUBSETS["weather"]),
    ("digital", SUBSETS["digital"]),
    ("hold-out", SUBSETS["validation"]),
)


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or a clear error naming the extra.

    Example:
        >>> require_matplotlib().__name__
        'matplotlib.pyplot'
    """
    try:
        import matplotlib
    except ImportError:
        raise AugrobustValueError(
            "the figures need matplotlib, which is not installed: pip install 'augrobust[plots]' (or pass "
            "--no-figures to the command)."
        ) from None
    matplotlib.use("Agg", force=False)  # files only: never open a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    plt = require_matplotlib()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _model_name(report: CorruptionReport) -> str:
    return str(report.metadata.get("model") or "model")


def plot_heatmap(report: CorruptionReport, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Top-1 error (%) per corruption (rows) and severity (columns), with a clean column (the clean error,
    the same for every row, shown once in the first row), the model's name and data in the title, the error
    printed in each cell and a colour bar (0-100 %).

    Example:
        >>> import tempfile
        >>> from augrobust.report import CorruptionReport
        >>> r = CorruptionReport(0.1, {"fog": [0.2, 0.3, 0.4, 0.5, 0.6]}, metadata={"model": "tiny"})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_heatmap(r, f"{d}/heatmap.png").stat().st_size > 1000
        True
    """
    plt = require_matplotlib()
    import numpy as np

    names = list(report.errors)
    if not names:
        raise AugrobustValueError("the report holds no corruption errors to draw.")
    cols = ["clean", *(f"s{s}" for s in report.severities), "mean"]
    grid = np.full((len(names), len(cols)), np.nan)
    for i, n in enumerate(names):
        errs = report.errors[n]
        grid[i, 1:-1] = errs
        grid[i, -1] = sum(errs) / len(errs)
    if report.clean_error is not None:
        grid[0, 0] = report.clean_error  # one number: shown once, the rest of the column stays grey
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols) + 1.6, 0.9 + 0.34 * len(names)))
    cmap = plt.get_cmap("magma_r").with_extremes(bad="#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(100 * grid), cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for i in range(len(names)):
        for j in range(len(cols)):
            v = grid[i, j]
            if np.isnan(v):
                continue
            ax.text(j, i, f"{100 * v:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if v > 0.55 else "black")  # fmt: skip
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(names)), names)
    ax.axvline(0.5, color="white", lw=2)
    ax.axvline(len(cols) - 1.5, color="white", lw=2)
    ax.tick_params(length=0)
    data = report.metadata.get("data")
    ax.set_title(title or f"Top-1 error (%) of {_model_name(report)}" + (f"\non {data}" if data else ""), fontsize=10)
    cbar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    cbar.set_label("top-1 error (%)")
    return _save(fig, path)


def plot_severity_curves(
    report: CorruptionReport | Sequence[CorruptionReport], path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Top-1 accuracy versus severity, one panel per corruption family (:data:`FAMILIES`) present in the
    report(s); severity 0 is the clean accuracy. Several reports draw one line style per model.

    Example:
        >>> import tempfile
        >>> from augrobust.report import CorruptionReport
        >>> r = CorruptionReport(0.1, {"fog": [0.2, 0.3, 0.4, 0.5, 0.6]}, metadata={"model": "tiny"})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_severity_curves(r, f"{d}/curves.png").stat().st_size > 1000
        True
    """
    plt = require_matplotlib()
    reports = [report] if not isinstance(report, Sequence) else list(report)
    present = {n for r in reports for n in r.errors}
    families = [(f, [n for n in members if n in present]) for f, members in FAMILIES]
    families = [(f, ns) for f, ns in families if ns]
    other = sorted(present - {n for _, members in FAMILIES for n in members})
    if other:
        families.append(("other", other))
    if not families:
        raise AugrobustValueError("the report holds no corruption errors to draw.")
    ncol = min(len(families), 3)
    nrow = -(-len(families) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.3 * nrow), squeeze=False, sharey=True)
    styles = ["-", "--", ":", "-."]
    colours = plt.get_cmap("tab10").colors
    for k, (family, names) in enumerate(families):
        ax = axes[k // ncol][k % ncol]
        for m, r in enumerate(reports):
            for c, name in enumerate(names):
                if name not in r.errors:
                    continue
                xs = list(r.severities)
                ys = [100 * (1 - e) for e in r.errors[name]]
                if r.clean_error is not None:
                    xs, ys = [0, *xs], [100 * (1 - r.clean_error), *ys]
                label = name if len(reports) == 1 else f"{name} ({_model_name(r)})"
                ax.plot(xs, ys, styles[m % len(styles)], marker="o", ms=3, color=colours[c % 10], label=label)
        ax.set_title(family)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_xticks(range(0, 6))
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        if k % ncol == 0:
            ax.set_ylabel("top-1 accuracy (%)")
    for k in range(len(families), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    names_text = ", ".join(_model_name(r) for r in reports)
    fig.suptitle(title or f"Accuracy versus severity: {names_text}", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def plot_comparison(reports: Sequence[CorruptionReport], path: str | os.PathLike[str]) -> Path:
    """Several models side by side: left, clean and mean corruption accuracy (over each report's stated
    set) and mCE where every report has one; right, accuracy per corruption (mean over severities).

    Example:
        >>> import tempfile
        >>> from augrobust.report import CorruptionReport
        >>> a = CorruptionReport(0.1, {"fog": [0.2] * 5}, metadata={"model": "a"})
        >>> b = CorruptionReport(0.2, {"fog": [0.4] * 5}, metadata={"model": "b"})
        >>> with tempfile.TemporaryDirectory() as d:
        ...     plot_comparison([a, b], f"{d}/compare.png").stat().st_size > 1000
        True
    """
    plt = require_matplotlib()
    import numpy as np

    if not reports:
        raise AugrobustValueError("give at least one report to compare.")
    labels = [_model_name(r) for r in reports]
    names = [n for n in SUBSETS["all"] if any(n in r.errors for r in reports)]
    names += sorted({n for r in reports for n in r.errors} - set(names))
    summary = ["clean acc.", "mean corr. acc."]
    mces = [r.mce() for r in reports]
    has_mce = all(m is not None for m in mces)
    if has_mce:
        summary.append("mCE")
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(4 + 0.35 * len(names) * max(len(reports), 2) / 2 + 4, 4.2),
        gridspec_kw={"width_ratios": [1.5 + len(summary) * 0.4, max(len(names) * 0.5, 2)]},
    )  # fmt: skip
    width = 0.8 / len(reports)
    for m, r in enumerate(reports):
        vals = [
            np.nan if r.clean_error is None else 100 * (1 - r.clean_error),
            100 * r.mean_corruption_accuracy(),
        ]
        if has_mce:
            vals.append(100 * mces[m])  # type: ignore[operator]
        xs = np.arange(len(summary)) + (m - (len(reports) - 1) / 2) * width
        bars = ax1.bar(xs, vals, width, label=labels[m])
        ax1.bar_label(bars, fmt="%.1f", fontsize=7)
        accs = [100 * (1 - sum(r.errors[n]) / len(r.errors[n])) if n in r.errors else np.nan for n in names]
        ax2.bar(np.arange(len(names)) + (m - (len(reports) - 1) / 2) * width, accs, width, label=labels[m])
    sets = {len(r.benchmark_corruptions()) for r in reports}
    ax1.set_xticks(range(len(summary)), summary)
    ax1.set_ylabel("%")
    top = max([100.0] + [100 * m + 10 for m in mces if m is not None and has_mce])
    ax1.set_ylim(0, top * 1.12)
    ax1.set_title(f"summary (means over {', '.join(map(str, sorted(sets)))} corruptions)", fontsize=9)
    ax1.legend(fontsize=7, loc="upper left")
    ax2.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax2.set_ylabel("top-1 acc. (%), mean of severities")
    ax2.set_ylim(0, 100)
    ax2.set_title("per corruption", fontsize=9)
    ax2.grid(axis="y", alpha=0.3)
    fig.suptitle("Corruption robustness: " + " vs ".join(labels), fontsize=11)
    fig.tight_layout()
    return _save(fig, path)
