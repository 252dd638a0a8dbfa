"""ImageNet-P / Tiny-ImageNet-P / CIFAR-10-P perturbation sequences, batched, seeded, on any device.

Each perturbation turns an image into a short video. :func:`perturb` takes a ``(B, C, H, W)`` batch and returns
``(B, T, C, H, W)`` frames on the same device, each frame equal to the frame of hendrycks/robustness
``ImageNet-P/create_p/make_*_p.py`` for the same image and the same random draws (before its video encoding).

Input: the image as the script holds it before cropping: for ``variant="imagenet"`` the ``Resize(256)`` image
(frames are center-cropped to ``crop=224``; translate, rotate, scale, shear and zoom_blur see the pixels outside
the crop, as in the script), for ``"tinyimagenet"`` the ``Resize(64)`` image (crop 64), for ``"cifar"`` the 32 px
image (no crop). A batch must share one size: to stay exact on non-square photographs pass them one at a time,
or center-crop the batch to a square of at least ``crop / cos(15 deg) + ...`` pixels (256 keeps rotate exact
except the frame corners).

Seeding: image ``k`` of a data set draws from a generator seeded with
``perturbation_seed(seed, k, name, difficulty)`` (SHA-256 of those fields), so frames never depend on batch size,
order or device count.

Example:
    >>> import torch
    >>> from augrobust.perturbations import perturb
    >>> x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    >>> perturb(x, "translate", 1, variant="cifar").shape
    torch.Size([2, 16, 3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from augrobust._checks import check_choice
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.perturbations import (  # noqa: F401  (imported for registration)
    brightness,
    gaussian_blur,
    gaussian_noise,
    motion_blur,
    rotate,
    scale,
    shear,
    shot_noise,
    snow,
    spatter,
    speckle_noise,
    tilt,
    translate,
    zoom_blur,
)
from augrobust.perturbations.spec import SPECS, VARIANTS, PerturbationSpec, center_crop, perturbation_seed

__all__ = [
    "CROPS",
    "TEST_PERTURBATIONS",
    "VALIDATION_PERTURBATIONS",
    "VARIANTS",
    "frame_count",
    "get_perturbation_names",
    "get_spec",
    "perturb",
    "perturbation_generators",
    "perturbation_seed",
]

#: The 10 test and 4 validation perturbations of ImageNet-P (test.py's choices).
TEST_PERTURBATIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow",
    "brightness", "translate", "rotate", "tilt", "scale",
)  # fmt: skip
#: The hold-out perturbations (validation split), as ImageNet-P's validation set.
VALIDATION_PERTURBATIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "shear")

#: Default output crop per variant (``None``: the frames keep the input size).
CROPS: dict[str, int | None] = {"imagenet": 224, "tinyimagenet": 64, "cifar": None}


def get_perturbation_names(split: str = "all") -> list[str]:
    """The implemented perturbations of ``split`` (``"test"``, ``"validation"`` or ``"all"``), in the paper's order.

    Example:
        >>> get_perturbation_names("validation")
        ['speckle_noise', 'gaussian_blur', 'spatter', 'shear']
    """
    check_choice(split, "split", ("test", "validation", "all"))
    order = {"test": TEST_PERTURBATIONS, "validation": VALIDATION_PERTURBATIONS}
    names = order[split] if split != "all" else TEST_PERTURBATIONS + VALIDATION_PERTURBATIONS
    return [n for n in names if n in SPECS]


def get_spec(name: str) -> PerturbationSpec:
    """The registered spec of ``name``.

    Example:
        >>> get_spec("rotate").geometric
        True
    """
    if name not in SPECS:
        raise AugrobustValueError(f"unknown perturbation {name!r}; available: {sorted(SPECS)}.")
    return SPECS[name]


def frame_count(name: str, variant: str = "imagenet") -> int:
    """Frames per sequence.

    Example:
        >>> frame_count("translate", "imagenet"), frame_count("translate", "cifar")
        (41, 16)
    """
    check_choice(variant, "variant", VARIANTS)
    return get_spec(name).frames[variant]


def perturbation_generators(
    name: str, difficulty: int, indices: Sequence[int], *, seed: int = 0, device: torch.device | str = "cpu"
) -> list[torch.Generator]:
    """One generator per image, seeded with :func:`perturbation_seed`.

    Example:
        >>> len(perturbation_generators("shot_noise", 1, [0, 1, 2]))
        3
    """
    gens = []
    for k in indices:
        g = torch.Generator(device=device)
        g.manual_seed(perturbation_seed(seed, int(k), name, difficulty))
        gens.append(g)
    return gens


def _as_uint8(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise AugrobustTypeError(f"x must be a torch.Tensor (B, C, H, W), got {type(x).__name__}.")
    if x.ndim != 4 or x.shape[1] != 3:
        raise AugrobustValueError(
            f"x must be a (B, 3, H, W) RGB batch, got shape {tuple(x.shape)}; convert grayscale with "
            "x.expand(-1, 3, -1, -1) as the scripts' .convert('RGB') does."
        )
    if x.dtype == torch.uint8:
        return x
    if x.is_floating_point():
        # The scripts start from 8-bit images; float input in [0, 1] is rounded to its uint8 image first.
        return (x.clamp(0, 1) * 255).round().to(torch.uint8)
    raise AugrobustTypeError(f"x must be uint8 or floating point in [0, 1], got {x.dtype}.")


def perturb(
    x: torch.Tensor,
    name: str,
    difficulty: int = 1,
    *,
    variant: str = "imagenet",
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    crop: int | None | str = "auto",
) -> torch.Tensor:
    """The perturbation sequence of each image: ``(B, C, H, W)`` -> ``(B, T, C, crop, crop)``.

    Args:
        x: uint8 images (or float in ``[0, 1]``, rounded to uint8 first), uncropped as described in the module.
        name: a perturbation of :func:`get_perturbation_names`.
        difficulty: 1, 2 or 3. For the noise sequences it picks the noise level; the other sequences are the
            same at every difficulty (the test script strides them).
        variant: ``"imagenet"`` (224), ``"tinyimagenet"`` (64) or ``"cifar"`` (32) script.
        generator: one generator for the whole batch (drawn image after image), one per image (canonical
            seeding: :func:`perturbation_generators`), or ``None`` for torch's global generator.
        crop: output size; ``"auto"`` takes :data:`CROPS` of the variant, ``None`` keeps the input size.

    Returns:
        ``(B, T, C, H', W')`` frames with the input's dtype (float frames are ``uint8 / 255``) and device.

    Example:
        >>> import torch
        >>> x = torch.randint(0, 256, (2, 3, 256, 256), dtype=torch.uint8)
        >>> perturb(x, "gaussian_noise", 2, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 31, 3, 224, 224])
    """
    spec = get_spec(name)
    check_choice(variant, "variant", VARIANTS)
    if difficulty not in spec.difficulties:
        raise AugrobustValueError(f"difficulty must be one of {spec.difficulties}, got {difficulty!r}.")
    u = _as_uint8(x)
    size = CROPS[variant] if crop == "auto" else crop
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise AugrobustValueError(f"crop must be a positive int, None or 'auto', got {crop!r}.")
        if size > min(u.shape[-2:]):
            raise AugrobustValueError(
                f"the {variant} variant crops frames to {size} px but the images are {tuple(u.shape[-2:])}; "
                "pass the uncropped images, or crop=None to keep their size."
            )
    b = u.shape[0]
    if generator is None or isinstance(generator, torch.Generator):
        gens: list[torch.Generator | None] = [generator] * b
    else:
        gens = list(generator)
        if len(gens) != b or not all(isinstance(g, torch.Generator) for g in gens):
            raise AugrobustValueError(f"generator must be one torch.Generator or {b} of them (one per image).")
    if not spec.geometric and size is not None:
        u = center_crop(u, size)
    frames = spec.apply(u, difficulty, variant, spec.sample(u, difficulty, variant, gens))
    if spec.geometric and size is not None:
        frames = center_crop(frames, size)
    return frames if x.dtype == torch.uint8 else frames.to(x.dtype) / 255
