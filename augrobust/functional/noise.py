"""Gaussian and speckle noise for noise training (GNT, Rusak et al. 2020), with L2 calibration.

Everything works in ``[0, 1]`` image space, before normalisation, as GNT does. Each operation is split
into a sampler (all randomness, one row per sample) and a deterministic kernel:

* :func:`sample_gaussian_noise` / :func:`apply_gaussian_noise`: ``clip(x + sigma * n, 0, 1)`` with
  ``n ~ N(0, I)`` per pixel and channel and ``sigma`` per image; or, in L2 mode, the same Gaussian
  direction rescaled so that the *clipped* perturbation has exactly the L2 norm ``eps``
  (:func:`calibrate_l2`, the clipping-aware rescaling of Rauber & Bethge 2020).
* :func:`sample_speckle_noise` / :func:`apply_speckle_noise`: ``clip(x + x * sigma * n, 0, 1)``.
* :func:`eps_for_sigma`: the L2 budget that matches a sigma for an image shape (0.5 at 3x224x224 -> ~135).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from augrobust._checks import check_probability
from augrobust._tensor import GATE_KEY
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.precision import autocast_exempt

__all__ = [
    "GNT_SIGMAS",
    "SPECKLE_SIGMAS",
    "L2Calibration",
    "Strength",
    "apply_gaussian_noise",
    "apply_speckle_noise",
    "calibrate_l2",
    "eps_for_sigma",
    "gaussian_noise",
    "gaussian_noise_l2",
    "parse_strength",
    "sample_gaussian_noise",
    "sample_speckle_noise",
    "speckle_noise",
]

#: GNT-mult: sigma drawn per image from the five ImageNet-C gaussian_noise severities.
GNT_SIGMAS: tuple[float, ...] = (0.08, 0.12, 0.18, 0.26, 0.38)
#: The five ImageNet-C speckle_noise severities.
SPECKLE_SIGMAS: tuple[float, ...] = (0.15, 0.20, 0.35, 0.45, 0.60)


@dataclass(frozen=True)
class Strength:
    """A per-image strength: a fixed value, a set drawn uniformly, or a uniform ``(min, max)`` range."""

    kind: str  # "fixed" | "choice" | "range"
    values: tuple[float, ...]

    def sample(self, batch: int, *, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        """One value per image, shape ``(batch,)``, float64 (exact for any image dtype), drawn on ``device``."""
        if self.kind == "fixed":
            return torch.full((batch,), self.values[0], dtype=torch.float64, device=device)
        if self.kind == "choice":
            table = torch.tensor(self.values, dtype=torch.float64, device=device)
            idx = torch.randint(len(self.values), (batch,), generator=generator, device=device)
            return table[idx]
        lo, hi = self.values
        u = torch.rand((batch,), generator=generator, device=device, dtype=torch.float64)
        return lo + (hi - lo) * u

    def __str__(self) -> str:
        if self.kind == "fixed":
            return repr(self.values[0])
        if self.kind == "choice":
            return repr(list(self.values))
        return repr(tuple(self.values))


def _as_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AugrobustTypeError(f"{name} values must be numbers, got {value!r} ({type(value).__name__}).")
    number = float(value)
    if not math.isfinite(number):
        raise AugrobustValueError(f"{name} must be finite, got {value!r}.")
    return number


def parse_strength(value: object, name: str, *, positive: bool = False) -> Strength:
    """Parse ``float`` (fixed), ``list`` (a set drawn per image) or 2-``tuple`` (a ``(min, max)`` range).

    Args:
        value: the user's argument.
        name: its name, for error messages.
        positive: require values > 0 (else >= 0).

    Example:
        >>> parse_strength([0.08, 0.38], "sigma").kind
        'choice'
        >>> parse_strength((0.1, 0.5), "sigma").kind
        'range'
    """
    bound = "> 0" if positive else ">= 0"

    def check(v: float) -> float:
        if (v <= 0) if positive else (v < 0):
            raise AugrobustValueError(f"{name} must be {bound}, got {v!r}.")
        return v

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Strength("fixed", (check(_as_number(value, name)),))
    if isinstance(value, tuple):
        if len(value) != 2:
            raise AugrobustValueError(
                f"{name}={value!r} is a tuple of {len(value)}; a tuple means a (min, max) range. "
                f"To draw from a set of values, pass a list: {name}={list(value)!r}."
            )
        lo, hi = (check(_as_number(v, name)) for v in value)
        if lo > hi:
            raise AugrobustValueError(f"{name} range must satisfy min <= max, got {value!r}.")
        return Strength("range", (lo, hi))
    if isinstance(value, (list, Sequence)) and not isinstance(value, (str, bytes)):
        values = tuple(check(_as_number(v, name)) for v in value)
        if not values:
            raise AugrobustValueError(f"{name} must not be an empty list.")
        return Strength("choice", values)
    raise AugrobustTypeError(
        f"{name} must be a number, a list of numbers (a set drawn per image) or a (min, max) tuple, "
        f"got {value!r} ({type(value).__name__})."
    )



def _gate(batch: int, p: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Which samples are transformed: a ``(B,)`` bool tensor (no draw when p is 0 or 1)."""
    if p >= 1.0:
        return torch.ones(batch, dtype=torch.bool, device=device)
    if p <= 0.0:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    return torch.rand((batch,), generator=generator, device=device) < p


