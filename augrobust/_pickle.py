"""Pickles that cannot run code: one restricted unpickler for the data files augrobust reads (CIFAR batches,
the DFM-X reference's DFM pickles).

:func:`pickle.load` calls whatever function a file names, so a crafted file runs code on load. The
unpickler here builds the types the pickle protocol encodes by itself (dicts, lists, tuples, sets, str,
bytes, numbers, booleans, ``None``) and NumPy arrays, through an allow-list of the few globals NumPy's
array pickles name (``ndarray``, ``dtype``, ``_reconstruct``, ``_frombuffer``, ``scalar``, and
``_codecs.encode`` restricted to latin-1, which Python 3 writes for ``bytes`` at protocol 2). Any other
global is refused with an error naming the file and the global, before anything is called.

Example:
    >>> import os, pickle, tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "batch")
    ...     with open(path, "wb") as f:
    ...         pickle.dump({"data": np.arange(3, dtype=np.uint8), "labels": [1, 2]}, f)
    ...     safe_pickle_load(path, what="CIFAR batch")["data"].tolist()
    [0, 1, 2]
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

try:
    from numpy._core import multiarray, numeric  # numpy >= 2 (numpy.core is its deprecated alias)
except ImportError:  # pragma: no cover - numpy < 2
    from numpy.core import multiarray, numeric  # type: ignore[no-redef]

from augrobust.errors import AugrobustValueError

__all__ = ["ALLOWED_GLOBALS", "safe_pickle_load"]


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Python 3 pickles bytes at protocol <= 2 as _codecs.encode(text, "latin1"); nothing else is needed.
    if encoding not in ("latin1", "latin-1", "iso-8859-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}: only latin1 is read")
    return codecs.encode(text, "latin1", errors)


#: ``(module, name)`` of every global a readable pickle may name, and what it resolves to.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): multiarray._reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): multiarray.scalar for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): numeric._frombuffer for core in ("core", "_core")},
}


class _Refused(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified = f"{module}.{name}"


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(module, name) from None


def safe_pickle_load(path: str | os.PathLike[str], *, what: str, encoding: str = "latin1") -> Any:
    """Unpickle ``path`` building only plain data and NumPy arrays; never runs code the file names.

    Args:
        path: the pickle file.
        what: what the file should be ("CIFAR batch", "DFM pickle"), for the error messages.
        encoding: how Python 2 ``str`` objects are decoded (``"latin1"``, as NumPy advises for Python 2 array
            pickles such as the official CIFAR files).

    Raises:
        AugrobustValueError: the file cannot be read, is not a pickle, or names a global outside
            :data:`ALLOWED_GLOBALS` (a crafted or foreign file: refused, nothing is called).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise AugrobustValueError(f"Cannot read the {what} {str(p)!r}: {err}") from err
    try:
        return _PlainDataUnpickler(io.BytesIO(raw), encoding=encoding).load()
    except _Refused as err:
        raise AugrobustValueError(
            f"refusing to load {str(p)!r}: it asks for {err.qualified}, which a {what} never holds. Only dicts, "
            "lists, strings, bytes, numbers and NumPy arrays are read, so that a crafted file cannot run code; "
            "use the official file (or re-save your data with those types only)."
        ) from None
    except Exception as err:  # a truncated or foreign file fails in many ways (EOFError, UnpicklingError, ...)
        raise AugrobustValueError(f"{str(p)!r} is not a readable {what}: {type(err).__name__}: {err}") from err
