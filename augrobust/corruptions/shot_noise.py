"""shot_noise: Poisson photon noise, ``clip(Poisson(x * c) / c, 0, 1)`` per pixel and channel.

Reference: ``imagecorruptions.corruptions.shot_noise``: ``np.random.poisson(x * c) / float(c)`` on the
HWC float64 image in ``[0, 1]``, then clipped (no gamma linearisation). The original dataset scripts use
the same formula with per-preset photon counts ``c`` (imagenet_c.md 3.3, 4.2-4.4).

The sampler is an exact inverse-CDF sampler that is faster than ``torch.poisson`` and NumPy on the CPU.
A rate ``lam = x * c`` (any float, not only multiples of ``c / 255``) is split as ``lam = lam_g + delta``
with ``lam_g`` on a lattice of step :data:`LATTICE_STEP` and ``0 <= delta < LATTICE_STEP``; since the sum of
independent Poisson variables is Poisson, ``Poisson(lam) = Poisson(lam_g) + Poisson(delta)`` in law.

* ``Poisson(lam_g)`` is the quantile of a first uniform ``u`` in a precomputed float64 CDF table of the
  lattice rates, found by a fixed-depth branch-free binary search (one gather per level).
* ``Poisson(delta)`` is the quantile of a second uniform by chop-down summation of its CDF; with
  ``delta < 1/4`` the first :data:`_RESIDUAL_TERMS` terms leave a tail below ``2**-53``.

Both uniforms are float64, so the sampler's law equals the Poisson law up to the ``2**-53`` resolution of
the uniforms and the float64 rounding of the CDF (about ``1e-16`` per atom; the tails cut off by the table
hold less than ``1e-25`` of the mass). ``params`` may instead carry integer Poisson ``counts`` (e.g. the
oracle's own ``np.random.poisson`` draws, to replay NumPy exactly); the kernel then only scales and clips.
"""

from __future__ import annotations

import functools
import math

import torch

from augrobust.corruptions._spec import CorruptionSpec, register, severity_table

__all__ = [
    "LATTICE_STEP",
    "TABLES",
    "poisson_quantile",
    "sample_shot_noise_uniforms",
    "shot_noise",
]

#: Photons per unit intensity ``c`` per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": (60, 25, 12, 5, 3),
    "inception": (50, 20, 10, 5, 3),
    "tinyimagenet": (250, 100, 50, 30, 15),
    "cifar": (500, 250, 100, 75, 50),
}

#: Spacing of the lattice of tabulated rates; the residual rate ``delta`` is below it.
LATTICE_STEP = 0.25
# Chop-down terms for Poisson(delta), delta < 1/4: P(N > 12) < 0.25**13 / 13! < 3e-18 < 2**-53.
_RESIDUAL_TERMS = 12
# Elements per chunk of the quantile search: keeps the ~60 elementwise temporaries in cache.
_CHUNK = 1 << 14


