"""A drop-in replacement for ``imagecorruptions``: change one import.

``from augrobust.compat import corrupt, get_corruption_names, corruption_dict, corruption_tuple`` and the
nineteen per-corruption functions (``glass_blur(x, severity=1)``, ...) keep the reference's public surface:

* :func:`corrupt` takes a NumPy ``uint8`` image of shape ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` with
  ``H, W >= 32``; grayscale is stacked to three channels first and the result is always a ``uint8``
  ``(H, W, 3)`` array, floored as the reference's ``np.uint8`` does.
* The per-corruption functions take what the reference's take: a PIL image (mode ``"RGB"`` or ``"L"``, what
  ``corrupt`` hands them) or a NumPy array (``uint8``, or float on the ``0..255`` scale) of shape
  ``(H, W, 3)``, ``(H, W, 1)`` or ``(H, W)``. Like the reference they return a float64 array on the ``0..255``
  scale, not clipped to integers (``np.uint8(result)`` gives the image), of the input's shape (a PIL ``"L"``
  image gives ``(H, W)``); ``pixelate`` and ``jpeg_compression`` return a PIL image of the input's mode.
* ``severity`` is an int in 1..5, Python or NumPy (``np.int64`` from NumPy loops).
* ``corruption_tuple`` lists the functions in the reference order (``corruption_number`` indexes it) and
  ``corruption_dict`` maps each name to its function.

Kernels run in float64, where they are bit-identical to imagecorruptions 1.1.2 under the same random draws.
Randomness comes from torch's global RNG (or ``generator=`` of :func:`corrupt`), not NumPy's, so outputs
differ draw for draw from the reference's, with the same distribution.

Differences, on purpose: it works on NumPy 2 and current scikit-image; bad input raises
:class:`CompatInputError`, which is both an ``AttributeError`` (what the reference raises) and an
:class:`augrobust.AugrobustValueError` with a message that says how to fix it, also where the reference
would crash with an unrelated error (a float severity, a ``corruption_number`` out of range, an RGBA or
palette PIL image, a float array with NaN or values outside ``0..255``). Where the reference crashes on an
input that has an obvious meaning, the function runs instead: ``motion_blur`` of a grayscale image,
``spatter`` of an array at severities 4 and 5, ``pixelate`` / ``jpeg_compression`` of an array.

Grayscale per-corruption calls follow the reference's grayscale branches where they are well defined
(``brightness``, ``saturate``, ``fog`` and ``snow`` treat the gray value as each of R, G and B;
``jpeg_compression`` codes RGB and converts back with PIL's luma; the per-channel corruptions act on the
one channel), and take the ITU-R 601 luma of the RGB result otherwise (``frost``, ``spatter``). The
reference's ``gaussian_blur`` and ``glass_blur`` blur a 2-D image along one axis only (scikit-image reads
its last axis as channels); that is not reproduced (see ``docs/fidelity.md``).

Read-only arrays (``np.asarray(pil_image)``) are accepted without a warning; the input is never modified.

Example:
    >>> import numpy as np
    >>> from augrobust.compat import corrupt, corruption_dict, get_corruption_names
    >>> image = np.zeros((32, 48), dtype=np.uint8)
    >>> corrupt(image, severity=np.int64(2), corruption_name="gaussian_blur").shape
    (32, 48, 3)
    >>> get_corruption_names("blur")
    ['defocus_blur', 'glass_blur', 'motion_blur', 'zoom_blur']
    >>> np.uint8(corruption_dict["contrast"](np.zeros((32, 32, 3), np.uint8), 3)).shape
    (32, 32, 3)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from augrobust._checks import check_count, check_severity
from augrobust._tensor import check_values
from augrobust.corruptions import CORRUPTION_ORDER, get_corruption_names
from augrobust.corruptions import corrupt as _corrupt
from augrobust.errors import AugrobustError, AugrobustValueError

__all__ = [
    "CompatInputError",
    "brightness",
    "contrast",
    "corrupt",
    "corruption_dict",
    "corruption_tuple",
    "defocus_blur",
    "elastic_transform",
    "fog",
    "frost",
    "gaussian_blur",
    "gaussian_noise",
    "get_corruption_names",
    "glass_blur",
    "impulse_noise",
    "jpeg_compression",
    "motion_blur",
    "pixelate",
    "saturate",
    "shot_noise",
    "snow",
    "spatter",
    "speckle_noise",
    "zoom_blur",
]

#: The two corruptions whose reference functions return a PIL image instead of a float array.
_RETURNS_PIL = ("pixelate", "jpeg_compression")
_FLOAT_DTYPES = (np.float16, np.float32, np.float64)
#: Colour corruptions whose reference grayscale branch treats the gray value as each of R, G and B (it
#: equals channel 0 of the corruption of the gray image stacked to RGB), not as the luma of the result.
_GRAY_AS_RED = ("brightness", "saturate", "fog", "snow")


class CompatInputError(AugrobustValueError, AttributeError):
    """Bad input to :func:`corrupt` (an ``AttributeError``, as imagecorruptions raises)."""


def _severity(severity: object) -> int:
    try:
        return check_severity(severity)
    except AugrobustError:
        raise CompatInputError(
            f"severity must be an integer in [1, 5], got {severity!r} ({type(severity).__name__}); Python and "
            "NumPy integers are accepted."
        ) from None


def _to_unit(pixels: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` array on the 0..255 scale -> float64 ``(C, H, W)`` in ``[0, 1]`` (a new, writable copy)."""
    # astype copies, so read-only inputs (np.asarray of a PIL image) never reach torch.from_numpy.
    x = torch.from_numpy(pixels.astype(np.float64)).permute(2, 0, 1).div_(255.0)
    return check_values(x, "image")


