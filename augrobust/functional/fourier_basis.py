"""Fourier-basis noise for AFA (Auxiliary Fourier-basis Augmentation, Vaish et al., CVPR 2024).

Every image and every channel gets one planar wave

    W(u, v) = sin(2 pi (k / S) (u cos theta + v sin theta) - pi / 4)

L2-normalised over the ``H x W`` plane and scaled by ``sqrt(H W) / 32``, so that its per-pixel RMS is
``1/32`` per unit of strength at every image size; the image becomes ``clamp(x + sigma * W, 0, 1)`` in
``[0, 1]`` pixel space, before normalisation. Per image and channel, independently:

* frequency ``k ~ U{1, ..., S}`` (integer cycles across the image; ``S = max(H, W)``, the image size of the
  square crops the reference trains on). Frequencies above ``S/2`` alias onto lower ones, as in the
  reference; ``frequencies="nyquist"`` draws ``k ~ U{1, ..., S // 2}`` instead;
* orientation ``theta = -pi t`` with ``t`` uniform on ``linspace(0, 1, granularity)`` (448 in the paper's
  configs), i.e. one of ``granularity`` angles in ``[-pi, 0]``;
* strength ``sigma ~ Exponential(mean_strength) + min_strength``.

Grid and non-square images. The reference builds ``u, v`` (``u`` along the rows) from
``linspace(-S/2, S/2, S)`` on square ``S x S`` images, so the grid spacing is ``S / (S - 1)`` and the waves
sit slightly off the DFT bins; that is the default here (``grid="reference"``) and it is reproduced exactly
at square sizes. For ``H != W`` the rule is: rows use ``linspace(-H/2, H/2, H)``, columns
``linspace(-W/2, W/2, W)`` (each axis its own reference grid, about one unit per pixel), the frequency is
``k / S`` cycles per unit with ``S = max(H, W)`` (so the wave is isotropic in pixel space and ``k`` counts
cycles across the longer side) and the scale is ``sqrt(H W) / 32`` (RMS ``1/32`` per unit strength, the
reference's invariant: ``S / 32`` at ``H = W = S``). ``grid="pixel"`` uses unit spacing
(``arange(n) - (n - 1) / 2``): with ``frequencies="nyquist"`` the axis-aligned waves then sit on DFT bins.

How it is computed. ``sin(A_i + B_j) = sin A_i cos B_j + cos A_i sin B_j`` makes every wave a rank-2 outer
product, so only ``H + W`` sines and cosines per channel are evaluated (in float64, more precise than the
reference's float32 phases), the L2 norm follows in closed form from sums over ``H`` and ``W``, and the
whole batch is one ``baddbmm`` (``x + rows @ cols``) plus an in-place clamp: two passes over the image, no
per-pixel transcendental, no grid cache needed (the grid is ``H + W`` numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from augrobust._checks import check_probability
from augrobust._tensor import GATE_KEY
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.precision import autocast_exempt

__all__ = [
    "AFA_GRANULARITY",
    "apply_fourier_noise",
    "fourier_basis_waves",
    "fourier_noise",
    "sample_fourier_noise",
]

#: The orientation grid size of the paper's training configs (the reference constructor defaults to 64).
AFA_GRANULARITY = 448
_GRIDS = ("reference", "pixel")
_FREQUENCIES = ("reference", "nyquist")
# The reference scales the unit-L2 wave by S / 32 on S x S images: per-pixel RMS 1 / 32 per unit strength.
_RMS = 1.0 / 32.0


def _check_number(value: object, name: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AugrobustTypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    number = float(value)
    if not math.isfinite(number) or number < minimum:
        raise AugrobustValueError(f"{name} must be a finite number >= {minimum:g}, got {value!r}.")
    return number


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise AugrobustValueError(f"{name} must be one of {list(choices)}, got {value!r}.")
    return str(value)


def _check_granularity(granularity: object) -> int:
    if isinstance(granularity, bool) or not isinstance(granularity, int) or granularity < 1:
        raise AugrobustValueError(
            f"granularity (the number of orientations in [-pi, 0]) must be an int >= 1, got {granularity!r}; "
            f"the paper uses {AFA_GRANULARITY}."
        )
    return granularity


def _param_dtype(device: torch.device) -> torch.dtype:
    # Angles and strengths in float64 (cheap: one per channel); MPS has no float64.
    return torch.float32 if device.type == "mps" else torch.float64


def _max_frequency(height: int, width: int, frequencies: str = "reference") -> int:
    """The largest frequency drawn for an ``H x W`` image: ``S = max(H, W)``, or ``S // 2`` ("nyquist")."""
    size = max(int(height), int(width))
    return size if frequencies == "reference" else max(1, size // 2)


def _axis(n: int, grid: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if grid == "reference":
        return torch.linspace(-n / 2, n / 2, n, dtype=dtype, device=device)
    return torch.arange(n, dtype=dtype, device=device) - (n - 1) / 2


def _wave_factors(
    frequency: torch.Tensor,
    orientation: torch.Tensor,
    height: int,
    width: int,
    *,
    grid: str,
    gain: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows (..., H, 2)`` and ``cols (..., 2, W)`` with ``rows @ cols = gain * W`` (the scaled unit wave).

    Computed in float64 (float32 on MPS): ``A_i = 2 pi (k/S) cos(theta) u_i - pi/4`` and
    ``B_j = 2 pi (k/S) sin(theta) v_j``; the wave is ``sin A_i cos B_j + cos A_i sin B_j`` and its squared
    L2 norm ``sum(sA^2) sum(cB^2) + 2 sum(sA cA) sum(sB cB) + sum(cA^2) sum(sB^2)``.
    """
    device = frequency.device
    work = _param_dtype(device)
    size = max(height, width)
    omega = (2.0 * math.pi / size) * frequency.to(work)
    theta = orientation.to(device=device, dtype=work)
    a = (omega * torch.cos(theta)).unsqueeze(-1)  # (..., 1)
    b = (omega * torch.sin(theta)).unsqueeze(-1)
    phase_rows = a * _axis(height, grid, work, device) - math.pi / 4  # (..., H)
    phase_cols = b * _axis(width, grid, work, device)  # (..., W)
    sin_a, cos_a = torch.sin(phase_rows), torch.cos(phase_rows)
    sin_b, cos_b = torch.sin(phase_cols), torch.cos(phase_cols)
    norm_sq = (
        (sin_a * sin_a).sum(-1) * (cos_b * cos_b).sum(-1)
        + 2.0 * (sin_a * cos_a).sum(-1) * (sin_b * cos_b).sum(-1)
        + (cos_a * cos_a).sum(-1) * (sin_b * sin_b).sum(-1)
    )
    scale = (_RMS * math.sqrt(height * width)) / norm_sq.clamp_min(torch.finfo(work).tiny).sqrt()
    if gain is not None:
        scale = scale * gain.to(device=device, dtype=work)
    scale = scale.unsqueeze(-1)
    rows = torch.stack((sin_a * scale, cos_a * scale), dim=-1)  # (..., H, 2)
    cols = torch.stack((cos_b, sin_b), dim=-2)  # (..., 2, W)
    return rows, cols


def fourier_basis_waves(
    frequency: torch.Tensor | int,
    orientation: torch.Tensor | float,
    height: int,
    width: int | None = None,
    *,
    grid: str = "reference",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The AFA planar waves ``W`` (unit strength) for given frequencies and orientations.

    ``W = sqrt(H W) / 32 * w / ||w||_2`` with ``w(u, v) = sin(2 pi (k / S) (u cos theta + v sin theta) - pi/4)``
    on the grid described in the module docstring (``S = max(H, W)``); per-pixel RMS exactly ``1/32``.

    Args:
        frequency: integer cycles ``k`` (any shape, broadcast against ``orientation``).
        orientation: angle ``theta`` in radians (AFA draws it from ``-pi * linspace(0, 1, granularity)``).
        height: image height ``H``.
        width: image width ``W`` (default: ``height``).
        grid: ``"reference"`` (``linspace(-n/2, n/2, n)`` per axis, as the reference) or ``"pixel"``.
        dtype: dtype of the result.

    Returns:
        ``(*batch_shape, H, W)`` where ``batch_shape`` is the broadcast shape of the two arguments.

    Example:
        >>> w = fourier_basis_waves(torch.tensor([1, 5]), torch.tensor([0.0, -1.0]), 32)
        >>> w.shape, round(float(w.pow(2).mean(dim=(-2, -1)).sqrt()[1]) * 32, 6)
        (torch.Size([2, 32, 32]), 1.0)
    """
    width = height if width is None else width
    for name, n in (("height", height), ("width", width)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise AugrobustValueError(f"{name} must be an int >= 1, got {n!r}.")
    grid = _check_choice(grid, "grid", _GRIDS)
    freq = torch.as_tensor(frequency)
    orient = torch.as_tensor(orientation, device=freq.device)
    freq, orient = torch.broadcast_tensors(freq, orient)
    rows, cols = _wave_factors(freq, orient, height, width, grid=grid)
    return torch.matmul(rows, cols).to(dtype)


def sample_fourier_noise(
    shape: Sequence[int],
    *,
    mean_strength: float = 10.0,
    min_strength: float = 0.0,
    granularity: int = AFA_GRANULARITY,
    frequencies: str = "reference",
    p: float = 1.0,
    same_on_batch: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Draw the parameters of :func:`apply_fourier_noise` for a batch of ``shape = (B, C, H, W)``.

    Per image and per channel (the reference's order of draws): frequency ``k ~ U{1..S}``
    (``S = max(H, W)``; ``U{1..S//2}`` with ``frequencies="nyquist"``), orientation ``theta = -pi t`` with
    ``t ~ U(linspace(0, 1, granularity))``, strength ``sigma ~ Exponential(mean_strength) + min_strength``.

    Args:
        shape: batch shape ``(B, C, H, W)``.
        mean_strength: mean of the exponential part of the strength (>= 0; 0 gives ``sigma = min_strength``).
        min_strength: offset added to every strength (>= 0).
        granularity: number of orientations on ``[-pi, 0]`` (448 in the paper's configs).
        frequencies: ``"reference"`` (``1..S``, aliasing above ``S/2`` included) or ``"nyquist"``.
        p: probability that a sample is noised (adds the ``(B,)`` gate ``"batch_prob"`` when ``< 1``).
        same_on_batch: one draw for the whole batch.
        generator: optional ``torch.Generator`` on ``device``.
        device: where to draw (the image's device).

    Returns:
        ``{"frequency": (B, C) int64, "orientation": (B, C) radians, "strength": (B, C)}`` (float64, float32 on
        MPS), plus the gate ``"batch_prob"`` (kornia's key: float, noised where ``> 0.5``) when ``p < 1``.

    Example:
        >>> params = sample_fourier_noise((2, 3, 32, 32), generator=torch.Generator().manual_seed(0))
        >>> sorted(params), tuple(params["frequency"].shape)
        (['frequency', 'orientation', 'strength'], (2, 3))
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise AugrobustValueError(f"shape must be (B, C, H, W), got {shape}.")
    mean_strength = _check_number(mean_strength, "mean_strength")
    min_strength = _check_number(min_strength, "min_strength")
    granularity = _check_granularity(granularity)
    frequencies = _check_choice(frequencies, "frequencies", _FREQUENCIES)
    p = check_probability(p)
    device = torch.device("cpu") if device is None else torch.device(device)
    work = _param_dtype(device)
    batch, channels, height, width = shape
    draw = (1 if same_on_batch else batch, channels)
    top = _max_frequency(height, width, frequencies) if height and width else 1
    frequency = torch.randint(0, top, draw, generator=generator, device=device) + 1
    step = torch.randint(0, granularity, draw, generator=generator, device=device)
    # theta = -pi * t, t on linspace(0, 1, granularity): exactly the reference's grid of angles.
    orientation = step.to(work) * (-math.pi / max(granularity - 1, 1))
    strength = torch.full(draw, min_strength, dtype=work, device=device)
    if mean_strength > 0:
        # Drawn in float32 as the reference does, so a shared seed gives the reference's own strengths.
        exp = torch.empty(draw, device=device).exponential_(1.0 / mean_strength, generator=generator)
        strength = strength + exp.to(work)
    params = {"frequency": frequency, "orientation": orientation, "strength": strength}
    if p < 1.0:
        gate = torch.rand((draw[0],), generator=generator, device=device) < p
        params[GATE_KEY] = gate.to(torch.float32)
    if same_on_batch:
        params = {k: v.expand(batch, *v.shape[1:]) for k, v in params.items()}
    return params


def _check_params(x: torch.Tensor, params: dict[str, torch.Tensor]) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise AugrobustTypeError(
            "apply_fourier_noise needs a float (B, C, H, W) batch in [0, 1], got "
            + (f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__)
            + "; convert uint8 with x.float() / 255 and add a batch dimension with x[None]."
        )
    missing = [k for k in ("frequency", "orientation", "strength") if k not in params]
    if missing:
        raise AugrobustValueError(f"params is missing {missing}; it has {sorted(params)}.")
    for key in ("frequency", "orientation", "strength"):
        if tuple(params[key].shape) != tuple(x.shape[:2]):
            raise AugrobustValueError(
                f"params[{key!r}] has shape {tuple(params[key].shape)} but the batch needs (B, C) = "
                f"{tuple(x.shape[:2])}; draw params for this batch (one value per image and channel)."
            )


@autocast_exempt
def apply_fourier_noise(
    x: torch.Tensor, params: dict[str, torch.Tensor], *, grid: str = "reference"
) -> torch.Tensor:
    """``clamp(x + sigma * W_{k, theta}, 0, 1)`` per image and channel, on a float batch in ``[0, 1]``.

    Args:
        x: float ``(B, C, H, W)`` in ``[0, 1]``.
        params: from :func:`sample_fourier_noise` (``frequency``, ``orientation``, ``strength``, each
            ``(B, C)``; optional ``apply`` ``(B,)`` gate).
        grid: ``"reference"`` or ``"pixel"`` (see the module docstring).

    Example:
        >>> x = torch.full((2, 3, 16, 16), 0.5)
        >>> y = apply_fourier_noise(x, sample_fourier_noise(x.shape, mean_strength=1.0))
        >>> y.shape, bool(y.min() >= 0) and bool(y.max() <= 1)
        (torch.Size([2, 3, 16, 16]), True)
    """
    _check_params(x, params)
    grid = _check_choice(grid, "grid", _GRIDS)
    batch, channels, height, width = x.shape
    # float16 / bfloat16 compute in float32 (the factors are small; the sum needs the mantissa).
    work = torch.promote_types(x.dtype, torch.float32)
    rows, cols = _wave_factors(
        params["frequency"].to(x.device), params["orientation"].to(x.device), height, width,
        grid=grid, gain=params["strength"].to(x.device),
    )  # fmt: skip
    flat = x.reshape(batch * channels, height, width).to(work)
    out = torch.baddbmm(flat, rows.reshape(-1, height, 2).to(work), cols.reshape(-1, 2, width).to(work))
    out = out.clamp_(0.0, 1.0).reshape(x.shape).to(x.dtype)
    gate = params.get(GATE_KEY)
    if gate is not None:
        out = torch.where((gate.to(x.device) > 0.5).reshape(-1, 1, 1, 1), out, x)
    return out


@autocast_exempt
def fourier_noise(
    x: torch.Tensor,
    *,
    mean_strength: float = 10.0,
    min_strength: float = 0.0,
    granularity: int = AFA_GRANULARITY,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample and apply AFA's Fourier-basis noise on a float batch ``(B, C, H, W)`` in one call.

    Example:
        >>> fourier_noise(torch.rand(4, 3, 32, 32), mean_strength=5.0).shape
        torch.Size([4, 3, 32, 32])
    """
    params = sample_fourier_noise(
        x.shape, mean_strength=mean_strength, min_strength=min_strength, granularity=granularity,
        generator=generator, device=x.device,
    )  # fmt: skip
    return apply_fourier_noise(x, params)
