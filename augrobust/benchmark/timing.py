"""What the benchmark scripts share: a device sync for wall-clock timing, the device's description, the JSON file.

Example:
    >>> import torch
    >>> device_sync(torch.device("cpu"))()  # a no-op on the CPU
    >>> sorted(device_info("cpu"))
    ['device', 'device_name', 'threads', 'torch']
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from augrobust._io import atomic_write_text

__all__ = ["device_info", "device_sync", "write_json"]


def device_sync(device: torch.device | str) -> Callable[[], None]:
    """A function that waits for the work queued on ``device`` (a no-op on the CPU), so that wall times count it."""
    device = torch.device(device)
    if device.type == "cpu":
        return lambda: None
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6: one call for CUDA, XPU, MPS...
    if accelerator is not None and accelerator.is_available():
        return lambda: accelerator.synchronize(device)
    return getattr(torch, device.type).synchronize  # torch 2.5: torch.cuda.synchronize and its like


def device_info(device: torch.device | str) -> dict[str, Any]:
    """The device, its name (GPU model or CPU), torch's CPU threads and torch's version, for a result file."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {"device": str(device), "device_name": name, "threads": torch.get_num_threads(), "torch": torch.__version__}


def write_json(path: str | os.PathLike[str] | None, result: dict[str, Any]) -> None:
    """Write ``result`` as indented JSON to ``path`` (its folder created; atomic: never a half-written file).
    ``None`` writes nothing."""
    if path is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
