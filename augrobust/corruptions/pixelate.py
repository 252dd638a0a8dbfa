"""pixelate: Pillow BOX downscale by a factor, then back up to the original size.

Reference: ``imagecorruptions.corruptions.pixelate``: ``img.resize((int(W c), int(H c)), BOX)`` then
``resize((W, H), NEAREST)`` on the uint8 PIL image. The ``hendrycks/robustness`` scripts upsample with
``BOX`` instead and use their own factor tables (imagenet_c.md 2.3, 3.14, 4.2-4.4); this module takes
``int(side * c)`` for those too, which is what the scripts do at their fixed sizes.

Exactness: Pillow resamples 8-bit images in fixed point: per output pixel ``k = round(2**22 / n)`` for a
window of ``n`` input pixels (BOX weights are 0 or 1, normalised), ``out = (2**21 + k * sum) >> 22``
clipped to 0..255, rounding to uint8 between the two passes. The pass order matters through that rounding:
Pillow >= 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the
width (``H - h > 2 (W - w)``, python-pillow/Pillow#9549, e.g. tall images), the horizontal pass first
otherwise; this kernel follows that rule (Pillow < 13 always ran the horizontal pass first, so the
reference itself differs between Pillow versions on such shapes). Each pass equals
``floor(sum / n + 1/2 +- 1/(4n))`` (the sign says how ``k`` was rounded, which decides ties): an
``index_add`` of each window (Pillow's downscale windows partition the input; integer sums, exact), a
multiply-add and a floor, exact in float32 and float64 (the margin ``1/(4n)`` dwarfs the rounding
error), so the result is bit-identical to Pillow. Pillow's NEAREST maps output ``x`` to ``int(x0 + x a)``
with the position accumulated in double precision, and BOX upsampling picks one input pixel per
output pixel; both are index gathers. The float input is quantised to uint8 with ``round(255 x)`` (the
reference receives uint8 images; ``k / 255`` round-trips exactly).

Mixed severities: the downscaled sizes differ per severity, so the batch is grouped by severity with one
host sync (the group sizes); each group is processed in cache-sized chunks.
"""

from __future__ import annotations

import functools

import torch

from augrobust._tensor import cache_chunk
from augrobust.corruptions._spec import CorruptionSpec, register
from augrobust.functional.precision import autocast_exempt
from augrobust.functional.sync import constant_table, host_reads_ok

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


@constant_table(64)
def _axis_tables(in_size: int, small: int, upsample: str) -> tuple[torch.Tensor, ...]:
    """One axis at one downscaled size: window of each input pixel, ``1 / n``, bias, upsampling index.

    The window sums are ``index_add`` over the owner index of each input pixel (exact: integers). Pillow's
    fixed point ``(2**21 + k s) >> 22`` with
    ``k = round(2**22 / n)`` equals ``floor(s / n + 1/2)`` for an integer window sum ``s <= 255 n``
    (``n < 128``), except that a tie (``s / n + 1/2`` an integer) rounds down where ``k < 2**22 / n``.
    Both cases are ``floor(s / n + 1/2 +- 1/(4n))``, which keeps a margin of ``1/(4n)`` from every
    integer, far above float32's rounding of ``s * (1 / n)``.
    """
    windows, weights = pillow_box_weights(in_size, small)
    # Pillow's float window bounds can skip an input pixel or give it to two windows (e.g. 33 -> 26,
    # 15 -> 14): one owner row per layer of overlap, with ``small`` as a discarded column.
    owners = [[small] * in_size]
    inverse = torch.zeros(small, dtype=torch.float64)
    bias = torch.zeros(small, dtype=torch.float64)
    for o, (taps, k) in enumerate(zip(windows, weights)):
        n = len(taps)
        if not 0 < n < 128:
            raise ValueError(f"pixelate: {in_size} -> {small} has a window of {n} pixels (exact for 1..127)")
        for tap in taps:
            layer = next((row for row in owners if row[tap] == small), None)
            if layer is None:
                layer = [small] * in_size
                owners.append(layer)
            layer[tap] = o
        inverse[o] = 1.0 / n
        bias[o] = 0.5 + (0.25 if k * n >= 1 << _PRECISION_BITS else -0.25) / n
    if upsample == "nearest":
        index = pillow_nearest_index(small, in_size)
    else:
        index = _box_upsample_index(small, in_size)
    return torch.tensor(owners), inverse, bias, torch.tensor(index)