@functools.lru_cache(maxsize=16)
def _lattice_cdf_table(lam_max: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
    """CDF windows of Poisson(r * LATTICE_STEP) for r = 0..R, R * LATTICE_STEP >= lam_max.

    Returns ``(cdf, kmin, levels)``: ``cdf`` is ``(R + 1) * W`` float64 (flattened rows of width
    ``W = 2**levels``), row ``r`` holding ``F(kmin[r] + j; lam_r)`` for ``j < W``, with the last atom and
    the padding set to exactly 1 (the upper tail beyond ``lam + 12 sqrt(lam) + 20`` is below 1e-25);
    ``kmin[r] = max(0, floor(lam_r - 11 sqrt(lam_r) - 5))`` (lower tail below 1e-25).
    """
    rows = math.ceil(lam_max / LATTICE_STEP) + 1
    lam = torch.arange(rows, dtype=torch.float64) * LATTICE_STEP
    kmin = (lam - 11.0 * lam.sqrt() - 5.0).floor().clamp_(min=0.0)
    kmax = (lam + 12.0 * lam.sqrt() + 20.0).ceil()
    levels = max(1, math.ceil(math.log2(float((kmax - kmin).max()) + 1.0)))
    width = 1 << levels
    k = torch.arange(int(kmax.max()) + 1, dtype=torch.float64)
    # Full CDF from k = 0 in float64 (a cumulative sum keeps the lower-tail mass exactly), then windows.
    log_pmf = torch.special.xlogy(k, lam[:, None]) - lam[:, None] - torch.lgamma(k + 1.0)
    cdf_full = log_pmf.exp_().cumsum_(dim=1)
    col = kmin[:, None] + torch.arange(width, dtype=torch.float64)
    cdf = cdf_full.gather(1, col.clamp(max=float(k[-1])).long())
    cdf[col >= kmax[:, None]] = 1.0
    return cdf.reshape(-1).to(device), kmin.long().to(device), levels


def _poisson_quantile_chunk(
    lam: torch.Tensor, u_lattice: torch.Tensor, u_residual: torch.Tensor, table: tuple[torch.Tensor, torch.Tensor, int]
) -> torch.Tensor:
    cdf, kmin, levels = table
    rows = kmin.numel()
    row = torch.floor(lam * (1.0 / LATTICE_STEP)).clamp_(0, rows - 1)
    delta = (lam - row * LATTICE_STEP).clamp_(min=0.0)
    row = row.long()
    # Poisson(lam_g): count the table entries <= u (branch-free binary search, one gather per level);
    # ``pos`` is the flat index of the row start plus the count so far.
    base = row * (1 << levels)
    pos = base.clone()
    for level in reversed(range(levels)):
        step = 1 << level
        probe = cdf.index_select(0, pos + (step - 1))
        pos.add_(probe <= u_lattice, alpha=step)
    k = pos.sub_(base).add_(kmin.index_select(0, row))
    # Poisson(delta): chop-down summation, scaled by e^delta: N = #{j : sum_{i<=j} delta^i / i! <= u e^delta}.
    threshold = u_residual * torch.exp(delta)
    partial = torch.ones_like(delta)
    power = delta.clone()
    k += partial <= threshold
    factorial = 1.0
    for j in range(1, _RESIDUAL_TERMS + 1):
        factorial *= j
        partial.add_(power, alpha=1.0 / factorial)
        k += partial <= threshold
        if j < _RESIDUAL_TERMS:
            power.mul_(delta)
    return k.to(torch.float64)


def poisson_quantile(rate: torch.Tensor, u_lattice: torch.Tensor, u_residual: torch.Tensor) -> torch.Tensor:
    """Map two independent U[0, 1) fields to a Poisson(``rate``) field, exactly in law.

    Args:
        rate: non-negative rates, any shape, any float dtype.
        u_lattice: uniforms of the same shape (float64 for the full ``2**-53`` resolution).
        u_residual: a second, independent uniform field of the same shape.

    Returns:
        The Poisson counts as float64, same shape.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> u = torch.rand(2, 100000, dtype=torch.float64, generator=g)
        >>> k = poisson_quantile(torch.full((100000,), 7.3), u[0], u[1])
        >>> round(k.mean().item(), 1), round(k.var().item(), 1)
        (7.3, 7.3)
    """
    shape = rate.shape
    lam = rate.detach().reshape(-1).to(torch.float64)
    if lam.numel() == 0:
        return lam.reshape(shape)
    # Table sized by the rates' upper bound; shot_noise passes the preset's largest c, so no sync there.
    table = _lattice_cdf_table(float(lam.max()), lam.device)
    return _quantile_with_table(lam, u_lattice, u_residual, table).reshape(shape)


def _quantile_with_table(
    lam: torch.Tensor, u_lattice: torch.Tensor, u_residual: torch.Tensor, table: tuple[torch.Tensor, torch.Tensor, int]
) -> torch.Tensor:
    u1 = u_lattice.reshape(-1).to(torch.float64)
    u2 = u_residual.reshape(-1).to(torch.float64)
    out = torch.empty_like(lam)
    # A Python loop over fixed-size chunks of elements (not over the batch): cache-sized temporaries.
    for start in range(0, lam.numel(), _CHUNK):
        sl = slice(start, start + _CHUNK)
        out[sl] = _poisson_quantile_chunk(lam[sl], u1[sl], u2[sl], table)
    return out


def sample_shot_noise_uniforms(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Two independent float64 uniform fields per image; the kernel maps them to Poisson counts.

    Example:
        >>> import torch
        >>> p = sample_shot_noise_uniforms((2, 3, 8, 8), torch.tensor([1, 5]), preset="imagenet",
        ...                                reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> sorted(p), tuple(p["u_lattice"].shape)
        (['u_lattice', 'u_residual'], (2, 3, 8, 8))
    """
    u = torch.rand((2, *shape), generator=generator, device=device, dtype=torch.float64)
    return {"u_lattice": u[0], "u_residual": u[1]}


def shot_noise(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """``clip(Poisson(x * c) / c, 0, 1)``; ``params`` holds the two uniforms, or replayed ``counts``.

    Example:
        >>> import torch
        >>> x = torch.full((1, 3, 8, 8), 0.5, dtype=torch.float64)
        >>> counts = torch.full((1, 3, 8, 8), 30.0)
        >>> shot_noise(x, torch.tensor([1]), {"counts": counts}, preset="imagenet", reference="hendrycks").max().item()
        0.5
    """
    c = severity_table(TABLES, preset, severity, dtype=torch.float64).view(-1, 1, 1, 1)
    if "counts" in params:
        counts = params["counts"].to(torch.float64)
    else:
        table = _lattice_cdf_table(float(max(TABLES.get(preset, TABLES["imagenet"]))), x.device)
        lam = (x.detach().to(torch.float64) * c).reshape(-1)
        counts = _quantile_with_table(lam, params["u_lattice"], params["u_residual"], table).view(x.shape)
    # Divide in float64 as NumPy does (``counts / float(c)``), then cast to the working dtype.
    return (counts / c).clamp_(0.0, 1.0).to(x.dtype)


SPEC = register(
    CorruptionSpec(name="shot_noise", apply=shot_noise, sample_params=sample_shot_noise_uniforms, per_channel=True)
)
