"""shot_noise: Poisson photon noise, ``clip(Poisson(x * c) / c, 0, 1)`` per pixel and channel.

Reference: ``imagecorruptions.corruptions.shot_noise``: ``np.random.poisson(x * c) / float(c)`` on the
HWC float64 image in ``[0, 1]``, then clipped (no gamma linearisation). The original dataset scripts use
the same formula with per-preset photon counts ``c`` (imagenet_c.md 3.3, 4.2-4.4).

The sampler draws ONE float64 uniform ``u`` per element; the kernel maps it to a Poisson count, exactly
in law, with Walker's alias method over the 256 rates of a uint8-valued image:

* The rate is ``lam = t * h`` with ``t = x * 255`` (rounded in ``x``'s dtype) and lattice step
  ``h = c / 255``: for an image that came from uint8, ``t`` is an integer level and ``lam`` takes at most
  256 values per severity. A table (cached per preset and device) holds, for every level, the alias
  table of Poisson(``level * h``) over a window of ``K`` counts (``K`` a power of two; the tails outside
  the window, below ``1e-20`` each, are folded into its end atoms).
* Alias draw: column ``j = floor(u K)``, ``f = u K - j`` (both exact); the count is the column's own atom
  if ``f < prob[j]``, else ``alias[j]``. That is one gather of ``prob`` and one of the result: the fast
  path (integral ``t``, checked once per call on the CPU) gathers the final clipped ``count / c`` value.
* General path (non-integral ``t``, and always on accelerators, which avoids a host sync): the rate is
  split as ``lam = floor(t) h + delta`` with ``0 <= delta < h``; Poisson(``floor(t) h``) is the alias draw
  above and Poisson(``delta``) the chop-down inverse CDF of the alias step's *recycled* uniform
  (``f / prob`` or ``(f - prob) / (1 - prob)``, uniform and independent of the drawn count). For integral
  ``t`` the residual is ``Poisson(0) = 0``, so both paths give the same output for the same ``u``.

Law error: ``u`` has 53 bits, ``j`` takes ``log2 K <= 10`` of them, so each atom's probability is off by
at most ``2**-43`` from the tabulated one, whose float64 pmf (``exp`` of a log-pmf) and alias
construction are accurate to about ``1e-12`` relative; the recycled uniform keeps at least 43 bits on
average (total error of the residual's law below ``2**-42``). ``params`` may instead carry integer
Poisson ``counts`` (e.g. the oracle's own ``np.random.poisson`` draws, to replay NumPy exactly); the kernel
then only scales and clips.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import scipy.special
import torch

from augrobust._tensor import cache_chunk
from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.functional.precision import autocast_exempt
from augrobust.functional.sync import constant_table, host_reads_ok

__all__ = ["TABLES", "poisson_from_uniform", "sample_shot_noise_uniforms", "shot_noise"]

#: Photons per unit intensity ``c`` per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": (60, 25, 12, 5, 3),
    "inception": (50, 20, 10, 5, 3),
    "tinyimagenet": (250, 100, 50, 30, 15),
    "cifar": (500, 250, 100, 75, 50),
}

#: Levels of a uint8 image: the rate lattice of the kernel is ``level * c / 255``.
LEVELS = 255
# Mass of each tail folded into the end atoms of a table row.
_TAIL_MASS = 1e-20
# Elements per chunk in the kernel: the ~12 elementwise temporaries stay in cache, and each op is long enough
# to amortise torch's per-call overhead (measured at 224 px: 1 << 14: 1.77-2.39 ms per image, 1 << 16: 1.70-1.95).
_CHUNK = 1 << 16


def _poisson_alias_rows(rates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Alias tables of Poisson(``rates[r]``), one row per rate, on a common width ``K = 2**m``.

    Returns ``(prob, counts, K)``: ``prob`` is ``(R, K)`` float64, ``counts`` ``(R, K, 2)`` int32 with
    column ``j``'s own count and its alias count; drawing column ``j`` uniformly and keeping the own count
    with probability ``prob[r, j]`` gives Poisson(``rates[r]``) up to float64 rounding. Built with NumPy
    (a one-off, cached table; small-array torch calls cost more here).
    """
    lam = rates.double().cpu().numpy()
    top = float(lam.max())
    k = np.arange(math.ceil(top + 14.0 * math.sqrt(top) + 40.0) + 1, dtype=np.float64)
    pmf = np.exp(scipy.special.xlogy(k, lam[:, None]) - lam[:, None] - scipy.special.gammaln(k + 1.0))
    pmf /= pmf.sum(axis=1, keepdims=True)
    cdf = pmf.cumsum(axis=1)
    survival = pmf[:, ::-1].cumsum(axis=1)[:, ::-1] - pmf  # P(N > k), without 1 - cdf's cancellation
    kmin = (cdf < _TAIL_MASS).sum(axis=1)  # every k below kmin holds less than the tail mass together
    kmax = (survival >= _TAIL_MASS).sum(axis=1)  # survival is non-increasing: first k with P(N > k) < eps
    width = 1 << max(0, math.ceil(math.log2(int((kmax - kmin).max()) + 1)))
    rows = np.arange(lam.size)
    col = kmin[:, None] + np.arange(width)
    window = np.take_along_axis(pmf, np.minimum(col, k.size - 1), axis=1)
    window[col > kmax[:, None]] = 0.0
    # Fold the tails into the end atoms of the window.
    window[rows, 0] += cdf[rows, kmin] - pmf[rows, kmin]
    window[rows, kmax - kmin] += survival[rows, kmax]
    q = window / window.sum(axis=1, keepdims=True) * width
    prob, alias = _vose(q)
    counts = np.stack([col, np.take_along_axis(col, alias, axis=1)], axis=2).astype(np.int32)
    return torch.from_numpy(prob), torch.from_numpy(counts), width


