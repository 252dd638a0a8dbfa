"""glass_blur: Gaussian blur, local pixel "shuffling" with random offsets, Gaussian blur again.

Reference: ``imagecorruptions.corruptions.glass_blur`` (imagenet_c.md 3.5), identical to the original
scripts at their own sizes. Per severity ``(sigma, d, iterations)``:

1. ``x = floor(255 * gaussian(x, sigma))`` (``np.uint8``; mode ``'nearest'``, truncate 4);
2. ``iterations`` times: for rows ``h = H-d, ..., d+1`` and, inside, columns ``w = W-d, ..., d+1`` (both
   descending), draw ``dx, dy = randint(-d, d, size=2)`` (offsets in ``{-d, ..., d-1}``) and run the
   tuple "swap" of ``x[h, w]`` and ``x[h+dy, w+dx]``. On ``HxWx3`` views that is a one-way **copy**
   ``x[h, w] <- x[h+dy, w+dx]``;
3. ``clip(gaussian(x / 255, sigma), 0, 1)``.

Exact parallel form of step 2. Each loop position is written once per iteration, reading the current
value of its source ``q = p + offset(p)``. That source has already been rewritten in this iteration iff
it lies in the loop region and comes later in raster order (the loop runs backwards), i.e. ``dy > 0``
or ``dy == 0 and dx > 0``; then its value is its own (already resolved) source's, otherwise it is the
value from before the iteration. So ``new[p] = before[q*]``, where ``q*`` follows ``p -> q`` while the
step is "pending". Chains strictly advance in raster order, so they have fewer than ``N = H * W``
steps, and pointer doubling over the index map (``J <- J o J``, terminal pointers fixed) resolves them
all in ``ceil(log2 N)`` rounds: a bound from the geometry, no sync needed. (On CPU, where reading a flag
costs nothing, the loop stops early once every chain is resolved; the result is the same.) The
iterations compose as index maps, so the pixels are gathered once, as ``uint8``.

Params: ``offsets``, int8 ``(B, iterations_max, H - 2, W - 2, 2)`` holding ``(dx, dy)`` (NumPy's draw
order) for loop position ``(h, w)`` at ``[..., h - 2, w - 2, :]`` (the loop region of ``d = 1``, the
largest). A sample with a larger ``d`` uses the sub-field of its own region; iterations beyond its
count and positions outside its region are ignored.
"""

from __future__ import annotations

import math

import torch

from augrobust._tensor import cache_chunk
from augrobust.corruptions._spec import CorruptionSpec, register
from augrobust.functional.filters import gaussian_kernels, separable_filter_nearest
from augrobust.functional.precision import autocast_exempt
from augrobust.functional.sync import constant_table, host_reads_ok

__all__ = ["TABLES", "glass_blur", "glass_shuffle", "glass_shuffle_index", "sample_glass_offsets"]

