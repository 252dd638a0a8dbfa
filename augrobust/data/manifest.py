"""``manifest.json`` of a generated dataset: what was generated, how, and the SHA-256 of every file.

The manifest holds the library and dependency versions, the arguments that define the content (source, format,
corruptions, severities, preset, reference, seed), the seed rule (:data:`augrobust.data.canonical.SEED_RULE`),
the bad source images (path and reason) and ``files``: relative path -> SHA-256 hex digest. It holds no time,
host, batch size, worker count or shard: two runs that write the same bytes write the same manifest.
:func:`verify_manifest` re-hashes every listed file.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.bin").write_bytes(b"abc")
    >>> _ = write_manifest(d, {"format": "demo"}, {"a.bin": sha256_file(d / "a.bin")})
    >>> verify_manifest(d)
    []
    >>> _ = (d / "a.bin").write_bytes(b"abd")
    >>> verify_manifest(d)
    ['a.bin: SHA-256 mismatch (the file changed after it was written)']
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from augrobust._io import atomic_write_text
from augrobust.errors import AugrobustValueError

__all__ = ["MANIFEST_NAME", "read_manifest", "sha256_bytes", "sha256_file", "verify_manifest", "write_manifest"]

#: The manifest's file name in the output folder.
MANIFEST_NAME = "manifest.json"

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(out: str | os.PathLike[str], header: dict[str, Any], files: dict[str, str]) -> Path:
    """Write ``out/manifest.json`` atomically: ``header`` plus ``files`` (sorted by path); returns its path."""
    body = {**header, "files": dict(sorted(files.items()))}
    return atomic_write_text(Path(out) / MANIFEST_NAME, json.dumps(body, indent=1, sort_keys=True) + "\n")


def read_manifest(out: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of ``out`` as a dict; a clear error if it is missing or not a manifest."""
    path = Path(out) / MANIFEST_NAME
    if not path.is_file():
        raise AugrobustValueError(
            f"no {MANIFEST_NAME} in {str(out)!r}: it is not a finished `augrobust generate` output (a run writes the "
            "manifest last; rerun the same generate command to finish it)."
        )
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise AugrobustValueError(f"{str(path)!r} is not valid JSON ({e}); regenerate the dataset.") from e
    if not isinstance(body, dict) or not isinstance(body.get("files"), dict):
        raise AugrobustValueError(f"{str(path)!r} has no 'files' table; it is not a generate manifest.")
    return body


def verify_manifest(out: str | os.PathLike[str]) -> list[str]:
    """Re-hash every file the manifest lists; returns the problems found (empty: all files match).

    A problem is a missing file or a SHA-256 mismatch, one line each, naming the file.
    """
    base = Path(out)
    problems = []
    for rel, digest in read_manifest(base)["files"].items():
        path = base / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{rel}: SHA-256 mismatch (the file changed after it was written)")
    return problems
