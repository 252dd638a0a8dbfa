"""Separable Gaussian filtering with edge replication, matching ``skimage.filters.gaussian``.

``skimage.filters.gaussian(img, sigma, mode='nearest', truncate=4.0, channel_axis=-1)`` runs
``scipy.ndimage.gaussian_filter``: one 1-D correlation per spatial axis (rows first, then columns) with
the kernel ``exp(-x^2 / (2 sigma^2))`` on ``x = -r..r``, ``r = int(truncate * sigma + 0.5)``, normalised
to sum 1, and out-of-image samples replaced by the nearest edge pixel. Channels are filtered
independently.

Two formulations of the same filter:

* ``"matmul"``: each 1-D pass is a product with a banded ``(N, N)`` matrix whose first and last columns
  absorb the replicated edge taps. Matmul is several times faster than a (depthwise) ``conv2d`` on CPU
  and agrees with SciPy to ~1e-16.
* ``"direct"``: the taps are accumulated in SciPy's own order (centre tap first, then symmetric pairs
  from the outermost inwards), which reproduces SciPy's float64 result bit for bit. Slower; chosen
  automatically for float64 input so that the float64 path of a corruption can match the reference
  exactly (a 1-ulp difference flips ``floor(255 * y)`` on flat image regions).

Kernel weights are computed with NumPy on the host, exactly as SciPy does (``torch.exp`` differs from
NumPy's ``exp`` in the last bit), from Python floats. :func:`gaussian_blur_nearest` therefore reads the
``(B,)`` sigmas back to the host once (one documented sync); callers with a fixed table of sigmas
(corruption severities) build the kernels once with :func:`gaussian_kernels` and call
:func:`separable_filter_nearest` with gathered rows, without any sync.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.precision import autocast_exempt

__all__ = [
    "correlate1d_nearest",
    "fft_size",
    "banded_nearest_matrices",
    "gaussian_blur_nearest",
    "gaussian_kernel1d",
    "gaussian_kernels",
    "gaussian_radius",
    "filter_with_banded_matrices",
    "separable_filter_nearest",
]


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """Half-width of SciPy's Gaussian kernel: ``int(truncate * sigma + 0.5)``.

    Example:
        >>> gaussian_radius(1.5), gaussian_radius(6.0)
        (6, 24)
    """
    return int(float(truncate) * float(sigma) + 0.5)


@functools.lru_cache(maxsize=256)
def _kernel_numpy(sigma: float, truncate: float) -> np.ndarray:
    radius = gaussian_radius(sigma, truncate)
    if sigma <= 0.0:
        return np.ones(1)
    # Same expressions, same order as scipy.ndimage._filters._gaussian_kernel1d (order 0).
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


def _check_sigma_value(sigma: float) -> float:
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0.0:
        raise AugrobustValueError(f"sigma must be a finite number >= 0, got {sigma}.")
    return sigma


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """SciPy's normalised 1-D Gaussian kernel (``2r + 1`` taps, float64), bit for bit.

    ``sigma == 0`` gives the identity kernel ``[1.0]`` (SciPy skips such an axis).

    Args:
        sigma: standard deviation in pixels (>= 0).
        truncate: the kernel is cut at ``truncate`` standard deviations.

    Returns:
        A float64 CPU tensor of length ``2 * int(truncate * sigma + 0.5) + 1`` summing to ~1.

    Example:
        >>> k = gaussian_kernel1d(1.0)
        >>> k.shape, round(float(k.sum()), 12)
        (torch.Size([9]), 1.0)
    """
    sigma = _check_sigma_value(sigma)
    return torch.from_numpy(_kernel_numpy(sigma, float(truncate)).copy())


def gaussian_kernels(sigmas: Sequence[float], truncate: float = 4.0) -> torch.Tensor:
    """A table of SciPy Gaussian kernels, centred and zero-padded to a common width.

    Row ``i`` holds the kernel of ``sigmas[i]`` in the middle of ``2R + 1`` taps, where ``R`` is the
    largest radius; the extra taps are exactly zero, which leaves :func:`separable_filter_nearest`'s
    result unchanged (bit for bit), so a batch can mix sigmas.

    Example:
        >>> t = gaussian_kernels([0.0, 1.0, 2.0])
        >>> t.shape, t[0, 8].item()
        (torch.Size([3, 17]), 1.0)
    """
    kernels = [_kernel_numpy(_check_sigma_value(s), float(truncate)) for s in sigmas]
    radius = max((len(k) // 2 for k in kernels), default=0)
    table = np.zeros((len(kernels), 2 * radius + 1))
    for i, k in enumerate(kernels):
        r = len(k) // 2
        table[i, radius - r : radius + r + 1] = k
    return torch.from_numpy(table)


def _check_input(x: torch.Tensor, weights: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.dtype.is_floating_point:
        raise AugrobustTypeError(
            "x must be a floating-point tensor of shape (B, C, H, W), got "
            f"{getattr(x, 'dtype', type(x).__name__)} with shape {tuple(getattr(x, 'shape', ()))}."
        )
    if weights.ndim != 2 or weights.shape[0] != x.shape[0] or weights.shape[1] % 2 != 1:
        raise AugrobustValueError(
            f"weights must have shape (B, 2R + 1) = ({x.shape[0]}, odd), got {tuple(weights.shape)}."
        )


def _banded_matrix(weights: torch.Tensor, n: int) -> torch.Tensor:
    """``(B, n, n)`` matrix ``M`` with ``(M @ v)[i] = sum_k w[k] v[clamp(i + k - R, 0, n - 1)]``."""
    b, k = weights.shape
    radius = k // 2
    rows = torch.arange(n, device=weights.device).view(n, 1)
    taps = torch.arange(-radius, radius + 1, device=weights.device).view(1, k)
    cols = (rows + taps).clamp_(0, n - 1).expand(b, n, k)  # edge taps pile up on columns 0 and n-1
    matrix = torch.zeros(b, n, n, dtype=weights.dtype, device=weights.device)
    return matrix.scatter_add_(2, cols, weights.view(b, 1, k).expand(b, n, k))


def banded_nearest_matrices(weights: torch.Tensor, n: int) -> torch.Tensor:
    """The ``"matmul"`` method's matrices: ``(M[b] @ v)[i] = sum_k w[b, k] v[clamp(i + k - R, 0, n - 1)]``.

    Callers with a fixed kernel table build these once per size (e.g. one per severity) and pass
    gathered rows to :func:`filter_with_banded_matrices`, skipping the per-call construction.

    Args:
        weights: ``(S, 2R + 1)`` kernels.
        n: length of the filtered axis.

    Returns:
        ``(S, n, n)`` matrices in ``weights``' dtype and device.

    Example:
        >>> m = banded_nearest_matrices(gaussian_kernels([1.0]), 5)
        >>> m.shape, [round(float(v), 12) for v in m.sum(-1)[0]]
        (torch.Size([1, 5, 5]), [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    return _banded_matrix(weights, n)


@autocast_exempt
def filter_with_banded_matrices(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Apply per-sample banded matrices along H (``rows``, ``(B, H, H)``) then W (``cols``, ``(B, W, W)``).

    Same result as ``separable_filter_nearest(x, weights, method="matmul")`` when ``rows`` and ``cols``
    are :func:`banded_nearest_matrices` of ``weights``.

    Example:
        >>> x = torch.rand(2, 3, 6, 7)
        >>> w = gaussian_kernels([1.0, 0.5]).float()
        >>> y = filter_with_banded_matrices(x, banded_nearest_matrices(w, 6), banded_nearest_matrices(w, 7))
        >>> torch.allclose(y, separable_filter_nearest(x, w, method="matmul"))
        True
    """
    b, c, h, w = x.shape
    y = torch.matmul(rows.unsqueeze(1), x)
    return torch.bmm(y.reshape(b, c * h, w), cols.transpose(1, 2)).view(b, c, h, w)


def _filter_matmul(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    mh = _banded_matrix(weights, h)  # rows (axis 0 in SciPy's HWC) first
    mw = _banded_matrix(weights, w).transpose(1, 2)
    y = torch.matmul(mh.unsqueeze(1), x)
    return torch.bmm(y.reshape(b, c * h, w), mw).view(b, c, h, w)


def correlate1d_nearest(x: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """SciPy's ``correlate1d`` (mode ``nearest``) along ``dim`` in its accumulation order (``NI_Correlate1D``).

    ``weights`` is ``(B, 2r + 1)``, one symmetric kernel per sample (row ``b`` filters ``x[b]``); the taps are
    added outermost pair first, each pair summed before it is weighted, as SciPy does, so float64 results are
    bit-identical to SciPy's.

    Example:
        >>> x = torch.arange(5.0, dtype=torch.float64).view(1, 1, 5)
        >>> correlate1d_nearest(x, torch.tensor([[0.25, 0.5, 0.25]], dtype=torch.float64), 2).tolist()
        [[[0.25, 1.0, 2.0, 3.0, 3.75]]]
    """
    n = x.shape[dim]
    radius = weights.shape[1] // 2
    idx = torch.arange(-radius, n + radius, device=x.device).clamp_(0, n - 1)
    padded = x.index_select(dim, idx)
    shape = [x.shape[0]] + [1] * (x.ndim - 1)
    out = torch.mul(x, weights[:, radius].view(shape))
    if torch.is_grad_enabled() and (x.requires_grad or weights.requires_grad):
        # Autograd cannot record ``out=``: the same operations (same rounding), out of place.
        for j in range(radius, 0, -1):
            pair = padded.narrow(dim, radius - j, n) + padded.narrow(dim, radius + j, n)
            out = out + pair * weights[:, radius - j].view(shape)
        return out
    pair = torch.empty_like(out)
    for j in range(radius, 0, -1):  # outermost pair first, as SciPy does; separate mul and add
        torch.add(padded.narrow(dim, radius - j, n), padded.narrow(dim, radius + j, n), out=pair)
        out.add_(pair.mul_(weights[:, radius - j].view(shape)))
    return out


def _filter_direct(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    # Chunks of ~2 MB keep the ~2R passes over the data in cache (several times faster than
    # whole-batch passes); no host sync, the chunking is fixed by the shape.
    chunk = max(1, (1 << 18) // max(1, x[0].numel()))
    parts = [
        correlate1d_nearest(correlate1d_nearest(xs, ws, 2), ws, 3)
        for xs, ws in zip(x.split(chunk), weights.split(chunk), strict=True)
    ]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


@autocast_exempt
def separable_filter_nearest(x: torch.Tensor, weights: torch.Tensor, *, method: str = "auto") -> torch.Tensor:
    """Correlate each channel with ``weights`` along H, then along W, replicating edge pixels.

    This is ``scipy.ndimage.correlate1d(..., mode='nearest')`` over both spatial axes with a symmetric
    kernel per sample: the building block of :func:`gaussian_blur_nearest` that takes kernels instead
    of sigmas (no host sync).

    Args:
        x: ``(B, C, H, W)`` float tensor.
        weights: ``(B, 2R + 1)`` symmetric kernels (e.g. rows of :func:`gaussian_kernels`), any float
            dtype; converted to ``x``'s dtype and device (to float64 for ``"scipy"``, as SciPy does).
        method: ``"matmul"`` (banded matrices, fast), ``"direct"`` (SciPy's accumulation order,
            bit-identical to SciPy in float64), ``"scipy"`` (SciPy itself, per image plane on torch's CPU
            threads: CPU tensors in eager mode only; each pass stored in ``x``'s dtype, as SciPy does) or
            ``"auto"`` (``"direct"`` for float64, else ``"matmul"``).

    Returns:
        The filtered tensor, same shape and dtype as ``x``.

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> w = gaussian_kernels([1.0, 2.0])
        >>> separable_filter_nearest(x, w).shape
        torch.Size([2, 3, 8, 8])
    """
    _check_input(x, weights)
    if method == "scipy":  # SciPy's weights are float64 whatever the image's dtype
        return _filter_scipy(x, weights.to(torch.float64))
    weights = weights.to(device=x.device, dtype=x.dtype)
    if method == "auto":
        method = "direct" if x.dtype == torch.float64 else "matmul"
    if method == "matmul":
        return _filter_matmul(x, weights)
    if method == "direct":
        return _filter_direct(x, weights)
    raise AugrobustValueError(f"method must be 'auto', 'matmul', 'direct' or 'scipy', got {method!r}.")


def _without_zero_ends(row: np.ndarray) -> np.ndarray:
    nonzero = np.flatnonzero(row)
    return row[nonzero[0] : nonzero[-1] + 1] if nonzero.size else row


def _filter_scipy(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """SciPy's own ``correlate1d`` per image plane, on torch's CPU threads (SciPy filters without the GIL)."""
    if x.device.type != "cpu" or torch.compiler.is_compiling():
        raise AugrobustValueError("method='scipy' runs SciPy on CPU tensors in eager mode; use 'direct' elsewhere.")
    import scipy.ndimage

    from augrobust.functional.host import host_map

    b, c = x.shape[:2]
    source = x.detach().contiguous().numpy()
    out = torch.empty(x.shape, dtype=x.dtype)
    target = out.numpy()
    taps = weights.detach().cpu().numpy()
    kernels = [_without_zero_ends(row) for row in taps]  # a batch's table is padded to its widest kernel

    def filter_plane(i: int) -> None:
        n, ch = divmod(i, c)
        rows = scipy.ndimage.correlate1d(source[n, ch], kernels[n], axis=0, mode="nearest", output=source.dtype)
        scipy.ndimage.correlate1d(rows, kernels[n], axis=1, mode="nearest", output=target[n, ch])

    host_map(filter_plane, b * c)
    return out


@autocast_exempt
def gaussian_blur_nearest(
    x: torch.Tensor, sigma: torch.Tensor | float, *, truncate: float = 4.0, method: str = "auto"
) -> torch.Tensor:
    """Per-sample Gaussian blur equal to ``skimage.filters.gaussian(mode='nearest', channel_axis=-1)``.

    Each sample ``b`` is blurred per channel with ``sigma[b]`` (radius ``int(truncate * sigma + 0.5)``,
    edge pixels replicated); ``sigma == 0`` leaves the sample unchanged. A batch may mix sigmas.

    The kernels are computed exactly as SciPy does, on the host: the ``(B,)`` sigmas are read back once
    (a host sync on accelerators). To avoid it, build kernels once with :func:`gaussian_kernels` and
    call :func:`separable_filter_nearest`.

    Args:
        x: ``(B, C, H, W)`` float tensor.
        sigma: ``(B,)`` tensor (or a scalar for the whole batch) of standard deviations in pixels, >= 0.
        truncate: cut the kernel at this many standard deviations.
        method: see :func:`separable_filter_nearest`; ``"auto"`` is bit-identical to SciPy in float64.

    Returns:
        The blurred tensor, same shape and dtype as ``x``.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y = gaussian_blur_nearest(x, torch.tensor([0.0, 2.0]))
        >>> torch.equal(y[0], x[0]), y.shape
        (True, torch.Size([2, 3, 16, 16]))
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise AugrobustTypeError(
            f"x must be a (B, C, H, W) float tensor, got {type(x).__name__} "
            f"with shape {tuple(getattr(x, 'shape', ()))}."
        )
    if isinstance(sigma, torch.Tensor):
        sig = sigma.detach().to("cpu", torch.float64).reshape(-1)  # the one host sync
        if sig.numel() == 1:
            sig = sig.expand(x.shape[0])
    else:
        sig = torch.full((x.shape[0],), float(sigma), dtype=torch.float64)
    if sig.numel() != x.shape[0]:
        raise AugrobustValueError(f"sigma must have shape ({x.shape[0]},) (one per sample), got {tuple(sig.shape)}.")
    values = sig.tolist()
    unique = sorted(set(values))
    table = gaussian_kernels(unique, truncate)
    index = torch.tensor([unique.index(v) for v in values], dtype=torch.long)
    return separable_filter_nearest(x, table[index], method=method)


def fft_size(n: int) -> int:
    """Smallest ``2^a 3^b 5^c >= n``: the FFT length to pad to (pocketfft / cuFFT are fastest on such sizes).

    Example:
        >>> fft_size(97), fft_size(128), fft_size(1)
        (100, 128, 1)
    """
    best = 1 << max(0, math.ceil(math.log2(max(n, 1))))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best
