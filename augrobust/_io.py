"""Files that are never half written: one atomic-write helper for checkpoints, reports and datasets.

A file is written to a temporary name in its target folder (``.<name>.<random>.tmp``), flushed and
fsynced, then renamed over the final name with :func:`os.replace`. A process killed at any moment leaves
either the old file or the new one under the final name, never a truncated one; what a kill can leave is a
temporary file, which :func:`remove_stale_temporaries` clears when the job starts again.

Example:
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = atomic_write_text(f"{d}/report.json", '{"ok": true}')
    ...     path.read_text(), sorted(p.name for p in pathlib.Path(d).iterdir())
    ('{"ok": true}', ['report.json'])
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from augrobust.errors import AugrobustValueError

__all__ = [
    "atomic_open",
    "atomic_path",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "remove_stale_temporaries",
]

_SUFFIX = ".tmp"


def _target(path: str | os.PathLike[str], *, make_parents: bool) -> Path:
    target = Path(path)
    if target.is_dir():
        raise AugrobustValueError(f"{str(target)!r} is a directory; give a file path.")
    if make_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    elif not target.parent.is_dir():
        raise AugrobustValueError(
            f"cannot write {str(target)!r}: folder {str(target.parent)!r} does not exist; create it first."
        )
    return target


def _create_temporary(target: Path) -> tuple[int, str]:
    """A new file beside ``target`` with the permissions of any new file (``0o666`` less the umask).

    ``tempfile.mkstemp`` would make it ``0o600``, and ``os.replace`` keeps that: checkpoints, reports and
    generated datasets would then be unreadable to the user's group.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(target.parent / f".{target.name}.{secrets.token_hex(6)}{_SUFFIX}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {str(target)!r}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], *, make_parents: bool = True) -> Iterator[IO[bytes]]:
    """A binary file object whose content appears under ``path`` only when the ``with`` block ends cleanly.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with atomic_open(f"{d}/a.bin") as f:
        ...         _ = f.write(b"abc")
        ...     open(f"{d}/a.bin", "rb").read()
        b'abc'
    """
    target = _target(path, make_parents=make_parents)
    fd, tmp = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, make_parents: bool = True) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to (for writers that need a path, e.g. a NumPy memmap); it
    is fsynced and renamed to ``path`` only when the ``with`` block ends cleanly.

    Example:
        >>> import tempfile, numpy as np
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with atomic_path(f"{d}/a.npy") as tmp:
        ...         np.save(open(tmp, "wb"), np.arange(3))
        ...     np.load(f"{d}/a.npy").tolist()
        [0, 1, 2]
    """
    target = _target(path, make_parents=make_parents)
    fd, tmp = _create_temporary(target)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, make_parents: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, make_parents=make_parents) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, make_parents: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"), make_parents=make_parents)


def atomic_save(
    path: str | os.PathLike[str],
    obj: Any,
    save: Callable[[Any, IO[bytes]], Any] | None = None,
    *,
    make_parents: bool = True,
) -> Path:
    """Write ``obj`` with ``save(obj, file)`` (default :func:`torch.save`) atomically; returns the path."""
    if save is None:
        import torch

        save = torch.save
    with atomic_open(path, make_parents=make_parents) as f:
        save(obj, f)
    return Path(path)


def remove_stale_temporaries(folder: str | os.PathLike[str], name: str | None = None) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder`` (for ``name`` only, if given).

    Call it when a job (re)starts, before any writer of this process is running in ``folder``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".{name}.*{_SUFFIX}" if name is not None else f".*{_SUFFIX}"
    removed = []
    for stale in folder.glob(pattern):
        if stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed
