"""Frequency masking: keep or drop Fourier coefficients of every channel, batched (DFM / DFM-X).

A *frequency mask* ``M`` is a real ``(H, W)`` array laid out like ``fftshift(fft2(x))`` (the DC term at
``(H // 2, W // 2)``), as in the Dominant Frequency Map papers (Wang et al., ICCV 2023 / ICCV-W 2023). The
filtered image is, per channel,

    ``real(ifft2(ifftshift(fftshift(fft2(x)) * M)))``.

How it is computed: for a real image the real part of that expression equals the inverse transform of
``F * S`` where ``S(k) = (M(k) + M(-k)) / 2`` is the conjugate-symmetric part of the (unshifted) mask, so the
result is obtained with one ``rfft2`` / ``irfft2`` pair over the whole batch on the half spectrum
(:func:`half_spectrum_filter` builds ``S``, :func:`apply_half_spectrum_filter` applies it). It equals the
literal formula up to floating-point rounding; the tests check it against a float64 NumPy transcription.

Which space to filter in: the filter is linear and keeps constants when the DC term is kept
(``M[H // 2, W // 2] == 1``), so it commutes with a per-channel ``Normalize``:
``filter((x - mean) / std) == (filter(x) - mean) / std``. Filtering ``[0, 1]`` images *before* the model's
``Normalize`` layer is therefore exactly what the reference does on normalised tensors, as long as DC is
kept. When DC is dropped the two differ by the mean; :func:`frequency_mask` takes ``center=`` (the
normaliser's per-channel mean) to filter ``x - center`` and add ``center`` back, which reproduces filtering
in normalised space.

Half-precision inputs are computed in float32 (CPU FFTs do not support them) and cast back; float64 stays
float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.precision import autocast_exempt

__all__ = ["apply_half_spectrum_filter", "frequency_mask", "half_spectrum_filter"]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_masks(masks: object, name: str = "masks") -> torch.Tensor:
    if not isinstance(masks, torch.Tensor):
        raise AugrobustTypeError(
            f"{name} must be a torch.Tensor of shape (H, W) or (B, H, W), got {type(masks).__name__}."
        )
    if masks.ndim not in (2, 3):
        raise AugrobustValueError(
            f"{name} must have shape (H, W) or (B, H, W) in fftshift layout, got shape {tuple(masks.shape)}."
        )
    if masks.is_complex():
        raise AugrobustTypeError(f"{name} must be real (0/1 or weights), got dtype {masks.dtype}.")
    return masks


def half_spectrum_filter(masks: torch.Tensor, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The real half-spectrum filter that :func:`apply_half_spectrum_filter` multiplies ``rfft2(x)`` with.

    Args:
        masks: ``(..., H, W)`` real masks in fftshift layout (DC at ``(H // 2, W // 2)``).
        dtype: real dtype of the result (``float32`` or ``float64``).

    Returns:
        ``(..., H, W // 2 + 1)``: ``(M(k) + M(-k)) / 2`` in unshifted (``rfft2``) layout.

    Example:
        >>> m = torch.zeros(4, 4); m[2, 2] = 1.0      # keep only DC
        >>> half_spectrum_filter(m)
        tensor([[1., 0., 0.],
                [0., 0., 0.],
                [0., 0., 0.],
                [0., 0., 0.]])
    """
    w = masks.shape[-1]
    unshifted = torch.fft.ifftshift(masks.to(dtype), dim=(-2, -1))
    # M(-k): index -k mod N, i.e. flip then roll by one along each axis.
    mirrored = torch.roll(torch.flip(unshifted, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))
    return ((unshifted + mirrored) * 0.5)[..., : w // 2 + 1].contiguous()


@autocast_exempt
def apply_half_spectrum_filter(x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """``irfft2(rfft2(x) * filters)`` per channel; ``filters`` from :func:`half_spectrum_filter`.

    Args:
        x: ``(B, C, H, W)`` or ``(C, H, W)`` real images (any float dtype).
        filters: ``(H, W // 2 + 1)`` (one for all) or ``(B, H, W // 2 + 1)`` (one per image).

    Returns:
        The filtered images, same shape and dtype as ``x``.

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> torch.allclose(apply_half_spectrum_filter(x, half_spectrum_filter(torch.ones(8, 8))), x, atol=1e-6)
        True
    """
    h, w = x.shape[-2:]
    if x.numel() == 0:  # an empty batch (the FFT backends reject zero-sized transforms)
        return x.clone()
    work = _compute_dtype(x.dtype)
    if filters.ndim == 3:
        filters = filters.unsqueeze(-3)  # broadcast over channels
    spectrum = torch.fft.rfft2(x.to(work))
    out = torch.fft.irfft2(spectrum * filters.to(device=x.device, dtype=work), s=(h, w))
    return out.to(x.dtype)


@autocast_exempt
def frequency_mask(
    x: torch.Tensor, masks: torch.Tensor, *, center: Sequence[float] | torch.Tensor | None = None
) -> torch.Tensor:
    """Filter every channel with a frequency mask: ``real(ifft2(ifftshift(fftshift(fft2(x)) * M)))``.

    Args:
        x: ``(B, C, H, W)`` or ``(C, H, W)`` float images (no range is assumed; not clipped).
        masks: ``(H, W)`` (the same mask for every image) or ``(B, H, W)`` (one per image), real, in fftshift
            layout (DC at ``(H // 2, W // 2)``); usually 0/1.
        center: optional per-channel offset (e.g. the model's Normalize mean): filters ``x - center`` and
            adds ``center`` back, i.e. filtering in the normaliser's space. Only matters when DC is dropped.

    Returns:
        The filtered images, same shape and dtype as ``x``.

    Raises:
        AugrobustTypeError: ``x`` or ``masks`` is not a real floating tensor.
        AugrobustValueError: bad ranks, or mask size / batch size does not match ``x``.

    Example:
        >>> x = torch.rand(4, 3, 32, 32)
        >>> keep_all = torch.ones(32, 32)
        >>> torch.allclose(frequency_mask(x, keep_all), x, atol=1e-6)
        True
        >>> dc_only = torch.zeros(32, 32); dc_only[16, 16] = 1
        >>> torch.allclose(frequency_mask(x, dc_only), x.mean((-2, -1), keepdim=True).expand_as(x), atol=1e-6)
        True
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise AugrobustTypeError(
            f"x must be a floating torch.Tensor (B, C, H, W) or (C, H, W), got "
            f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}. Convert uint8 with x.float() / 255."
        )
    if x.ndim not in (3, 4):
        raise AugrobustValueError(f"x must have shape (B, C, H, W) or (C, H, W), got {tuple(x.shape)}.")
    masks = _check_masks(masks)
    if tuple(masks.shape[-2:]) != tuple(x.shape[-2:]):
        raise AugrobustValueError(
            f"mask size {tuple(masks.shape[-2:])} does not match the image size {tuple(x.shape[-2:])}; "
            "masks are per-frequency and must have the image's (H, W)."
        )
    if masks.ndim == 3 and (x.ndim != 4 or masks.shape[0] != x.shape[0]):
        raise AugrobustValueError(
            f"per-image masks of shape {tuple(masks.shape)} need a batch x of {masks.shape[0]} images, got x of "
            f"shape {tuple(x.shape)}; pass one (H, W) mask to use it for every image."
        )
    offset = None
    if center is not None:
        offset = torch.as_tensor(center, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
        if offset.shape[0] not in (1, x.shape[-3]):
            raise AugrobustValueError(f"center has {offset.shape[0]} values for {x.shape[-3]} channels.")
    filters = half_spectrum_filter(masks.to(x.device), dtype=_compute_dtype(x.dtype))
    if offset is None:
        return apply_half_spectrum_filter(x, filters)
    return apply_half_spectrum_filter(x - offset, filters) + offset