def _vose(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias construction, vectorised over rows: ``q`` is ``(R, K)``, each row summing to ``K``.

    Each row's columns are sorted once; then K - 1 steps each pair one "small" column (q <= 1) with the
    current "large" one, in every row at once: the small one keeps probability q and aliases to the large
    one, which gives away 1 - q and becomes the next small one when it drops below 1. NumPy on flat
    indices: ~K steps of small-array operations.
    """
    n_rows, width = q.shape
    qf = q.reshape(-1).copy()
    base = np.arange(n_rows) * width
    order = np.argsort(qf.reshape(n_rows, width), axis=1, kind="stable") + base[:, None]
    prob = np.ones_like(qf)
    alias = np.tile(np.arange(width), n_rows)
    lo = np.zeros(n_rows, dtype=np.int64)  # next unused small, in sorted order
    hi = np.full(n_rows, width - 1, dtype=np.int64)  # the current large, in sorted order
    rows = np.arange(n_rows)
    for _ in range(width - 1):
        act = rows[lo < hi]
        if act.size == 0:
            break
        large = order[act, hi[act]]
        became_small = qf[large] < 1.0
        small = np.where(became_small, large, order[act, lo[act]])
        big = np.where(became_small, order[act, np.maximum(hi[act] - 1, 0)], large)
        q_small = qf[small]
        prob[small] = np.clip(q_small, 0.0, 1.0)
        alias[small] = big - base[act]
        qf[big] -= 1.0 - q_small
        lo[act] += ~became_small
        hi[act] -= became_small
    return prob.reshape(n_rows, width), alias.reshape(n_rows, width)


def _residual_terms(preset: str) -> int:
    """Chop-down terms n for Poisson(delta), delta < h = max(c) / 255: P(N > n) <= h**(n + 1) / (n + 1)! < 2**-53."""
    h = max(TABLES.get(preset, TABLES["imagenet"])) / LEVELS
    terms = 1
    while h ** (terms + 1) / math.factorial(terms + 1) >= 2.0**-53:
        terms += 1
    return terms


@constant_table(16)
def _level_pack(preset: str, device: torch.device) -> torch.Tensor:
    """:func:`_build_level_tables` packed in one float64 tensor (one graph constant under ``torch.compile``).

    ``c``, ``start``, ``width`` (5 each), ``prob`` (``P``) and ``counts`` (``2P`` integers, exact in float64).
    """
    t = _build_level_tables(preset, device)
    return torch.cat([t["c"], t["start"], t["width"], t["prob"], t["counts"].to(torch.float64)])


def _level_tables(preset: str, device: torch.device) -> dict[str, Any]:
    """:func:`_build_level_tables`'s tensors, and ``residual_terms`` as an int."""
    if not torch.compiler.is_compiling():
        tables: dict[str, Any] = dict(_build_level_tables(preset, device))
    else:  # the compiler stores one constant per builder call: unpack the packed form
        pack = _level_pack(preset, device)
        p = (pack.numel() - 15) // 3
        tables = {"c": pack[:5], "start": pack[5:10], "width": pack[10:15], "prob": pack[15 : 15 + p]}
        tables["counts"] = pack[15 + p :].to(torch.int32)
    tables["residual_terms"] = _residual_terms(preset)
    return tables


@functools.lru_cache(maxsize=16)
def _build_level_tables(preset: str, device: torch.device) -> dict[str, torch.Tensor]:
    """Alias tables of Poisson(level * c / 255), level = 0..255, for the five severities of ``preset``.

    Severity ``s``'s rows are a segment of width ``K_s`` starting at flat column ``start[s]``; ``prob``
    is flat float64, ``counts`` flat int32 ``(own, alias)`` pairs, ``c``/``start``/``width`` float64 per
    severity (for per-sample broadcasting), ``residual_terms`` the chop-down length for a residual rate
    below ``max(c) / 255``.
    """
    cs = TABLES.get(preset, TABLES["imagenet"])
    probs, counts, starts, widths = [], [], [], []
    start = 0
    for c in cs:
        prob, count, width = _poisson_alias_rows(torch.arange(LEVELS + 1, dtype=torch.float64) * (c / LEVELS))
        probs.append(prob.reshape(-1))
        counts.append(count.reshape(-1))
        starts.append(start)
        widths.append(width)
        start += prob.numel()
    as64 = functools.partial(torch.tensor, dtype=torch.float64, device=device)
    return {
        "prob": torch.cat(probs).to(device),
        "counts": torch.cat(counts).to(device),
        "c": as64(cs),
        "start": as64(starts),
        "width": as64(widths),
    }


@constant_table(32)
def _level_values(preset: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The fast path's gather table: ``clip(count / c, 0, 1)`` in ``dtype`` for every (own, alias) count."""
    tables = _level_tables(preset, device)
    c_per_entry = torch.cat(
        [
            torch.full((int(w) * (LEVELS + 1) * 2,), float(c), dtype=torch.float64, device=device)
            for c, w in zip(tables["c"].tolist(), tables["width"].tolist())
        ]
    )
    # Divide in float64 as NumPy does (``counts / float(c)``), then cast: equal to the counts replay.
    return (tables["counts"].to(torch.float64) / c_per_entry).clamp_(0.0, 1.0).to(dtype)


def _alias_columns(
    level: torch.Tensor, u: torch.Tensor, start: torch.Tensor, width: torch.Tensor, prob: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One alias step: flat (own, alias) pair index ``2 idx + reject``, and ``f``, ``prob``, ``reject``."""
    pos = u * width
    col = pos.floor()
    frac = pos.sub_(col)
    idx = col.add_(level * width).add_(start).long()
    p = prob.take(idx)
    reject = frac >= p
    return idx.mul_(2).add_(reject), frac, p, reject


def _chop_down(delta: torch.Tensor, v: torch.Tensor, terms: int) -> torch.Tensor:
    """Poisson(``delta``) quantile of ``v``: ``#{n : sum_{i <= n} delta**i / i! <= v e**delta}``."""
    threshold = v * torch.exp(delta)
    partial = torch.ones_like(delta)
    power = delta.clone()
    count = (partial <= threshold).to(torch.int32)
    factorial = 1.0
    for n in range(1, terms + 1):
        factorial *= n
        partial.add_(power, alpha=1.0 / factorial)
        count += partial <= threshold
        if n < terms:
            power.mul_(delta)
    return count


def _shot_counts_general(
    t: torch.Tensor, u: torch.Tensor, start: torch.Tensor, width: torch.Tensor, h: torch.Tensor, tables: dict
) -> torch.Tensor:
    """Poisson(``t * h``) counts (int32) for any level ``t`` in [0, 255]: alias draw plus residual."""
    level = t.floor()
    delta = (t - level).to(torch.float64).mul_(h)  # t - floor(t) is exact in t's dtype
    idx2, frac, p, reject = _alias_columns(level, u, start, width, tables["prob"])
    count = tables["counts"].take(idx2)
    # The alias step's leftover randomness, uniform on [0, 1) and independent of the drawn count.
    recycled = torch.where(reject, (frac - p) / (1.0 - p), frac / p)
    return count.add_(_chop_down(delta, recycled, int(tables["residual_terms"])))  # a Python int


def sample_shot_noise_uniforms(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """One float64 uniform field per image; the kernel maps it to Poisson counts.

    Example:
        >>> import torch
        >>> p = sample_shot_noise_uniforms((2, 3, 8, 8), torch.tensor([1, 5]), preset="imagenet",
        ...                                reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> sorted(p), tuple(p["u"].shape), p["u"].dtype
        (['u'], (2, 3, 8, 8), torch.float64)
    """
    return {"u": torch.rand(shape, generator=generator, device=device, dtype=torch.float64)}


@autocast_exempt
def shot_noise(
    x: torch.Tensor,
    severity: torch.Tensor,
    params: dict[str, torch.Tensor],
    *,
    preset: str,
    reference: str,
    general: bool | None = None,
) -> torch.Tensor:
    """``clip(Poisson(x * c) / c, 0, 1)``; ``params`` holds the uniform ``u``, or replayed ``counts``.

    ``general`` forces (``True``) or forbids (``False``) the general path; by default it is taken when
    ``x * 255`` is not integral or ``x`` is not on the CPU. Both give the same output on integral inputs.

    Not differentiable: a Poisson count is piecewise constant in its rate. An input that requires grad is
    accepted and the result has no graph (``requires_grad=False``). A NaN pixel stays NaN; +-inf are
    clamped to 1 and 0 like any out-of-range value.

    Example:
        >>> import torch
        >>> x = torch.full((1, 3, 8, 8), 0.5, dtype=torch.float64)
        >>> counts = torch.full((1, 3, 8, 8), 30.0)
        >>> shot_noise(x, torch.tensor([1]), {"counts": counts}, preset="imagenet", reference="hendrycks").max().item()
        0.5
    """
    if "counts" in params:
        c = severity_table(TABLES, preset, severity, dtype=torch.float64).view(-1, 1, 1, 1)
        # Divide in float64 as NumPy does (``counts / float(c)``), then cast to the working dtype.
        return (params["counts"].to(torch.float64) / c).clamp_(0.0, 1.0).to(x.dtype)
    tables = _level_tables(preset, x.device)
    batch = x.shape[0]
    flat_x = x.detach().reshape(batch, -1)
    flat_u = params["u"].reshape(batch, -1).to(device=x.device, dtype=torch.float64)
    sev = severity.to(x.device).long() - 1
    start, width, c = (tables[key][sev].view(-1, 1) for key in ("start", "width", "c"))
    values = _level_values(preset, x.device, x.dtype)
    # Checking integrality is a host sync: done in eager mode on the CPU only, where it is cheap; accelerators
    # and torch.compile always take the general path, which gives the same output on integral levels.
    check = general is None and host_reads_ok(x.device)
    out = torch.empty_like(flat_x)
    # A Python loop over fixed-size blocks of elements (not over the batch, no sync): keeps the
    # temporaries in cache, and lets each block take the fast path when its levels are integral.
    per_row = flat_x.shape[1]
    rows_per_block = cache_chunk(x.device, _CHUNK, per_row)
    cols_per_block = min(per_row, _CHUNK) if x.device.type == "cpu" else max(per_row, 1)
    for r0 in range(0, batch, rows_per_block):
        rs = slice(r0, r0 + rows_per_block)
        for c0 in range(0, per_row, cols_per_block):
            cs = slice(c0, c0 + cols_per_block)
            t = (flat_x[rs, cs] * LEVELS).clamp_(0.0, float(LEVELS))  # +-inf clamp to the range ends
            u = flat_u[rs, cs]
            # Without the check, ``general is None`` means an accelerator: the general path. A NaN fails the
            # check, so the fast path sees NaN only when forced (general=False).
            use_general = not torch.equal(t, t.round()) if check else general is not False
            nan = None
            if use_general or not check:
                # A NaN level would index the tables out of range: draw for level 0, put the NaN back below.
                nan = t.isnan()
                t.masked_fill_(nan, 0.0)
            if use_general:
                counts = _shot_counts_general(t, u, start[rs], width[rs], c[rs] / LEVELS, tables)
                out[rs, cs] = (counts / c[rs]).clamp_(0.0, 1.0)
            else:
                # Rounding is a no-op on integral levels (it only matters when general=False is forced).
                pair = _alias_columns(t.round_(), u, start[rs], width[rs], tables["prob"])[0]
                out[rs, cs] = values.take(pair)
            if nan is not None:
                out[rs, cs] = out[rs, cs].masked_fill(nan, math.nan)
    return out.view(x.shape)


def poisson_from_uniform(rate: torch.Tensor, u: torch.Tensor, *, step: float = 0.25) -> torch.Tensor:
    """Map one U[0, 1) field to a Poisson(``rate``) field, exactly in law (see the module docstring).

    The rates are split on a lattice of spacing ``step`` (the kernel uses ``c / 255``); tables are built
    per call, so this is for tests and one-off use, not a hot path.

    Args:
        rate: non-negative rates, any shape.
        u: float64 uniforms of the same shape.
        step: lattice spacing; the residual's chop-down is sized for rates below it.

    Returns:
        The counts as float64, same shape.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> u = torch.rand(100000, dtype=torch.float64, generator=g)
        >>> k = poisson_from_uniform(torch.full((100000,), 7.3), u)
        >>> round(k.mean().item(), 1), round(k.var().item(), 1)
        (7.3, 7.3)
    """
    lam = rate.detach().reshape(-1).to(torch.float64)
    if lam.numel() == 0:
        return lam.reshape(rate.shape)
    t = lam / step
    n_rows = int(t.max().floor()) + 1
    prob, counts, width = _poisson_alias_rows(torch.arange(n_rows, dtype=torch.float64) * step)
    terms = 1
    while step ** (terms + 1) / math.factorial(terms + 1) >= 2.0**-53:
        terms += 1
    tables = {"prob": prob.reshape(-1), "counts": counts.reshape(-1), "residual_terms": terms}
    zero = torch.zeros((), dtype=torch.float64)
    k = _shot_counts_general(t, u.reshape(-1).to(torch.float64), zero, zero + width, zero + step, tables)
    return k.to(torch.float64).reshape(rate.shape)


SPEC = register(
    CorruptionSpec(
        name="shot_noise",
        apply=shot_noise,
        sample_params=sample_shot_noise_uniforms,
        per_channel=True,
        differentiable=False,
    )
)
