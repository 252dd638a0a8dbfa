"""A drop-in replacement for ``imagecorruptions``: change one import.

``from augrobust.compat import corrupt, get_corruption_names`` keeps the reference's contract: a NumPy
``uint8`` image of shape ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` with ``H, W >= 32``; grayscale is
stacked to three channels first and the result is always ``(H, W, 3)``; the float result is floored to
``uint8`` (``np.uint8`` of an array clipped to ``[0, 255]``). Kernels run in float64, where they are
bit-identical to imagecorruptions 1.1.2 under the same random draws. Randomness comes from torch's global
RNG (or ``generator=``), not NumPy's, so outputs differ draw for draw from the reference's, with the same
distribution.

Differences, on purpose: it works on NumPy 2 and current scikit-image; bad input raises
:class:`CompatInputError`, which is both an ``AttributeError`` (what the reference raises) and an
:class:`augrobust.AugrobustValueError` with a message that says how to fix it.

Example:
    >>> import numpy as np
    >>> from augrobust.compat import corrupt, get_corruption_names
    >>> image = np.zeros((32, 48), dtype=np.uint8)
    >>> corrupt(image, severity=2, corruption_name="gaussian_blur").shape
    (32, 48, 3)
    >>> get_corruption_names("blur")
    ['defocus_blur', 'glass_blur', 'motion_blur', 'zoom_blur']
"""

from __future__ import annotations

import numpy as np
import torch

from augrobust.corruptions import CORRUPTION_ORDER, corrupt as _corrupt, get_corruption_names
from augrobust.errors import AugrobustValueError

__all__ = ["CompatInputError", "corrupt", "get_corruption_names"]


class CompatInputError(AugrobustValueError, AttributeError):
    """Bad input to :func:`corrupt` (an ``AttributeError``, as imagecorruptions raises)."""


def corrupt(
    image: np.ndarray,
    severity: int = 1,
    corruption_name: str | None = None,
    corruption_number: int = -1,
    *,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Corrupt one ``uint8`` HWC image, as ``imagecorruptions.corrupt`` does.

    Args:
        image: ``numpy.ndarray`` of dtype ``uint8``, shape ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``,
            ``H, W >= 32``.
        severity: 1..5.
        corruption_name: one of :func:`get_corruption_names` ``("all")``.
        corruption_number: its position in that list (0..18), used when no name is given.
        generator: optional ``torch.Generator`` (CPU) for reproducible draws.

    Returns:
        ``uint8`` array of shape ``(H, W, 3)``.
    """
    if not isinstance(image, np.ndarray):
        raise CompatInputError(f"expecting a numpy.ndarray, got {type(image).__name__}.")
    if image.dtype != np.uint8:
        raise CompatInputError(f"expecting dtype uint8, got {image.dtype}; convert with image.astype(np.uint8).")
    if image.ndim not in (2, 3):
        raise CompatInputError(f"expecting shape (H, W) or (H, W, C), got {image.shape}.")
    if image.ndim == 2:
        image = image[..., None]
    height, width, channels = image.shape
    if height < 32 or width < 32:
        raise CompatInputError(f"image width and height must be at least 32 pixels, got {height}x{width}.")
    if channels not in (1, 3):
        raise CompatInputError(f"expecting 1 or 3 channels (last dimension), got {channels}.")
    if channels == 1:
        image = np.repeat(image, 3, axis=2)
    if isinstance(severity, bool) or severity not in (1, 2, 3, 4, 5):
        raise CompatInputError(f"severity must be an integer in [1, 5], got {severity!r}.")
    if corruption_name is None:
        if corruption_number == -1:
            raise AugrobustValueError("either corruption_name or corruption_number must be passed.")
        if not 0 <= corruption_number < len(CORRUPTION_ORDER):
            raise AugrobustValueError(f"corruption_number must be in 0..18, got {corruption_number}.")
        corruption_name = CORRUPTION_ORDER[corruption_number]
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).to(torch.float64).div_(255.0)
    y = _corrupt(x, corruption_name, severity, generator=generator)
    out = y.mul(255.0).floor_().clamp_(0, 255).to(torch.uint8)
    return out.permute(1, 2, 0).numpy().copy()
