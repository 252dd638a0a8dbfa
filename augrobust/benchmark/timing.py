"""Timing helpers the benchmark scripts share (no host sync is hidden in a wall-clock measurement).

Example:
    >>> import torch
    >>> device_sync(torch.device("cpu"))()  # a no-op on the CPU
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["device_sync"]


def device_sync(device: torch.device | str) -> Callable[[], None]:
    """A function that waits for the work queued on ``device`` (a no-op on the CPU), so that wall times count it."""
    device = torch.device(device)
    if device.type == "cpu":
        return lambda: None
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6: one call for CUDA, XPU, MPS...
    if accelerator is not None and accelerator.is_available():
        return lambda: accelerator.synchronize(device)
    return getattr(torch, device.type).synchronize  # torch 2.5: torch.cuda.synchronize and its like
