"""Throughput benchmarks (``augrobust bench``): augrobust against the bare torch floor, kornia's nearest
equivalents and the ``imagecorruptions`` per-image loop, measured in the same run on the same machine.

Timing uses ``torch.utils.benchmark.Timer.blocked_autorange`` (median and interquartile range over blocks;
the device is synchronised). Results are JSON with the machine's metadata; :func:`markdown_table` renders them.
"""

from __future__ import annotations

from augrobust.benchmark.suite import BenchResult, default_cases, markdown_table, metadata, run_suite

__all__ = ["BenchResult", "default_cases", "markdown_table", "metadata", "run_suite"]
