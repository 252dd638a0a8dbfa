"""Training methods (one module each) and their registry: the names ``TrainConfig.method`` accepts.

Every method subclasses :class:`Method` (``base.py``) and overrides only the hooks it needs. DAMP is not a
method: it changes the forward pass and combines with any method (``TrainConfig.damp_sigma``).

Example:
    >>> sorted(METHODS)
    ['afa', 'afa_noaux', 'ant', 'dfmx', 'erm', 'gnt']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from augrobust._checks import closest
from augrobust.errors import AugrobustValueError
from augrobust.train.methods.afa import AFA, AFANoAux
from augrobust.train.methods.ant import ANT
from augrobust.train.methods.base import Forward, FunctionMethod, Method, as_method
from augrobust.train.methods.dfmx import DFMXMethod
from augrobust.train.methods.erm import ERM
from augrobust.train.methods.gnt import GNT

__all__ = [
    "AFA",
    "AFANoAux",
    "ANT",
    "DFMXMethod",
    "ERM",
    "GNT",
    "METHODS",
    "Forward",
    "FunctionMethod",
    "Method",
    "as_method",
    "get_method",
    "register_method",
]

#: Method name -> factory taking the method's options as keywords. Extend with :func:`register_method`.
METHODS: dict[str, Callable[..., Any]] = {
    "erm": ERM,
    "gnt": GNT,
    "ant": ANT,
    "afa": AFA,
    "afa_noaux": AFANoAux,
    "dfmx": DFMXMethod,
}


def register_method(name: str, factory: Callable[..., Any]) -> None:
    """Make ``name`` usable as ``method=`` / ``--method``; ``factory(**options)`` returns the method.

    The factory may return a :class:`Method` or a plain callable ``(model, x, y) -> x_aug``.

    Example:
        >>> import torch
        >>> register_method("flip", lambda: lambda model, x, y: x.flip(-1))
        >>> get_method("flip")(None, torch.arange(3.0).view(1, 1, 1, 3), None).flatten().tolist()
        [2.0, 1.0, 0.0]
        >>> del METHODS["flip"]
    """
    if not isinstance(name, str) or not name:
        raise AugrobustValueError(f"method name must be a non-empty string, got {name!r}.")
    METHODS[name] = factory


def get_method(name: str, **options: Any) -> Method:
    """The method registered as ``name``, built with keyword ``options`` (a plain callable comes wrapped).

    Raises:
        AugrobustValueError: unknown name (the message lists the registered ones), or an option the
            factory does not take (the message shows the factory's signature).

    Example:
        >>> get_method("gnt", sigma=0.1)
        GNT(sigma=0.1, p=0.5)
    """
    if name not in METHODS:
        raise AugrobustValueError(
            f"Unknown training method {name!r}{closest(name, METHODS)}; choose one of {sorted(METHODS)}."
        )
    factory = METHODS[name]
    try:
        signature = inspect.signature(factory)
        signature.bind(**options)
    except TypeError as err:
        raise AugrobustValueError(
            f"method {name!r} does not take the options {sorted(options)}: {err}; its factory is {name}{signature}."
        ) from err
    except ValueError:  # no introspectable signature (some builtins): let the call itself complain
        pass
    return as_method(factory(**options))
