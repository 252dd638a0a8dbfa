"""Image tensor conventions shared by every kernel and transform.

* Images are ``(C, H, W)`` or ``(B, C, H, W)``; float images lie in ``[0, 1]``, ``uint8`` in ``[0, 255]``.
* Kernels compute in floating point. ``uint8`` input is converted to ``float32`` in ``[0, 1]`` and the
  result is converted back with ``floor(255 * y)``, the rule of ``imagecorruptions`` (``np.uint8`` of a
  float array already clipped to ``[0, 255]``). ``k / 255 * 255`` is exactly ``k`` in every float dtype,
  so an untouched pixel survives the round trip.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from augrobust.errors import AugrobustTypeError, AugrobustValueError

#: The key of the per-sample on/off gate in every params dict (kornia's): ``(B,)`` float, applied where ``> 0.5``.
GATE_KEY = "batch_prob"

SUPPORTED_DTYPES: tuple[torch.dtype, ...] = (
    torch.uint8,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
)


def check_image(
    image: object,
    *,
    name: str = "image",
    channels: Iterable[int] | None = None,
    min_size: int = 1,
) -> torch.Tensor:
    """Validate an image tensor and return it.

    Raises:
        AugrobustTypeError: not a tensor, or a dtype outside :data:`SUPPORTED_DTYPES`.
        AugrobustValueError: rank other than 3 or 4, a channel count outside ``channels``, or a side
            shorter than ``min_size``.
    """
    if not isinstance(image, torch.Tensor):
        raise AugrobustTypeError(
            f"{name} must be a torch.Tensor of shape (C, H, W) or (B, C, H, W), got {type(image).__name__}. "
            "Convert NumPy HWC arrays with torch.from_numpy(a).permute(2, 0, 1)."
        )
    if image.ndim not in (3, 4):
        raise AugrobustValueError(
            f"{name} must have rank 3 (C, H, W) or 4 (B, C, H, W), got rank {image.ndim} with shape "
            f"{tuple(image.shape)}. Add a channel dimension with x.unsqueeze(-3) or flatten extra "
            "leading dimensions into the batch."
        )
    if image.dtype not in SUPPORTED_DTYPES:
        allowed = ", ".join(str(d).replace("torch.", "") for d in SUPPORTED_DTYPES)
        raise AugrobustTypeError(
            f"{name} has dtype {str(image.dtype).replace('torch.', '')}, allowed: {allowed}. "
            "Use uint8 in [0, 255] or a float dtype in [0, 1], e.g. x.float() / 255."
        )
    if channels is not None:
        allowed_c = sorted(set(channels))
        if image.shape[-3] not in allowed_c:
            raise AugrobustValueError(
                f"{name} has {image.shape[-3]} channels (shape {tuple(image.shape)}), allowed: {allowed_c}. "
                "Images are channels-first: (C, H, W) or (B, C, H, W)."
            )
    h, w = image.shape[-2:]
    if min(h, w) < min_size:
        raise AugrobustValueError(
            f"{name} is {h}x{w} pixels; this operation needs at least {min_size}x{min_size}. "
            "Resize the image first."
        )
    return image


def to_float(image: torch.Tensor) -> torch.Tensor:
    """``uint8`` -> ``float32`` in ``[0, 1]``; float images are returned as they are."""
    if image.dtype == torch.uint8:
        return image.to(torch.float32).div_(255.0)
    return image


def from_float(result: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Convert a float result in ``[0, 1]`` back to the dtype of ``like`` (floor for ``uint8``)."""
    if like.dtype == torch.uint8:
        return result.mul(255.0).floor_().clamp_(0.0, 255.0).to(torch.uint8)
    return result.to(like.dtype)


def as_batch(image: torch.Tensor) -> torch.Tensor:
    """View a ``(C, H, W)`` image as ``(1, C, H, W)``; a batch is returned as it is."""
    return image.unsqueeze(0) if image.ndim == 3 else image


def float_dtype_for(image: torch.Tensor) -> torch.dtype:
    """The floating dtype a kernel computes in for this image (``float32`` for ``uint8``)."""
    return torch.float32 if image.dtype == torch.uint8 else image.dtype


