"""defocus_blur: correlation with an anti-aliased disk kernel, reflect-101 borders, then clip.

Reference: ``imagecorruptions.corruptions.defocus_blur`` (identical in ``hendrycks/robustness``):

* ``disk(radius, alias_blur)``: a float32 binary disk ``X^2 + Y^2 <= r^2`` on the grid ``-8..8``
  (``r <= 8``, anti-alias kernel 3x3) or ``-r..r`` (``r > 8``, 5x5), divided by its sum, then
  ``cv2.GaussianBlur(disk, ksize, sigmaX=alias_blur)`` (reflect-101, not renormalised);
* each channel of ``x / 255`` (float64) is ``cv2.filter2D``-ed with it (correlation,
  ``BORDER_REFLECT_101``; OpenCV does this by DFT for kernels this large) and clipped.

Here the kernels are built once per preset with OpenCV's own ``GaussianBlur`` (bit-identical taps; without
OpenCV, in NumPy float64 rounded to float32 once, a few taps one float32 ulp, ~2e-9, off: enough to move
a value that sits within ~1e-5 grey levels of an integer across it) and applied by FFT on a reflect-101
padded image, which is fast on CPU and GPU (a 21x21 depthwise ``conv2d`` is not). The FFT rounds
differently from OpenCV's DFT (~1e-13 grey levels), so the floored uint8 result can differ by one level
where the reference's value is that close to an integer. Deterministic; any channel count.
"""

from __future__ import annotations

import numpy as np
import torch

from augrobust._tensor import cache_chunk
from augrobust.corruptions._spec import CorruptionSpec, register
from augrobust.functional.filters import fft_size
from augrobust.functional.precision import autocast_exempt

__all__ = ["TABLES", "defocus_blur", "defocus_kernel", "filter2d_reflect101"]

#: (disk radius, anti-alias sigma) per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES: dict[str, tuple[tuple[float, float], ...]] = {
    "imagenet": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "inception": ((4, 0.1), (5, 0.5), (7, 0.5), (10, 0.5), (12, 0.5)),
    "tinyimagenet": ((0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)),
    "cifar": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
}


def _reflect101(index: np.ndarray | torch.Tensor, n: int):
    """OpenCV's BORDER_REFLECT_101 index map (``gfedcb|abcdefgh|gfedcba``), for any overshoot."""
    if n == 1:
        return index * 0
    period = 2 * (n - 1)
    index = index % period
    return (period - index) * (index >= n) + index * (index < n)


def _opencv_gaussian_1d(ksize: int, sigma: float) -> np.ndarray:
    # cv2.getGaussianKernel(ksize, sigma > 0, CV_32F): exp(-x^2 / (2 sigma^2)) normalised, as float32.
    x = np.arange(ksize) - (ksize - 1) / 2
    t = np.exp(-0.5 / (sigma * sigma) * x * x)
    return (t / t.sum()).astype(np.float32)


