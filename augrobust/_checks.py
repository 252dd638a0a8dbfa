"""Argument checks shared by the whole library: one place for each rule and its error message.

Every check takes the value and the argument's name, returns the normalised value and raises an
:class:`~augrobust.errors.AugrobustError` that says what was given, what is allowed and how to fix it.
NumPy scalars (``np.int64(2)``, ``np.float32(0.5)``: what NumPy loops give) count as the Python numbers
they stand for; ``bool`` never counts as a number.

Example:
    >>> import numpy as np
    >>> check_probability(0.5), check_count(np.int64(3), "steps"), check_choice("cifar", "preset", PRESET_CHOICES)
    (0.5, 3, 'cifar')
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

from augrobust.errors import AugrobustTypeError, AugrobustValueError

__all__ = [
    "PRESET_CHOICES",
    "REFERENCE_CHOICES",
    "check_bool",
    "check_choice",
    "check_count",
    "check_number",
    "check_preset",
    "check_probability",
    "check_reference",
    "check_severity",
    "check_severities",
    "closest",
    "reject_unknown_kwargs",
]

#: Severity-table presets: the ImageNet table (224 px, the default at any size, as imagecorruptions does)
#: and the tables of the scripts that built Tiny-ImageNet-C (64), CIFAR-10-C (32) and the 299-px Inception
#: variant of ImageNet-C.
PRESET_CHOICES: tuple[str, ...] = ("imagenet", "tinyimagenet", "cifar", "inception")

#: ``imagecorruptions`` 1.1.2 (default) or the original ``hendrycks/robustness`` dataset scripts.
REFERENCE_CHOICES: tuple[str, ...] = ("imagecorruptions", "hendrycks")


def closest(value: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest choice, or ``""``."""
    if not isinstance(value, str):
        return ""
    match = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
) -> float:
    """A finite real number in ``[minimum, maximum]`` (``(minimum, maximum]`` with ``strict``).

    Example:
        >>> check_number(2, "sigma", minimum=0.0)
        2.0
    """
    if not _is_real(value):
        raise AugrobustTypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    out = float(value)  # type: ignore[arg-type]
    if not math.isfinite(out):
        raise AugrobustValueError(f"{name} must be a finite number, got {value!r}.")
    low_ok = minimum is None or (out > minimum if strict else out >= minimum)
    high_ok = maximum is None or out <= maximum
    if not (low_ok and high_ok):
        low = "-inf" if minimum is None else f"{minimum:g}"
        high = "inf" if maximum is None else f"{maximum:g}"
        interval = f"{'(' if strict else '['}{low}, {high}]"
        raise AugrobustValueError(f"{name} must be in {interval}, got {value!r}.")
    return out


def check_probability(p: object, name: str = "p") -> float:
    """A probability: a number in ``[0, 1]``.

    Example:
        >>> check_probability(1)
        1.0
    """
    if not _is_real(p) or not 0.0 <= float(p) <= 1.0:  # type: ignore[arg-type]
        raise AugrobustValueError(f"{name} must be a probability in [0, 1], got {p!r}.")
    return float(p)  # type: ignore[arg-type]


def check_count(value: object, name: str, *, minimum: int = 0) -> int:
    """An integer (Python or NumPy) ``>= minimum``.

    Example:
        >>> check_count(4, "batch_size", minimum=1)
        4
    """
    if not _is_int(value):
        raise AugrobustTypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
    out = int(value)  # type: ignore[arg-type]
    if out < minimum:
        raise AugrobustValueError(f"{name} must be >= {minimum}, got {out}.")
    return out


def check_bool(value: object, name: str) -> bool:
    """A ``bool`` (NumPy's ``np.bool_`` too); ``0`` / ``1`` and strings are refused, they hide typos.

    Example:
        >>> check_bool(True, "same_on_batch")
        True
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise AugrobustTypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__}).")


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """One of ``choices``, with the nearest one suggested.

    Example:
        >>> check_choice("imagenet", "preset", PRESET_CHOICES)
        'imagenet'
    """
    if value not in choices:
        raise AugrobustValueError(f"unknown {name} {value!r}{closest(value, choices)}; valid: {list(choices)}.")
    return str(value)


def check_preset(preset: object) -> str:
    """A severity-table preset name (:data:`PRESET_CHOICES`)."""
    return check_choice(preset, "preset", PRESET_CHOICES)


def check_reference(reference: object) -> str:
    """A reference implementation name (:data:`REFERENCE_CHOICES`)."""
    return check_choice(reference, "reference", REFERENCE_CHOICES)


def check_severity(severity: object, name: str = "severity") -> int:
    """One ImageNet-C severity: an int (Python or NumPy) in 1..5.

    Example:
        >>> import numpy as np
        >>> check_severity(np.int64(2))
        2
    """
    if not _is_int(severity):
        raise AugrobustTypeError(f"{name} must be an int in 1..5, got {severity!r} ({type(severity).__name__}).")
    out = int(severity)  # type: ignore[arg-type]
    if not 1 <= out <= 5:
        raise AugrobustValueError(f"{name} must be in 1..5, got {out}.")
    return out


def check_severities(severities: object, name: str = "severities") -> tuple[int, ...]:
    """A non-empty collection of distinct severities in 1..5, in the given order.

    Example:
        >>> check_severities([1, 3, 5])
        (1, 3, 5)
    """
    if isinstance(severities, (str, bytes)) or not isinstance(severities, Iterable):
        raise AugrobustTypeError(f"{name} must be a list of ints in 1..5, got {severities!r}.")
    values = tuple(check_severity(s, name) for s in severities)
    if not values:
        raise AugrobustValueError(f"{name} must list at least one severity in 1..5.")
    if len(set(values)) != len(values):
        raise AugrobustValueError(f"{name} lists a severity twice: {list(values)}.")
    return values


def reject_unknown_kwargs(owner: str, unknown: dict[str, Any], valid: Sequence[str]) -> None:
    """Raise a clear error naming the unknown keywords, the valid ones and the nearest match."""
    if not unknown:
        return
    hints = ", ".join(f"{name!r}{closest(name, valid)}" for name in unknown)
    raise AugrobustTypeError(f"{owner} got unknown keyword argument(s) {hints}; valid: {', '.join(valid)}.")