def _noise_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype.is_floating_point else torch.float32


def sample_gaussian_noise(
    shape: Sequence[int],
    sigma: float | Sequence[float] | Strength = 0.5,
    *,
    eps: float | Sequence[float] | Strength | None = None,
    p: float = 1.0,
    same_on_batch: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Draw the parameters of :func:`apply_gaussian_noise` for a batch of ``shape = (B, C, H, W)``.

    Args:
        shape: batch shape.
        sigma: noise standard deviation in ``[0, 1]`` units: a float, a list (one drawn per image) or a
            ``(min, max)`` range. Ignored in L2 mode.
        eps: L2 mode: the L2 norm of every clipped perturbation (float, list or range).
        p: probability that a sample is noised (GNT keeps half of each batch clean: ``p=0.5``).
        same_on_batch: one draw for the whole batch.
        generator: optional ``torch.Generator`` on ``device``.
        device: where to draw (the image's device).
        dtype: dtype of the noise field.

    Returns:
        ``{"noise": (B, C, H, W) standard normal, "sigma" or "eps": (B,)}``, plus the gate ``"batch_prob"``
        (kornia's key: ``(B,)`` float, a sample is noised where ``> 0.5``) when ``p < 1``.

    Example:
        >>> params = sample_gaussian_noise((2, 3, 8, 8), sigma=[0.08, 0.38], p=0.5)
        >>> sorted(params)
        ['batch_prob', 'noise', 'sigma']
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise AugrobustValueError(f"shape must be (B, C, H, W), got {shape}.")
    device = torch.device("cpu") if device is None else torch.device(device)
    batch = shape[0]
    draw = 1 if same_on_batch else batch
    p = check_probability(p)
    noise = torch.randn((draw, *shape[1:]), generator=generator, device=device, dtype=_noise_dtype(dtype))
    params: dict[str, torch.Tensor] = {}
    if eps is None:
        strength = sigma if isinstance(sigma, Strength) else parse_strength(sigma, "sigma")
        params["sigma"] = strength.sample(draw, generator=generator, device=device)
    else:
        strength = eps if isinstance(eps, Strength) else parse_strength(eps, "eps", positive=True)
        params["eps"] = strength.sample(draw, generator=generator, device=device)
    if p < 1.0:  # no gate (and no extra pass in the kernel) when every sample is noised
        params[GATE_KEY] = _gate(draw, p, generator, device).to(torch.float32)
    if same_on_batch:
        params = {k: v.expand(batch, *v.shape[1:]) for k, v in params.items()}
    params["noise"] = noise.expand(batch, *shape[1:]) if same_on_batch else noise
    return params


def _check_params(x: torch.Tensor, params: dict[str, torch.Tensor], keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in params]
    if missing:
        raise AugrobustValueError(f"params is missing {missing}; it has {sorted(params)}.")
    noise = params["noise"]
    if noise.shape != x.shape:
        raise AugrobustValueError(
            f"the noise field has shape {tuple(noise.shape)} but the image batch has shape {tuple(x.shape)} "
            "(batch, channel or size mismatch); draw params for this batch or pass a matching image."
        )


def _per_sample(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return value.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


def _gated(x: torch.Tensor, out: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    gate = params.get(GATE_KEY)
    if gate is None:
        return out
    return torch.where((gate.to(x.device) > 0.5).reshape(-1, *([1] * (x.ndim - 1))), out, x)


@autocast_exempt
def apply_gaussian_noise(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Add the drawn noise to a float batch ``x`` in ``[0, 1]`` and clip (sigma or L2 mode).

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> y = apply_gaussian_noise(x, sample_gaussian_noise(x.shape, sigma=0.1))
        >>> bool(y.min() >= 0) and bool(y.max() <= 1)
        True
    """
    if "eps" in params:
        _check_params(x, params, ("noise", "eps"))
        out = calibrate_l2(x, params["noise"], params["eps"]).image
    else:
        _check_params(x, params, ("noise", "sigma"))
        out = (x + _per_sample(params["sigma"], x) * params["noise"].to(x.dtype)).clamp_(0.0, 1.0)
    return _gated(x, out, params)


@autocast_exempt
def gaussian_noise(
    x: torch.Tensor,
    mean: float = 0.0,
    sigma: float | torch.Tensor = 0.1,
    clip: bool = True,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x + mean + sigma * n``, ``n ~ N(0, I)``, clipped to ``[0, 1]``: torchvision's ``gaussian_noise``.

    Same arguments and meaning as ``torchvision.transforms.v2.functional.gaussian_noise`` (and the same
    values from the same global RNG state), plus a per-image ``sigma`` (a ``(B,)`` tensor) and ``generator``.

    Args:
        x: float image or batch ``(..., C, H, W)`` in ``[0, 1]``.
        mean: mean of the noise.
        sigma: standard deviation, a float or one per image (``(B,)``).
        clip: clip the result to ``[0, 1]``.
        generator: optional ``torch.Generator`` on ``x``'s device.

    Example:
        >>> gaussian_noise(torch.full((1, 3, 4, 4), 0.5), sigma=0.0).unique().tolist()
        [0.5]
    """
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=_noise_dtype(x.dtype))
    sig = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sig.ndim:
        sig = sig.reshape(-1, *([1] * (x.ndim - 1)))
    out = x + (mean + noise * sig)
    return out.clamp(0.0, 1.0) if clip else out


@autocast_exempt
def gaussian_noise_l2(
    x: torch.Tensor, eps: float | torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gaussian noise whose clipped perturbation has L2 norm ``eps`` per image (see :func:`calibrate_l2`).

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> y = gaussian_noise_l2(x, 5.0)
        >>> torch.allclose((y - x).flatten(1).norm(dim=1), torch.tensor(5.0), rtol=1e-4)
        True
    """
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=_noise_dtype(x.dtype))
    return calibrate_l2(x, noise, eps).image


class L2Calibration(NamedTuple):
    """Result of :func:`calibrate_l2`.

    Attributes:
        image: ``clip(x + scale * direction, 0, 1)``, the input's dtype.
        scale: ``(B,)`` the factor applied to the direction.
        norm: ``(B,)`` the L2 norm of ``image - x`` actually reached.
        saturated: ``(B,)`` bool, True where ``eps`` cannot be reached inside ``[0, 1]``: every coordinate
            the direction moves is pushed to its bound and ``norm < eps``.
    """

    image: torch.Tensor
    scale: torch.Tensor
    norm: torch.Tensor
    saturated: torch.Tensor


# Newton's method on the concave, piecewise-linear f(t) = sum_i min(t d_i^2, r_i^2): started from the root
# of a strided subsample of the coordinates (cheap, within a few percent), it lands on the final linear piece in
# 2-5 full passes at the GNT budgets; from then on a step returns the same t exactly, so extra steps are
# harmless. The CPU stops when a step moves t by less than _STOP_CHANGE (relative); accelerators run a fixed
# count (no host sync).
_SUBSAMPLE = 4096
_STOP_CHANGE = 1e-6
_SUB_STEPS = 32
_FULL_STEPS = 8
_MAX_CPU_STEPS = 64


class _PiecewiseNorm:
    """The clipped squared norm ``f(t) = sum_i min(t d_i^2, r_i^2)`` of a batch, for Newton's method.

    Holds the columns ``(d^2, r^2)`` as a ``(B, 2, D)`` tensor, the saturation points ``t_i = r_i^2 / d_i^2``
    and reusable mask buffers, so that an iteration allocates nothing image-sized.
    """

    def __init__(self, columns: torch.Tensor, t_sat: torch.Tensor, *, reuse: bool = True) -> None:
        self.columns, self.t_sat = columns, t_sat
        # torch.compile cannot trace ``out=`` into the strided halves of a buffer: it builds fresh masks.
        self._masks = torch.empty_like(columns) if reuse else None

    def split_sums(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """At ``t``: the slope ``A`` (sum of ``d^2`` over unsaturated coordinates) and the offset ``R`` (sum of
        ``r^2`` over saturated ones), each ``(B, 1)``.

        One batched matrix product of the two float masks with the two columns reads each value once (about a
        third of the cost of ``torch.where(...).sum()`` twice on the CPU). ``R`` is summed directly, not as a
        difference, so it keeps full relative precision when small.
        """
        # Comparisons write float masks directly; a nan t_i (d_i = r_i = 0) lands in neither, which is right.
        if self._masks is None:
            masks = torch.stack((self.t_sat > t, self.t_sat <= t), dim=1).to(self.columns.dtype)
        else:
            masks = self._masks
            torch.gt(self.t_sat, t, out=masks[:, 0])
            torch.le(self.t_sat, t, out=masks[:, 1])
        sums = torch.bmm(masks, self.columns.transpose(1, 2))
        return sums[:, 0, 0:1], sums[:, 1, 1:2]

    def newton(self, target: torch.Tensor, t: torch.Tensor, steps: int) -> tuple[torch.Tensor, ...]:
        """Iterate ``t <- (target - R(t)) / A(t)``; returns ``t`` and ``A``, ``R`` at it.

        On the CPU it stops once no row moved by more than ``_STOP_CHANGE`` (relative): Newton's error then
        shrinks superlinearly, so the norm is within ~1e-9 of the target, far inside the 1e-4 promised.
        """
        stop_early = t.device.type == "cpu" and self._masks is not None  # not while torch.compile traces
        tiny = torch.finfo(t.dtype).tiny
        slope = offset = t
        for _ in range(steps):
            slope, offset = self.split_sums(t)
            t_next = (target - offset) / slope.clamp_min(tiny)
            converged = stop_early and bool(((t_next - t).abs() <= _STOP_CHANGE * t_next.abs()).all())
            t = t_next
            if converged:
                break
        return t, slope, offset


@autocast_exempt
def calibrate_l2(
    x: torch.Tensor, direction: torch.Tensor, eps: float | torch.Tensor
) -> L2Calibration:
    """Scale ``direction`` per image so that the *clipped* perturbation has L2 norm ``eps``.

    Finds ``s >= 0`` with ``||clip(x + s * direction, 0, 1) - x||_2 = eps`` per image (clipping-aware
    rescaling, Rauber & Bethge 2020): with room ``r_i`` to the bound in the direction of ``d_i``, the clipped
    squared norm ``f(t = s^2) = sum_i min(t d_i^2, r_i^2)`` is concave and piecewise linear, and the root is
    solved in closed form on its final linear piece (found by Newton's method, no sort). Batched and
    differentiable w.r.t. ``direction`` and ``eps``: the last step is the closed form on the converged piece,
    so autograd sees the exact implicit derivative. Where the budget cannot be reached inside ``[0, 1]``,
    every moved coordinate saturates and ``saturated`` is True.

    Args:
        x: float images in ``[0, 1]``, ``(B, ...)``.
        direction: same shape as ``x``.
        eps: target L2 norm: a float or a ``(B,)`` tensor, > 0.

    Example:
        >>> x = torch.rand(4, 3, 16, 16)
        >>> result = calibrate_l2(x, torch.randn_like(x), 3.0)
        >>> torch.allclose(result.norm, torch.full((4,), 3.0), rtol=1e-4)
        True
    """
    if direction.shape != x.shape:
        raise AugrobustValueError(f"direction shape {tuple(direction.shape)} != image shape {tuple(x.shape)}.")
    if not isinstance(eps, torch.Tensor) and float(eps) <= 0:
        raise AugrobustValueError(f"eps must be > 0, got {eps!r}.")
    batch = x.shape[0]
    work = torch.promote_types(x.dtype, torch.float32)
    if x.numel() == 0:
        zeros = torch.zeros(batch, dtype=work, device=x.device)
        return L2Calibration(x.clone(), zeros, zeros, torch.ones(batch, dtype=torch.bool, device=x.device))
    xf = x.reshape(batch, -1).to(work)
    df = direction.reshape(batch, -1).to(work)
    eps_t = torch.as_tensor(eps, dtype=work, device=x.device)
    eps_t = (eps_t.expand(batch) if eps_t.ndim == 0 else eps_t.to(work)).reshape(batch, 1)

    # Under torch.compile: no ``out=`` into strided views and no host syncs (the accelerator schedule).
    eager = not torch.compiler.is_compiling()
    host = x.device.type == "cpu" and eager
    with torch.no_grad():
        target = eps_t.detach() ** 2
        # Distance to the bound the direction points at: 1 - x where d > 0, x where d < 0 (0.5 + (0.5 - x)
        # * sign(d); where d = 0 the value is irrelevant, d^2 = 0). Plain arithmetic beats torch.where here.
        room = torch.addcmul(torch.full_like(xf[:1], 0.5), 0.5 - xf, torch.sign(df))
        if eager:
            columns = torch.empty((batch, 2, xf.shape[1]), dtype=work, device=x.device)
            torch.mul(df, df, out=columns[:, 0])
            torch.mul(room, room, out=columns[:, 1])
        else:
            columns = torch.stack((df * df, room * room), dim=1)
        d2, r2 = columns[:, 0], columns[:, 1]
        del room
        t_sat = r2 / d2  # d == 0: inf (never saturates, adds 0) or nan (never counted, adds 0)
        f = _PiecewiseNorm(columns, t_sat, reuse=eager)
        # Only coordinates the direction moves (finite t_sat) can add to the norm.
        _, reachable = f.split_sums(torch.full_like(target, torch.finfo(work).max))
        saturated = reachable < target
        size = xf.shape[1]
        stride = max(1, size // _SUBSAMPLE)
        t = torch.zeros_like(target)
        if stride > 1:
            sub = _PiecewiseNorm(columns[:, :, ::stride].contiguous(), t_sat[:, ::stride].contiguous(), reuse=eager)
            t, _, _ = sub.newton(target * (sub.t_sat.shape[1] / size), t, _SUB_STEPS)
        steps = _MAX_CPU_STEPS if host else _FULL_STEPS
        t, slope, offset = f.newton(target, t, steps)
        if not host or bool(saturated.any()):  # only saturated rows need the largest t_i
            t_max = torch.nan_to_num(t_sat, nan=0.0, posinf=0.0).amax(1, keepdim=True)
        else:
            t_max = t
        needs_grad = df.requires_grad or eps_t.requires_grad
        active = (t_sat > t) if needs_grad else None
        del f, t_sat, columns

    if needs_grad:  # the closed form on the converged piece, with gradients
        slope = (active.to(work) * df * df).sum(1, keepdim=True)
        t = (eps_t**2 - offset) / slope.clamp_min(torch.finfo(work).tiny)
    t = torch.where(saturated, t_max, t).clamp_min(0.0)
    scale = t.sqrt()
    out = (xf + scale * df).clamp_(0.0, 1.0) if not df.requires_grad else (xf + scale * df).clamp(0.0, 1.0)
    # f(t) = t * A + R on the converged piece: the norm reached, without another pass over the image.
    norm = torch.where(saturated, reachable, t.detach() * slope.detach() + offset).clamp_min(0.0).sqrt()
    image = out.reshape(x.shape).to(x.dtype)
    return L2Calibration(image, scale.reshape(batch), norm.reshape(batch), saturated.reshape(batch))


def eps_for_sigma(
    sigma: float, shape: Sequence[int], *, image: torch.Tensor | None = None
) -> float:
    """The L2 budget matching Gaussian noise of ``sigma`` on images of ``shape`` (``(C, H, W)``).

    Returns ``sqrt(D * E[d^2])`` where ``d = clip(v + n, 0, 1) - v`` is the clipped perturbation of one
    coordinate, ``n ~ N(0, sigma^2)``, and ``E`` averages over pixel values ``v``: those of ``image`` if
    given, else uniform on ``[0, 1]`` (the expectation is computed exactly per value, not sampled). The
    norm of a clipped noise sample concentrates tightly around this value for large ``D``.

    Example:
        >>> round(eps_for_sigma(0.5, (3, 224, 224)))
        135
    """
    if sigma < 0:
        raise AugrobustValueError(f"sigma must be >= 0, got {sigma}.")
    dims = math.prod(int(s) for s in shape[-3:])
    if sigma == 0:
        return 0.0
    if image is not None:
        values = image.detach().reshape(-1).to(torch.float64)
        if image.dtype == torch.uint8:
            values = values / 255.0
    else:  # midpoint rule on [0, 1]: exact enough (the integrand is smooth)
        n = 4096
        values = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    lo = -values / sigma  # standardised distance to 0
    hi = (1.0 - values) / sigma  # standardised distance to 1
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    cdf_lo, cdf_hi = normal.cdf(lo), normal.cdf(hi)
    pdf_lo, pdf_hi = normal.log_prob(lo).exp(), normal.log_prob(hi).exp()
    inside = (cdf_hi - cdf_lo) - (hi * pdf_hi - lo * pdf_lo)  # E[z^2 1{lo<z<hi}]
    second_moment = sigma**2 * inside + values**2 * cdf_lo + (1.0 - values) ** 2 * (1.0 - cdf_hi)
    return float(math.sqrt(dims * second_moment.mean().item()))


def sample_speckle_noise(
    shape: Sequence[int],
    sigma: float | Sequence[float] | Strength = list(SPECKLE_SIGMAS),
    *,
    p: float = 1.0,
    same_on_batch: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Draw the parameters of :func:`apply_speckle_noise` (same layout as :func:`sample_gaussian_noise`).

    Example:
        >>> sample_speckle_noise((2, 3, 8, 8))["sigma"].shape
        torch.Size([2])
    """
    return sample_gaussian_noise(
        shape, sigma, p=p, same_on_batch=same_on_batch, generator=generator, device=device, dtype=dtype
    )


@autocast_exempt
def apply_speckle_noise(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """``clip(x + x * sigma * n, 0, 1)``: noise proportional to the intensity (ImageNet-C speckle).

    Example:
        >>> x = torch.zeros(1, 3, 4, 4)
        >>> bool((apply_speckle_noise(x, sample_speckle_noise(x.shape)) == 0).all())
        True
    """
    _check_params(x, params, ("noise", "sigma"))
    out = (x + x * (_per_sample(params["sigma"], x) * params["noise"].to(x.dtype))).clamp_(0.0, 1.0)
    return _gated(x, out, params)


@autocast_exempt
def speckle_noise(
    x: torch.Tensor, sigma: float | torch.Tensor = 0.35, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``clip(x + x * sigma * n, 0, 1)`` on a float batch in ``[0, 1]``.

    Example:
        >>> speckle_noise(torch.ones(1, 3, 4, 4), 0.0).unique().tolist()
        [1.0]
    """
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=_noise_dtype(x.dtype))
    sig = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sig.ndim:
        sig = sig.reshape(-1, *([1] * (x.ndim - 1)))
    return (x + x * sig * noise).clamp_(0.0, 1.0)
