"""What the peers' harnesses (tests/test_harness_*.py) run over: every registry entry, on one kind of image."""

from __future__ import annotations

import torch

from augrobust.transforms.registry import transform_registry

REGISTRY = transform_registry()
LABELS = sorted(REGISTRY)
SIZE = 32


def images(batch: int = 3, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.Tensor:
    """Smooth colour ramps plus noise, inside (0.2, 1): no saturated pixel hides a transform's effect."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, SIZE), torch.linspace(0, 1, SIZE), indexing="ij")
    x = (0.6 * torch.stack([xx, yy, (xx + yy) / 2]) + 0.2 + 0.2 * torch.rand(batch, 3, SIZE, SIZE, generator=g))
    x = x.clamp(0, 1)
    return (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