#: (sigma, max_delta d, iterations) per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES: dict[str, tuple[tuple[float, int, int], ...]] = {
    "imagenet": ((0.7, 1, 2), (0.9, 2, 1), (1.0, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "inception": ((0.8, 1, 3), (1.0, 3, 1), (1.1, 2, 4), (1.2, 4, 2), (1.6, 5, 2)),
    "tinyimagenet": ((0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)),
    "cifar": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
}

# The offset field covers the loop region of d = 1 (rows and columns 2 .. n-1), the largest one.
_FIELD_ORIGIN = 2
# lcm(2, 4, 6, 8, 10) = 120: `randint(0, 120) % (2d)` is exactly uniform for every d in the tables
# (d <= 5), and fits int8.
_UNIFORM_SPAN = 120


def _rows(preset: str) -> tuple[tuple[float, int, int], ...]:
    return TABLES.get(preset, TABLES["imagenet"])


@constant_table(16)
def _blur_kernels(preset: str) -> torch.Tensor:
    return gaussian_kernels([s for s, _, _ in _rows(preset)])


def _table_column(preset: str, column: int, severity: torch.Tensor) -> torch.Tensor:
    values = torch.tensor([row[column] for row in _rows(preset)], device=severity.device)
    return values[severity.long() - 1]


def sample_glass_offsets(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Draw every ``(dx, dy)`` of the shuffle loop, uniform on ``{-d, ..., d-1}`` per the severity.

    Returns ``{"offsets": int8 (B, iterations_max, H - 2, W - 2, 2)}`` (see the module docstring).

    Example:
        >>> p = sample_glass_offsets((2, 3, 32, 32), torch.tensor([1, 5]), preset="imagenet",
        ...                          reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> p["offsets"].shape, int(p["offsets"][0].min()), int(p["offsets"][0].max())
        (torch.Size([2, 3, 30, 30, 2]), -1, 0)
    """
    b, _, h, w = shape
    iterations = max(row[2] for row in _rows(preset))
    d = _table_column(preset, 1, severity.to(device)).to(torch.int8).view(b, 1, 1, 1, 1)
    size = (b, iterations, max(h - 2, 0), max(w - 2, 0), 2)
    draws = torch.randint(0, _UNIFORM_SPAN, size, generator=generator, device=device, dtype=torch.int8)
    return {"offsets": draws.remainder_(2 * d).sub_(d)}


def glass_shuffle_index(
    offsets: torch.Tensor, delta: torch.Tensor, iterations: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """The source of every pixel after the shuffle loop, as a flat index into the batch.

    Args:
        offsets: ``(B, T, H - 2, W - 2, 2)`` integer ``(dx, dy)`` field (see the module docstring).
        delta: ``(B,)`` max_delta ``d`` per sample (loop region rows/columns ``d+1 .. n-d``).
        iterations: ``(B,)`` number of loop passes per sample (``<= T``; extra passes are identity).
        height, width: the image size.

    Returns:
        ``(B * H * W,)`` int64: pixel ``p`` of image ``b`` (flat ``b * H * W + p``) ends up holding the
        value that flat pixel ``index[b * H * W + p]`` had before the loop.

    Example:
        >>> off = torch.zeros(1, 1, 2, 3, 2, dtype=torch.int8); off[0, 0, 0, 0] = torch.tensor([-1, -1])
        >>> glass_shuffle_index(off, torch.tensor([1]), torch.tensor([1]), 4, 5).view(4, 5)[2].tolist()
        [10, 11, 6, 13, 14]
    """
    b, t = offsets.shape[:2]
    device = offsets.device
    hw = height * width
    n = b * hw
    o = _FIELD_ORIGIN
    ih, iw = max(height - o, 0), max(width - o, 0)  # the field's grid: rows/cols o .. n-1
    # Small-integer grids for the masks; int64 only for the pointers themselves.
    rows = torch.arange(o, height, device=device, dtype=torch.int16).view(1, ih, 1)
    cols = torch.arange(o, width, device=device, dtype=torch.int16).view(1, 1, iw)
    d = delta.to(device=device, dtype=torch.int16).view(b, 1, 1)
    region = (rows >= d + 1) & (rows <= height - d) & (cols >= d + 1) & (cols <= width - d)  # (B, ih, iw)
    flat = torch.arange(n, device=device).view(b, height, width)
    identity_final = flat.reshape(-1) + n  # values >= n mean "read pixel (value - n) from before"
    interior_final = flat[:, o:, o:] + n
    rounds = max(1, math.ceil(math.log2(max(2, hw))))  # chains have < H*W steps: doubling resolves them
    # `cur` holds the pending map J (first half) and the fixed terminal pointers (second half).
    cur = torch.cat([identity_final, identity_final])
    nxt = cur.clone()
    composite: torch.Tensor | None = None
    for it in range(t):  # at most the table's largest count; samples with fewer passes get identity
        dx = offsets[:, it, ..., 0].to(torch.int16)
        dy = offsets[:, it, ..., 1].to(torch.int16)
        active = region & (iterations.to(device).view(b, 1, 1) > it)
        qh, qw = rows + dy, cols + dx
        # The source was already rewritten iff it is later in raster order and inside the region
        # (qh >= d+1 holds whenever it is later).
        later = (dy > 0) | ((dy == 0) & (dx > 0))
        pending = active & later & (qh <= height - d) & (qw >= d + 1) & (qw <= width - d)
        step_rel = torch.where(active, dy.to(torch.int32) * width + dx, 0)
        jump = cur[:n].view(b, height, width)
        jump.copy_(flat.view(b, height, width) + n)
        jump[:, o:, o:] = interior_final + step_rel - pending.to(torch.int64) * n
        for r in range(rounds):
            torch.gather(cur, 0, cur[:n], out=nxt[:n])  # J <- J o J (terminal half maps to itself)
            cur, nxt = nxt, cur
            # On CPU a flag read is free: stop once every chain is resolved (same result as the full count).
            if r >= 1 and host_reads_ok(device) and not bool((cur[:n] < n).any()):
                break
        step = cur[:n] - n
        composite = step if composite is None else composite.gather(0, step)
    return identity_final - n if composite is None else composite


# Images per chunk of the shuffle (~1M pointers): the pointer arrays stay in cache; fixed by the shape.
_SHUFFLE_CHUNK_PIXELS = 1 << 19


def glass_shuffle(
    x: torch.Tensor, offsets: torch.Tensor, delta: torch.Tensor, iterations: torch.Tensor
) -> torch.Tensor:
    """Run the reference's sequential copy loop on a batch, exactly, as one gather.

    Args:
        x: ``(B, C, H, W)`` tensor of any dtype (the reference shuffles ``uint8``).
        offsets, delta, iterations: see :func:`glass_shuffle_index`.

    Example:
        >>> x = torch.arange(20, dtype=torch.uint8).view(1, 1, 4, 5)
        >>> off = torch.zeros(1, 1, 2, 3, 2, dtype=torch.int8); off[0, 0, 0, 0] = torch.tensor([-1, -1])
        >>> glass_shuffle(x, off, torch.tensor([1]), torch.tensor([1]))[0, 0, 2].tolist()
        [10, 11, 6, 13, 14]
    """
    b, c, h, w = x.shape
    chunk = cache_chunk(x.device, _SHUFFLE_CHUNK_PIXELS, h * w)
    parts = []
    for start in range(0, b, chunk):  # fixed by the shape: no sync
        stop = min(b, start + chunk)
        index = glass_shuffle_index(offsets[start:stop], delta[start:stop], iterations[start:stop], h, w)
        channels_first = x[start:stop].transpose(0, 1).reshape(c, (stop - start) * h * w)
        parts.append(channels_first.index_select(1, index).view(c, stop - start, h, w).transpose(0, 1))
    return torch.cat(parts).contiguous()


@autocast_exempt
def glass_blur(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """The glass_blur kernel on ``x`` in ``[0, 1]``.

    Structural parameters: the iteration count is vectorised over the table's maximum (identity passes
    for smaller severities) and ``d`` only masks the offset field, so severities mix without a sync.

    Not differentiable: the reference quantises the first blur to uint8, so the result is piecewise
    constant in ``x``. An input that requires grad is accepted and the result has no graph. Non-finite
    values are quantised consistently: NaN and -inf to 0, +inf to 255 (uint8 cannot hold a NaN).

    Example:
        >>> import augrobust
        >>> x = torch.rand(2, 3, 32, 32)
        >>> augrobust.corrupt(x, "glass_blur", severity=torch.tensor([1, 5])).shape
        torch.Size([2, 3, 32, 32])
    """
    x = x.detach()  # piecewise constant (see above): no graph rather than zero gradients
    kernels = _blur_kernels(preset).to(x.device)[severity.long() - 1]
    quantised = separable_filter_nearest(x, kernels).mul_(255.0).floor_().clamp_(0.0, 255.0).nan_to_num_(0.0)
    shuffled = glass_shuffle(
        quantised.to(torch.uint8),
        params["offsets"],
        _table_column(preset, 1, severity),
        _table_column(preset, 2, severity),
    )
    return separable_filter_nearest(shuffled.to(x.dtype) / 255.0, kernels).clamp_(0.0, 1.0)


SPEC = register(
    CorruptionSpec(
        name="glass_blur", apply=glass_blur, sample_params=sample_glass_offsets, per_channel=True, differentiable=False
    )
)