def cache_chunk(device: torch.device, elements: int, per_item: int) -> int:
    """How many items (images, maps, rows) a CPU kernel processes per chunk so that ``elements`` fit in cache.

    Several kernels walk the batch in cache-sized chunks, which is several times faster on the CPU. On an
    accelerator chunking only adds kernel launches, so the whole batch is one chunk there.
    """
    if torch.device(device).type != "cpu":
        return 1 << 62
    return max(1, elements // max(1, per_item))


_SAME_WIDTH_INT = {torch.float64: torch.int64, torch.float32: torch.int32}


def unit_scale_keeping_floor(v: torch.Tensor) -> torch.Tensor:
    """``v / 255``, moved by one ulp where needed so that ``floor(255 * y) == floor(v)``.

    Kernels that follow the reference on the ``[0, 255]`` scale must return ``[0, 1]`` values whose uint8
    floor is the reference's ``np.uint8(v)``; ``v / 255 * 255`` can land on the other side of an integer
    (``127.99999999999999`` -> ``128.0``), which would change the result by one grey level.

    Example:
        >>> v = torch.tensor([7.999999999999999, 8.0, 254.5], dtype=torch.float64)
        >>> (unit_scale_keeping_floor(v) * 255).floor().tolist()
        [7.0, 8.0, 254.0]
    """
    y = v / 255.0
    bits = _SAME_WIDTH_INT.get(y.dtype)
    if bits is not None and not (y.requires_grad and torch.is_grad_enabled()) and not torch.compiler.is_compiling():
        # The same one-ulp moves in place on the bit pattern (+-1 is nextafter up/down for 0 <= y < 1): ~10x
        # faster than two nextafter and two where passes; NaN/inf (no move wanted) give a 0 step.
        step = (y * 255.0).floor_().sub_(v.floor()).nan_to_num_(0.0, 0.0, 0.0).to(bits)
        y.view(bits).sub_(step)
        return y
    scaled, target = (y * 255.0).floor_(), v.floor()
    down = torch.nextafter(y, torch.zeros_like(y))
    up = torch.nextafter(y, torch.ones_like(y))
    return torch.where(scaled > target, down, torch.where(scaled < target, up, y))


def check_values(image: torch.Tensor, name: str = "image", *, high: float = 1.0, atol: float = 0.0) -> torch.Tensor:
    """Opt-in check that a float image is finite and in ``[0, high]``; returns it unchanged.

    Kernels assume float images in ``[0, 1]``: a ``0..255`` float image silently saturates to white,
    NaN spreads through every filter and inf turns images into NaN. This check makes those mistakes
    errors that name the tensor. It reads three counts back to the host (one sync), so it belongs where
    the data are on the host already (readers, commands, :mod:`augrobust.compat`), not inside kernels.
    Integer images (``uint8``) cannot be out of range and are returned without a pass over the data.

    Args:
        image: the tensor to check (any shape).
        name: how the error names it (an argument name or a file name).
        high: the top of the valid range (``1.0``; ``255.0`` for the ``0..255`` scale of imagecorruptions).
        atol: how far values may stray outside ``[0, high]`` (e.g. for the overshoot of a bicubic resize).

    Raises:
        AugrobustValueError: NaN or infinite values, or values below ``-atol`` or above ``high + atol``;
            the message gives the counts, the extreme values and how to fix the data.

    Example:
        >>> check_values(torch.tensor([0.0, 0.5, 1.0])).tolist()
        [0.0, 0.5, 1.0]
        >>> check_values(torch.tensor([0.0, 128.0, 255.0]), "batch")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        augrobust.errors.AugrobustValueError: batch has 2 of 3 values above 1 (largest 255): ... divide it by 255 ...
    """
    if not isinstance(image, torch.Tensor):
        raise AugrobustTypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}.")
    if not image.is_floating_point():
        return image
    x = image.detach()
    finite = torch.isfinite(x)
    counts = torch.stack(
        [torch.isnan(x).sum(), (~finite).sum(), ((x > high + atol) & finite).sum(), ((x < -atol) & finite).sum()]
    )
    nan, not_finite, above, below = counts.tolist()  # the one host sync
    total = x.numel()
    if not_finite:
        inf = not_finite - nan
        parts = [f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "infinite")) if n]
        raise AugrobustValueError(
            f"{name} has {' and '.join(parts)} values (of {total}); images must be finite. Find where they come "
            f"from (a division by zero, a corrupt file), or replace them: torch.nan_to_num(x, nan=0.0, "
            f"posinf={high:g}, neginf=0.0)."
        )
    if above:
        largest = float(x.max())
        hint = (
            "If it is on the 0..255 scale, divide it by 255 (x / 255) or pass it as uint8."
            if high == 1.0
            else f"Clip it to [0, {high:g}] or rescale it."
        )
        raise AugrobustValueError(
            f"{name} has {above} of {total} values above {high:g} (largest {largest:g}): float images must lie "
            f"in [0, {high:g}]. {hint}"
        )
    if below:
        smallest = float(x.min())
        raise AugrobustValueError(
            f"{name} has {below} of {total} negative values (smallest {smallest:g}): float images must lie in "
            f"[0, {high:g}]. A normalised tensor (x - mean) / std must be un-normalised before corrupting "
            f"(x * std + mean); small overshoots (e.g. of a bicubic resize) can be clipped with x.clamp(0, {high:g})."
        )
    return image