@functools.lru_cache(maxsize=256)
def _nearest_exact_picks(in_size: int, small: int, upsample: str) -> bool:
    """Whether torch's CPU ``nearest-exact`` upsampling from ``small`` to ``in_size`` pixels picks Pillow's pixels
    (its ``upsample`` index: NEAREST or BOX). Probed once per size pair and mode, not assumed: torch computes the
    source position in float32, Pillow accumulates it in double (820 of 4400 size pairs differ)."""
    expected = pillow_nearest_index(small, in_size) if upsample == "nearest" else _box_upsample_index(small, in_size)
    numbers = torch.arange(small, dtype=torch.float32).view(1, 1, small)  # pixel numbers, exact below 2**24
    picked = torch.nn.functional.interpolate(numbers, size=in_size, mode="nearest-exact").view(-1)
    return small < 1 << 24 and torch.equal(picked, torch.tensor(expected, dtype=torch.float32))


#: Float elements per chunk: small enough that the chunk's temporaries stay in cache (fresh large
#: allocations cost a page-fault pass each on the CPU).
_CHUNK_ELEMENTS = 1 << 18


def _box_pass(pixels: torch.Tensor, owners: torch.Tensor, inverse: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """One Pillow BOX pass along dim 1 of ``pixels`` (integer values), rounded as Pillow's fixed point."""
    sums = pixels.new_zeros(pixels.shape[0], inverse.shape[0] + 1, *pixels.shape[2:])
    for owner in owners:  # integer sums: exact; the 2-D case is torch's fast path
        sums.index_add_(1, owner, pixels)
    return torch.addcmul(bias, sums[:, :-1], inverse).floor_()


def _pixelate_group(
    x: torch.Tensor,
    out: torch.Tensor,
    h_tab: tuple[torch.Tensor, ...],
    w_tab: tuple[torch.Tensor, ...],
    upsample: str,
) -> None:
    """Pixelate ``x`` (one severity) into ``out`` (same shape), chunk by chunk; ``upsample`` names the tables' mode."""
    b, c, h, w = x.shape
    dtype = out.dtype
    owner_w, inv_w, bias_w, idx_w = (t.to(x.device, dtype if t.is_floating_point() else None) for t in w_tab)
    owner_h, inv_h, bias_h, idx_h = (t.to(x.device, dtype if t.is_floating_point() else None) for t in h_tab)
    inv_h, bias_h = inv_h.view(-1, 1), bias_h.view(-1, 1)
    # Pillow >= 13 runs the vertical pass first when the height shrinks by more than twice as many pixels
    # as the width (python-pillow/Pillow#9549); the rounding between the passes makes the order visible.
    vertical_first = h - inv_h.shape[0] > 2 * (w - inv_w.shape[0])
    nearest_exact = (
        host_reads_ok(x.device)
        and _nearest_exact_picks(h, inv_h.shape[0], upsample)
        and _nearest_exact_picks(w, inv_w.shape[0], upsample)
    )
    step = cache_chunk(x.device, _CHUNK_ELEMENTS, c * h * w)
    for start in range(0, b, step):
        chunk = x[start : start + step]
        k = chunk.shape[0]
        pixels = chunk.contiguous().to(dtype).mul(255.0).round_().clamp_(0.0, 255.0)
        # Two box passes, each rounded to integers (see _axis_tables), in Pillow's order.
        if vertical_first:
            small = _box_pass(pixels.view(k * c, h, w), owner_h, inv_h, bias_h)
            small = _box_pass(small.view(k * c * small.shape[1], w), owner_w, inv_w, bias_w)
        else:
            small = _box_pass(pixels.view(k * c * h, w), owner_w, inv_w, bias_w)
            small = _box_pass(small.view(k * c, h, -1), owner_h, inv_h, bias_h)
        small = small.view(k * c, inv_h.shape[0], inv_w.shape[0]).div_(255.0)
        # Upsampling picks one pixel per output position: torch's nearest-exact upsampling where it picks the
        # same pixels (checked once per size pair; its CPU kernel is 2-3x faster than gathers), else two
        # index selects, the last one into ``out``.
        if nearest_exact:
            up = torch.nn.functional.interpolate(small.unsqueeze(0), size=(h, w), mode="nearest-exact")
            out[start : start + k].view(1, k * c, h, w).copy_(up)
            continue
        rows = small.index_select(1, idx_h).view(k * c * h, -1)
        torch.index_select(rows, 1, idx_w, out=out[start : start + k].view(k * c * h, w))


@autocast_exempt
def pixelate(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Pixelate a ``(B, C, H, W)`` batch as Pillow's BOX down / NEAREST (or BOX) up resize does.

    Not differentiable: Pillow works on uint8 and rounds after each pass, so the result is piecewise
    constant in ``x``. An input that requires grad is accepted and the result has no graph. A NaN pixel
    turns its whole block NaN; +-inf are clamped to 1 and 0.

    Example:
        >>> import torch
        >>> x = torch.arange(16.0).view(1, 1, 4, 4).div(255).expand(1, 3, 4, 4)
        >>> y = pixelate(x, torch.tensor([2]), {}, preset="imagenet", reference="imagecorruptions")
        >>> (y[0, 0] * 255).round().int().tolist()
        [[3, 3, 5, 5], [3, 3, 5, 5], [11, 11, 13, 13], [11, 11, 13, 13]]
    """
    x = x.detach()  # piecewise constant (see above): no graph rather than zero gradients
    b, c, h, w = x.shape
    factors = tuple(TABLES.get(preset, TABLES["imagenet"]))
    upsample = "box" if reference == "hendrycks" else "nearest"
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    out = torch.empty(x.shape, dtype=dtype, device=x.device)
    row = severity.long().to(x.device) - 1
    if not host_reads_ok(x.device):
        # Sync-free (accelerators, torch.compile): every severity's size on the whole batch, kept per sample
        # (5x the work of the grouped path below, no host read).
        for s, factor in enumerate(factors):
            tables = [_axis_tables(size, max(1, int(size * factor)), upsample) for size in (h, w)]
            group = torch.empty(x.shape, dtype=dtype, device=x.device)
            _pixelate_group(x, group, *tables, upsample)
            out = group if s == 0 else torch.where((row == s).view(-1, 1, 1, 1), group, out)
        return out.to(x.dtype)
    # Downscaled sizes differ per severity: group by severity, with one host sync for the group sizes.
    counts = torch.bincount(row, minlength=len(factors)).tolist()
    order = torch.argsort(row, stable=True) if max(counts) < b else None
    first = 0
    for s, count in enumerate(counts):
        if count == 0:
            continue
        tables = [_axis_tables(size, max(1, int(size * factors[s])), upsample) for size in (h, w)]
        if order is None:
            _pixelate_group(x, out, *tables, upsample)
        else:
            members = order[first : first + count]
            group = torch.empty((count, c, h, w), dtype=dtype, device=x.device)
            _pixelate_group(x.index_select(0, members), group, *tables, upsample)
            out.index_copy_(0, members, group)
        first += count
    return out.to(x.dtype)


SPEC = register(CorruptionSpec(name="pixelate", apply=pixelate, per_channel=True, differentiable=False))