def defocus_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The reference's anti-aliased disk kernel (float32 values, returned as a float64 tensor).

    Example:
        >>> k = defocus_kernel(3, 0.1)
        >>> k.shape, round(float(k.sum()), 5)
        (torch.Size([17, 17]), 1.0)
    """
    if radius <= 8:
        grid, ksize = np.arange(-8, 9), 3
    else:
        grid, ksize = np.arange(-int(radius), int(radius) + 1), 5
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    try:  # OpenCV (a runtime dependency) gives the reference's own float32 taps, bit for bit
        import cv2

        blurred = cv2.GaussianBlur(disk, (ksize, ksize), sigmaX=alias_blur, borderType=cv2.BORDER_REFLECT_101)
        return torch.from_numpy(blurred.astype(np.float64))
    except ImportError:  # pragma: no cover - depends on the environment
        pass
    # Without OpenCV: the same blur in float64, rounded to float32 once (OpenCV's float32 passes round in
    # between, so a few taps differ by one float32 ulp, ~2e-9).
    g = _opencv_gaussian_1d(ksize, alias_blur).astype(np.float64)
    n, h = disk.shape[0], ksize // 2
    idx = _reflect101(np.arange(-h, n + h), n)
    padded = disk.astype(np.float64)[np.ix_(idx, idx)]
    rows = sum(g[j] * padded[:, j : j + n] for j in range(ksize))  # along x
    both = sum(g[j] * rows[j : j + n, :] for j in range(ksize))  # along y
    return torch.from_numpy(both.astype(np.float32).astype(np.float64))


def _kernel_table(rows: tuple[tuple[float, float], ...]) -> torch.Tensor:
    kernels = [defocus_kernel(r, a) for r, a in rows]
    size = max(k.shape[0] for k in kernels)
    table = torch.zeros(len(kernels), size, size, dtype=torch.float64)
    for i, k in enumerate(kernels):
        o = (size - k.shape[0]) // 2
        table[i, o : o + k.shape[0], o : o + k.shape[0]] = k
    return table


# One (5, K, K) table per preset, centred and zero-padded to the widest kernel of the preset, so a
# batch mixing severities is one FFT filter with per-sample kernels and no host sync.
_KERNELS: dict[str, torch.Tensor] = {preset: _kernel_table(rows) for preset, rows in TABLES.items()}


# Batch elements per FFT chunk: rfft2 -> product -> irfft2 on ~4 MB at a time stays in cache (measured
# ~1.5x faster than whole-batch passes at 64x3x224x224); fixed by the shape, no host sync.
_CHUNK_ELEMENTS = 1 << 20

# Kernel spectra per (table, FFT size, dtype, device): the kernel table is fixed, so its FFT is taken
# once per process instead of once per call.
_SPECTRA: dict[tuple[int, int, int, torch.dtype, str], torch.Tensor] = {}


def _kernel_spectrum(kernel: torch.Tensor, fh: int, fw: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    key = (id(kernel), fh, fw, dtype, str(device))
    cacheable = not kernel.requires_grad and kernel.device.type == "cpu" and any(kernel is t for t in _KERNELS.values())
    if cacheable and key in _SPECTRA:
        return _SPECTRA[key]
    spectrum = torch.fft.rfft2(kernel.to(device=device, dtype=dtype).flip(-1, -2), s=(fh, fw))
    if cacheable:
        _SPECTRA[key] = spectrum
    return spectrum


def _pad_reflect101(x: torch.Tensor, pad: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if pad < h and pad < w:  # torch's "reflect" is OpenCV's REFLECT_101 while the pad is shorter than the side
        return torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
    rows = _reflect101(torch.arange(-pad, h + pad, device=x.device), h)
    cols = _reflect101(torch.arange(-pad, w + pad, device=x.device), w)
    return x.index_select(2, rows).index_select(3, cols)


def filter2d_reflect101(
    x: torch.Tensor, kernel: torch.Tensor, index: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample 2-D correlation like ``cv2.filter2D(..., borderType=BORDER_REFLECT_101)``, by FFT.

    Args:
        x: ``(B, C, H, W)`` float tensor; every channel is filtered with its sample's kernel.
        kernel: ``(B, K, K)`` kernels with odd ``K`` (anchor at the centre), or, with ``index``, a
            table ``(S, K, K)`` of which sample ``b`` uses row ``index[b]`` (the FFT of the table is
            taken once instead of once per sample, and cached for this module's own tables).
        index: optional ``(B,)`` long tensor of table rows.

    Returns:
        ``(B, C, H, W)`` tensor, same dtype as ``x``.

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> k = torch.zeros(1, 3, 3); k[0, 1, 1] = 1.0
        >>> torch.allclose(filter2d_reflect101(x, k), x, atol=1e-6)
        True
    """
    b, c, h, w = x.shape
    size = kernel.shape[-1]
    pad = size // 2
    fh, fw = fft_size(h + 2 * pad), fft_size(w + 2 * pad)
    # Circular convolution with the flipped kernel equals the correlation on the valid region, which
    # no wrap-around reaches because the FFT size covers the padded image.
    kspec = _kernel_spectrum(kernel, fh, fw, x.dtype, x.device)
    if index is not None:
        kspec = kspec[index]
    kspec = kspec.unsqueeze(1)
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    chunk = cache_chunk(x.device, _CHUNK_ELEMENTS, c * fh * fw)
    for start in range(0, b, chunk):  # fixed by the shape: no sync
        stop = min(b, start + chunk)
        spectrum = torch.fft.rfft2(_pad_reflect101(x[start:stop], pad), s=(fh, fw))
        spectrum.mul_(kspec[start:stop])
        full = torch.fft.irfft2(spectrum, s=(fh, fw))
        out[start:stop] = full[..., size - 1 : size - 1 + h, size - 1 : size - 1 + w]
    return out


@autocast_exempt
def defocus_blur(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Defocus each image with its severity's disk kernel and clip to [0, 1].

    Args:
        x: ``(B, C, H, W)`` float batch in [0, 1] (any ``C``; channels are independent).
        severity: ``(B,)`` long tensor in 1..5.
        params: unused (deterministic corruption).
        preset: severity table.
        reference: ``"imagecorruptions"`` or ``"hendrycks"`` (identical here).

    Returns:
        The blurred batch, same shape and dtype.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 32, 32)
        >>> defocus_blur(x, torch.tensor([1, 5]), {}, preset="imagenet", reference="imagecorruptions").shape
        torch.Size([2, 3, 32, 32])
    """
    table = _KERNELS.get(preset, _KERNELS["imagenet"])  # its spectra are cached per size, dtype, device
    return filter2d_reflect101(x, table, severity - 1).clamp_(0.0, 1.0)


SPEC = register(CorruptionSpec(name="defocus_blur", apply=defocus_blur, per_channel=True))
