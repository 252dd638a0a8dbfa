"""``metrics.jsonl``: one JSON line per finished epoch, never the only copy of a row.

The checkpoint holds the whole metrics history; the file is a readable view of it. After every epoch the
row is appended (cheap, and ``tail -f`` keeps working); on resume the file is rewritten atomically from the
checkpoint's history. A kill anywhere, during or between the two writes, therefore loses no row and leaves
no torn line behind once the run resumes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from augrobust._io import atomic_write_text
from augrobust.errors import AugrobustValueError

__all__ = ["append_row", "read_rows", "rewrite"]


def append_row(path: str | os.PathLike[str], row: dict[str, Any]) -> None:
    """Append ``row`` as one JSON line."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def rewrite(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """Replace the file by ``rows``, atomically.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     rewrite(f"{d}/metrics.jsonl", [{"epoch": 1}])
        ...     open(f"{d}/metrics.jsonl").read()
        '{"epoch": 1}\\n'
    """
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows), make_parents=False)


def read_rows(path: str | os.PathLike[str], upto_epoch: int) -> list[dict[str, Any]]:
    """The rows of epochs ``<= upto_epoch``; a torn last line (a kill during an append) is dropped.

    For checkpoints written before the history moved into the checkpoint. A bad line that is not the last
    one was not left by a kill and is reported.

    Raises:
        AugrobustValueError: a line other than the last is not a JSON object (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):  # torn by a kill during the append: the row is lost, the file still usable
                break
            raise AugrobustValueError(
                f"{str(path)!r} line {number} is not JSON ({err}); fix or delete the line."
            ) from err
        if not isinstance(row, dict):
            raise AugrobustValueError(f"{str(path)!r} line {number} is not a JSON object: {line[:80]!r}.")
        rows.append(row)
    return [row for row in rows if row.get("epoch", 0) <= upto_epoch]
