"""``augrobust compare``: several models' reports side by side (a table and figures).

Reads ``report.json`` files written by ``augrobust eval`` (or :meth:`augrobust.CorruptionReport.save_json`)
and writes ``comparison.md`` (clean accuracy, mean corruption accuracy over the stated corruption set, mCE
against each report's baseline, per-corruption accuracy), ``comparison.png`` (summary and per-corruption bars)
and ``severity_curves.png`` (accuracy versus severity, one line style per model) into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from augrobust.commands._options import add_command, add_out, check_output_dir
from augrobust.errors import AugrobustValueError

__all__ = ["add_parser", "comparison_markdown", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``augrobust compare``."""
    p = add_command(
        subparsers, "compare",
        help="compare several evaluation reports (table and figures)",
        description="Compare report.json files of `augrobust eval`: write comparison.md, comparison.png and "
        "severity_curves.png into --out.",
    )  # fmt: skip
    p.add_argument("reports", nargs="+", metavar="REPORT", help="report.json files (a folder means its report.json)")
    add_out(p, default="comparison", help="output folder")
    p.add_argument("--no-figures", action="store_true", help="write the table only (figures need augrobust[plots])")
    p.set_defaults(func=run)
    return p


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def comparison_markdown(reports: list[Any], labels: list[str]) -> str:
    """The comparison table: one row per model; per-corruption accuracy below.

    Example:
        >>> from augrobust.report import CorruptionReport
        >>> a = CorruptionReport(0.1, {"fog": [0.2] * 5})
        >>> "| a | 90.00 | 80.00 | 1 of the 15 benchmark corruptions | n/a | none |" in comparison_markdown([a], ["a"])
        True
    """
    lines = ["# Corruption robustness comparison", ""]
    lines.append("| model | clean acc. | mean corr. acc. | over | mCE | baseline |")
    lines.append("| --- | ---: | ---: | --- | ---: | --- |")
    for r, label in zip(reports, labels):
        bench = r.means().get("benchmark") or next(iter(r.means().values()))
        clean = None if r.clean_error is None else 1 - r.clean_error
        base = "none" if r.baseline is None else r.baseline.name
        lines.append(
            f"| {label} | {_pct(clean)} | {_pct(bench['mean_accuracy'])} | {bench['description']} | "
            f"{_pct(bench['mce'])} | {base} |"
        )
    names = list(dict.fromkeys(n for r in reports for n in r.errors))
    lines += ["", "Top-1 accuracy (%) per corruption, mean over severities:", ""]
    lines.append("| corruption | " + " | ".join(labels) + " |")
    lines.append("| --- |" + " ---: |" * len(labels))
    for n in names:
        cells = [_pct(1 - sum(r.errors[n]) / len(r.errors[n])) if n in r.errors else "n/a" for r in reports]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Read the reports, check they compare like with like, write the table and figures."""
    from pathlib import Path

    from augrobust._io import atomic_write_text
    from augrobust.report import CorruptionReport

    if not args.no_figures:
        from augrobust.figures import require_matplotlib

        require_matplotlib()
    out = check_output_dir(args.out)
    reports, labels = [], []
    for item in args.reports:
        path = Path(item) / "report.json" if Path(item).is_dir() else Path(item)
        r = CorruptionReport.load_json(path)
        reports.append(r)
        labels.append(str(r.metadata.get("model") or path.parent.name or path.stem))
    if len(set(labels)) != len(labels):  # the same model name twice: tell them apart by folder
        labels = [f"{lab} ({Path(a).name})" for lab, a in zip(labels, args.reports)]
    for r, lab in zip(reports, labels):
        r.metadata["model"] = lab
    sevs = {r.severities for r in reports}
    if len(sevs) > 1:
        raise AugrobustValueError(
            f"the reports were evaluated at different severities ({sorted(sevs)}); compare like with like."
        )
    text = comparison_markdown(reports, labels)
    written = [atomic_write_text(out / "comparison.md", text)]
    if not args.no_figures:
        from augrobust.figures import plot_comparison, plot_severity_curves

        written += [
            plot_comparison(reports, out / "comparison.png"),
            plot_severity_curves(reports, out / "severity_curves.png"),
        ]
    sys.stdout.write(text)
    sys.stdout.write(f"\nwrote {', '.join(str(p) for p in written)}\n")
    return 0