def _as_pixels(x: object, name: str) -> tuple[np.ndarray, str | None]:
    """The input of a per-corruption function as an ``(H, W, C)`` array, and its PIL mode (``None``: array)."""
    if isinstance(x, Image.Image):
        if x.mode not in ("RGB", "L"):
            raise CompatInputError(
                f"{name}: PIL images of mode 'RGB' or 'L' are supported, got mode {x.mode!r}; convert it first, "
                "e.g. image.convert('RGB')."
            )
        pixels = np.asarray(x)
        return (pixels[..., None] if pixels.ndim == 2 else pixels), x.mode
    if not isinstance(x, np.ndarray):
        raise CompatInputError(
            f"{name}: expecting a PIL image or a numpy.ndarray, got {type(x).__name__}. A torch tensor goes to "
            "augrobust.corrupt(x, name, severity) instead."
        )
    if x.dtype != np.uint8 and x.dtype not in _FLOAT_DTYPES:
        raise CompatInputError(
            f"{name}: expecting dtype uint8 (or a float dtype on the 0..255 scale), got {x.dtype}; convert with "
            "x.astype(np.uint8)."
        )
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[2] not in (1, 3):
        raise CompatInputError(f"{name}: expecting shape (H, W), (H, W, 1) or (H, W, 3), got {x.shape}.")
    return x, None


def _floor_uint8(y: torch.Tensor) -> np.ndarray:
    """Float ``(C, H, W)`` in ``[0, 1]`` -> uint8 ``(H, W, C)`` with the reference's floor."""
    return y.mul(255.0).floor_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy().copy()


def _run(name: str, x: object, severity: object) -> np.ndarray | Image.Image:
    """One per-corruption call of the reference's surface (see the module docstring)."""
    sev = _severity(severity)
    pixels, mode = _as_pixels(x, name)
    if pixels.dtype != np.uint8:
        try:
            check_values(torch.from_numpy(np.asarray(pixels, dtype=np.float64)), f"{name}: x", high=255.0)
        except AugrobustValueError as error:
            raise CompatInputError(str(error)) from None
    gray = pixels.shape[2] == 1
    unit = _to_unit(pixels)
    if name == "jpeg_compression" and gray:
        # The reference codes grayscale as RGB and converts back with PIL's own (rounded) luma.
        rgb = _floor_uint8(_corrupt(unit.repeat(3, 1, 1), name, sev))
        return Image.fromarray(rgb).convert("L")
    if name in _GRAY_AS_RED and gray:
        y = _corrupt(unit.repeat(3, 1, 1), name, sev)[:1]
    else:
        y = _corrupt(unit, name, sev)
    if name in _RETURNS_PIL:
        out = _floor_uint8(y)
        return Image.fromarray(out[..., 0] if gray else out)  # uint8: "L" or "RGB"
    result = y.mul(255.0).permute(1, 2, 0).numpy().copy()
    if mode == "L" or (isinstance(x, np.ndarray) and x.ndim == 2):
        return result[..., 0]
    return result


