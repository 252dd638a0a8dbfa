"""Kernels compute in their input's dtype, also inside a ``torch.autocast`` region.

Autocast lowers matrix products and convolutions to bfloat16 / float16. The blurs, the HSV round trip,
the L2 calibration and the Fourier waves are built from such operations: under autocast they would return
a half-precision tensor for a float32 input (a float32 buffer then rejects it) and lose the precision that
makes them faithful (a bfloat16 blur is several grey levels off). An augmentation is not part of the
model, so every kernel opts out: :func:`autocast_exempt` runs it with autocast disabled on the input's
device, and the result has the input's dtype.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

__all__ = ["autocast_exempt"]

F = TypeVar("F", bound=Callable[..., object])


def _autocast_on(x: object) -> bool:
    if not isinstance(x, torch.Tensor):
        return False
    try:
        return torch.is_autocast_enabled(x.device.type)
    except RuntimeError:  # a device type autocast does not know (e.g. meta): nothing to disable
        return False


def autocast_exempt(fn: F) -> F:
    """Decorate a kernel whose first argument is the image: run it with autocast off on that device.

    Outside an autocast region this adds one flag check. Float results are cast to the input's dtype
    (they already have it, the cast is a guard).

    Example:
        >>> import torch
        >>> @autocast_exempt
        ... def blur(x):
        ...     return torch.nn.functional.conv2d(x, torch.ones(1, 1, 3, 3) / 9, padding=1)
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     blur(torch.rand(1, 1, 8, 8)).dtype
        torch.float32
    """

    @functools.wraps(fn)
    def wrapper(x: object, *args: object, **kwargs: object) -> object:
        if not _autocast_on(x):
            return fn(x, *args, **kwargs)
        with torch.autocast(x.device.type, enabled=False):
            out = fn(x, *args, **kwargs)
        if isinstance(out, torch.Tensor) and out.is_floating_point() and x.is_floating_point():
            return out.to(x.dtype)
        return out

    return wrapper  # type: ignore[return-value]
