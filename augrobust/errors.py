"""The one exception family of augrobust.

Every error the library raises on purpose is an :class:`AugrobustError`. Bad values are also
``ValueError`` and bad types also ``TypeError``, so callers that catch the built-in exceptions keep
working. Messages say what was given, what is allowed, and how to fix it.
"""

from __future__ import annotations

__all__ = ["AugrobustError", "AugrobustFileNotFoundError", "AugrobustTypeError", "AugrobustValueError"]


class AugrobustError(Exception):
    """Base class of every error raised by augrobust."""


class AugrobustValueError(AugrobustError, ValueError):
    """An argument or an input has the right type but a value that is not allowed."""


class AugrobustTypeError(AugrobustError, TypeError):
    """An argument or an input has a type (or dtype) that is not supported."""


class AugrobustFileNotFoundError(AugrobustError, FileNotFoundError):
    """A file or folder the user named does not exist (also a ``FileNotFoundError``)."""