def _make(name: str) -> Callable[..., np.ndarray | Image.Image]:
    returns = (
        "a PIL image of the input's mode"
        if name in _RETURNS_PIL
        else "a float64 array on the 0..255 scale, of the input's shape (``np.uint8(result)`` gives the image)"
    )

    if name == "elastic_transform":  # the reference names its first argument ``image`` here only

        def corruption(image: np.ndarray | Image.Image, severity: int = 1) -> np.ndarray | Image.Image:
            return _run(name, image, severity)

    else:

        def corruption(x: np.ndarray | Image.Image, severity: int = 1) -> np.ndarray | Image.Image:
            return _run(name, x, severity)

    corruption.__name__ = corruption.__qualname__ = name
    first = "image" if name == "elastic_transform" else "x"
    corruption.__doc__ = f"""``imagecorruptions.{name}``: corrupt one image at a severity in 1..5.

    Args:
        {first}: a PIL image (mode ``"RGB"`` or ``"L"``) or a NumPy array (``uint8``, or float on the 0..255
            scale) of shape ``(H, W, 3)``, ``(H, W, 1)`` or ``(H, W)``.
        severity: an int (Python or NumPy) in 1..5.

    Returns:
        {returns}.

    Example:
        >>> import numpy as np
        >>> from PIL import Image
        >>> out = {name}(Image.fromarray(np.full((32, 32, 3), 100, np.uint8)), severity=np.int64(2))
        >>> np.asarray(out).shape
        (32, 32, 3)
    """
    return corruption


gaussian_noise = _make("gaussian_noise")
shot_noise = _make("shot_noise")
impulse_noise = _make("impulse_noise")
defocus_blur = _make("defocus_blur")
glass_blur = _make("glass_blur")
motion_blur = _make("motion_blur")
zoom_blur = _make("zoom_blur")
snow = _make("snow")
frost = _make("frost")
fog = _make("fog")
brightness = _make("brightness")
contrast = _make("contrast")
elastic_transform = _make("elastic_transform")
pixelate = _make("pixelate")
jpeg_compression = _make("jpeg_compression")
speckle_noise = _make("speckle_noise")
gaussian_blur = _make("gaussian_blur")
spatter = _make("spatter")
saturate = _make("saturate")

#: The nineteen functions in the reference order: ``corruption_tuple[corruption_number]``.
corruption_tuple: tuple[Callable[..., np.ndarray | Image.Image], ...] = tuple(
    globals()[name] for name in CORRUPTION_ORDER
)
#: Each corruption's name -> its function, as ``imagecorruptions.corruption_dict``.
corruption_dict: dict[str, Callable[..., np.ndarray | Image.Image]] = {f.__name__: f for f in corruption_tuple}


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
            ``H, W >= 32``; read-only arrays are fine.
        severity: an int (Python or NumPy) in 1..5.
        corruption_name: one of :func:`get_corruption_names` ``("all")``.
        corruption_number: its position in that list (0..18), used when no name is given.
        generator: optional ``torch.Generator`` (CPU) for reproducible draws.

    Returns:
        ``uint8`` array of shape ``(H, W, 3)``.

    Example:
        >>> import numpy as np
        >>> corrupt(np.zeros((32, 32, 3), np.uint8), severity=3, corruption_number=11).dtype
        dtype('uint8')
    """
    if not isinstance(image, np.ndarray):
        hint = " Convert a PIL image with np.asarray(image)." if isinstance(image, Image.Image) else ""
        raise CompatInputError(f"expecting a numpy.ndarray, got {type(image).__name__}.{hint}")
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
    sev = _severity(severity)
    if corruption_name is None:
        if isinstance(corruption_number, bool) or corruption_number == -1:
            raise AugrobustValueError("either corruption_name or corruption_number must be passed.")
        number = check_count(corruption_number, "corruption_number")
        if number >= len(CORRUPTION_ORDER):
            raise AugrobustValueError(f"corruption_number must be in 0..18, got {number}.")
        corruption_name = CORRUPTION_ORDER[number]
    y = _corrupt(_to_unit(image), corruption_name, sev, generator=generator)
    return _floor_uint8(y)
