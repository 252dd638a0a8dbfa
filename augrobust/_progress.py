"""Progress of long work (evaluation, training, DFM sweeps, benchmarks, dataset generation), through tqdm.

On a terminal it is tqdm's usual bar. When stderr is not a terminal (a batch job's log file) the bar is
written as whole lines, at most one every ``log_interval`` seconds (and the last one), so a log shows the
job advancing instead of staying silent or filling with carriage returns. ``quiet=True`` shows nothing.

Example:
    >>> import io
    >>> log = io.StringIO()
    >>> with progress_bar(total=3, desc="clean", stream=log, log_interval=0) as bar:
    ...     for _ in range(3):
    ...         _ = bar.update(1)
    >>> lines = log.getvalue().splitlines()
    >>> lines[-1].startswith("clean: 100%") and "\\r" not in log.getvalue()
    True
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


class _LineStream:
    """A file for tqdm that turns its carriage-return redraws into complete lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        for part in text.replace("\r", "\n").split("\n"):
            part = part.strip()
            if part:
                self.stream.write(part + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(
    total: int | None = None,
    desc: str = "",
    *,
    quiet: bool = False,
    stream: TextIO | None = None,
    log_interval: float = 30.0,
    unit: str = "it",
    **kwargs: Any,
) -> tqdm:
    """A tqdm bar on ``stream`` (default stderr): a live bar on a terminal, periodic lines in a log.

    Args:
        total: number of steps (``None``: unknown).
        desc: what is being done, shown first on every line.
        quiet: show nothing (the bar still counts).
        stream: where to write (default ``sys.stderr``).
        log_interval: seconds between two lines when ``stream`` is not a terminal.
        unit: what a step is ("batch", "image", ...).
        **kwargs: passed to :class:`tqdm.tqdm`.
    """
    stream = sys.stderr if stream is None else stream
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    if is_tty:
        file: Any = stream
        interval = kwargs.pop("mininterval", 0.1)
    else:
        file = _LineStream(stream)
        interval = kwargs.pop("mininterval", log_interval)
    return tqdm(
        total=total,
        desc=desc,
        file=file,
        disable=quiet,
        mininterval=interval,
        maxinterval=max(interval, 10.0),
        dynamic_ncols=is_tty,
        ascii=not is_tty,
        unit=unit,
        **kwargs,
    )
