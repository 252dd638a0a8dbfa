"""pixelate: Pillow BOX downscale by a factor, then back up to the original size.

Reference: ``imagecorruptions.corruptions.pixelate``: ``img.resize((int(W c), int(H c)), BOX)`` then
``resize((W, H), NEAREST)`` on the uint8 PIL image. The ``hendrycks/robustness`` scripts upsample with
``BOX`` instead and use their own factor tables (imagenet_c.md 2.3, 3.14, 4.2-4.4); this module takes
``int(side * c)`` for those too, which is what the scripts do at their fixed sizes.

Exactness: Pillow resamples 8-bit images in fixed point: per output pixel ``k = round(2**22 / n)`` for a
window of ``n`` input pixels (BOX weights are 0 or 1, normalised), ``out = (2**21 + k * sum) >> 22``
clipped to 0..255, horizontal pass first, rounding to uint8 between the passes. This kernel reproduces
that arithmetic (sums as a 0/1 matmul, exact in float32; the fixed-point step in float64, exact), so
the result is bit-identical to Pillow. Pillow's NEAREST maps output ``x`` to ``int(x0 + x a)``
with the position accumulated in double precision, and BOX upsampling picks one input pixel per
output pixel; both are index gathers. The float input is quantised to uint8 with ``round(255 x)`` (the
reference receives uint8 images; ``k / 255`` round-trips exactly).

Mixed severities: the downscaled sizes differ per severity, so the five severities' weight tables are
padded to the largest size with zero rows and gathered per sample (no host sync).
"""

from __future__ import annotations

import functools
import math

import torch

from augrobust.corruptions._spec import CorruptionSpec, register

__all__ = ["TABLES", "pillow_box_weights", "pillow_nearest_index", "pixelate"]

#: Downscale factor per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": (0.6, 0.5, 0.4, 0.3, 0.25),
    "inception": (0.5, 0.4, 0.3, 0.25, 0.2),
    "tinyimagenet": (0.9, 0.8, 0.7, 0.6, 0.5),
    "cifar": (0.95, 0.9, 0.85, 0.75, 0.65),
}

_PRECISION_BITS = 22  # Pillow: 32 - 8 - 2 bits of fixed point for 8-bit images


def pillow_box_weights(in_size: int, out_size: int) -> tuple[list[list[int]], list[int]]:
    """Pillow's BOX resampling windows for one axis: ``(windows, fixed_point_weight)`` per output pixel.

    Each output pixel averages the input pixels whose indices are in its window, all with the same
    fixed-point weight ``round(2**22 / len(window))`` (Pillow's ``precompute_coeffs`` and
    ``normalize_coeffs_8bpc`` for the BOX filter).

    Example:
        >>> pillow_box_weights(3, 2)
        ([[0, 1], [2]], [2097152, 4194304])
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    windows, weights = [], []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        # BOX filter: 1 on (-0.5, 0.5], evaluated at the input pixel centres.
        taps = [x for x in range(xmin, xmax) if -0.5 < (x - center + 0.5) / filterscale <= 0.5]
        windows.append(taps)
        weights.append(int(0.5 + (1.0 / len(taps)) * (1 << _PRECISION_BITS)) if taps else 0)
    return windows, weights


def pillow_nearest_index(in_size: int, out_size: int) -> list[int]:
    """Input index of each output pixel under Pillow's NEAREST resize (accumulated double position).

    Example:
        >>> pillow_nearest_index(2, 5)
        [0, 0, 1, 1, 1]
    """
    step = in_size / out_size
    position = step * 0.5
    index = []
    for _ in range(out_size):
        index.append(int(position))
        position += step
    return index


def _box_upsample_index(in_size: int, out_size: int) -> list[int]:
    """Pillow BOX upsampling (out >= in): one tap of weight 1 per output pixel; its index."""
    windows, _ = pillow_box_weights(in_size, out_size)
    return [w[0] for w in windows]


@functools.lru_cache(maxsize=64)
def _tables(size: int, factors: tuple[float, ...], upsample: str) -> tuple[torch.Tensor, ...]:
    """Per-severity padded tables for one axis: 0/1 window matrix, weights, upsampling index."""
    smalls = [max(1, int(size * c)) for c in factors]
    n_max = max(smalls)
    windows = torch.zeros(len(factors), n_max, size, dtype=torch.float32)
    weights = torch.zeros(len(factors), n_max, dtype=torch.float64)
    index = torch.zeros(len(factors), size, dtype=torch.long)
    for s, small in enumerate(smalls):
        wins, ks = pillow_box_weights(size, small)
        for o, (taps, k) in enumerate(zip(wins, ks)):
            windows[s, o, taps] = 1.0
            weights[s, o] = k
        up = pillow_nearest_index(small, size) if upsample == "nearest" else _box_upsample_index(small, size)
        index[s] = torch.tensor(up)
    return windows, weights, index


def _fixed_point(sums: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``clip((2**21 + k * sum) >> 22, 0, 255)`` exactly (float64 holds the 30-bit products)."""
    out = sums.double().mul_(weights).add_(1 << (_PRECISION_BITS - 1)).div_(1 << _PRECISION_BITS)
    return out.floor_().clamp_(0.0, 255.0)


def pixelate(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Pixelate a ``(B, C, H, W)`` batch as Pillow's BOX down / NEAREST (or BOX) up resize does.

    Example:
        >>> import torch
        >>> x = torch.arange(16.0).view(1, 1, 4, 4).div(255).expand(1, 3, 4, 4)
        >>> y = pixelate(x, torch.tensor([2]), {}, preset="imagenet", reference="imagecorruptions")
        >>> (y[0, 0] * 255).round().int().tolist()
        [[3, 3, 5, 5], [3, 3, 5, 5], [11, 11, 13, 13], [11, 11, 13, 13]]
    """
    b, c, h, w = x.shape
    factors = tuple(TABLES.get(preset, TABLES["imagenet"]))
    upsample = "box" if reference == "hendrycks" else "nearest"
    row = severity.long() - 1
    win_h, k_h, idx_h = (t.to(x.device) for t in _tables(h, factors, upsample))
    win_w, k_w, idx_w = (t.to(x.device) for t in _tables(w, factors, upsample))
    dtype = torch.float32 if x.dtype != torch.float64 else torch.float64
    pixels = x.to(dtype).mul(255.0).round_().clamp_(0.0, 255.0)
    # Horizontal pass, then vertical (Pillow's order), each rounded to uint8 values.
    sums = torch.matmul(pixels, win_w[row].to(dtype).transpose(1, 2).unsqueeze(1))  # (B, C, H, w')
    small = _fixed_point(sums, k_w[row].view(b, 1, 1, -1)).to(dtype)
    sums = torch.matmul(win_h[row].to(dtype).unsqueeze(1), small)  # (B, C, h', w')
    small = _fixed_point(sums, k_h[row].view(b, 1, -1, 1)).to(x.dtype)
    # Upsampling picks one pixel per output position: two gathers.
    rows = idx_h[row].view(b, 1, h, 1).expand(b, c, h, small.shape[-1])
    out = small.gather(2, rows)
    cols = idx_w[row].view(b, 1, 1, w).expand(b, c, h, w)
    return out.gather(3, cols).div_(255.0)


SPEC = register(CorruptionSpec(name="pixelate", apply=pixelate, per_channel=True))
