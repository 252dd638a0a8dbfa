"""The perturbation registry and the pieces the sequence kernels share.

Every perturbation is a :class:`PerturbationSpec`: its frame count per variant, its difficulty table, a sampler
(all randomness, drawn per image from that image's own generator) and a deterministic batched kernel that turns
``(B, C, H, W)`` uint8 images into ``(B, T, C, H, W)`` uint8 frames. The kernels reproduce the arithmetic of
hendrycks/robustness ``ImageNet-P/create_p/make_{imagenet,tinyimagenet,cifar}_p.py`` (torchvision 0.2-0.4 and
Pillow semantics) step by step, so that a frame is bit-identical to the script's frame before video encoding.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from augrobust.errors import AugrobustValueError

__all__ = [
    "SPECS",
    "VARIANTS",
    "PerturbationSpec",
    "center_crop",
    "old_torchvision_affine_matrix",
    "perturbation_seed",
    "pil_affine",
    "register",
    "to_tensor",
    "to_uint8_trunc",
]

#: The variants and the scripts they follow (crop size of the ImageNet-style ones).
VARIANTS: tuple[str, ...] = ("imagenet", "tinyimagenet", "cifar")

Sampler = Callable[[torch.Tensor, int, str, Sequence[torch.Generator | None]], dict[str, torch.Tensor]]
Kernel = Callable[[torch.Tensor, int, str, dict[str, torch.Tensor]], torch.Tensor]


def _no_params(u: torch.Tensor, difficulty: int, variant: str, generators: Sequence[torch.Generator | None]) -> dict:
    return {}


@dataclass(frozen=True)
class PerturbationSpec:
    """One perturbation: how many frames, which difficulties, how to sample and how to apply.

    Attributes:
        name: the script's name (``gaussian_noise``, ``rotate``, ...).
        split: ``"test"`` (the 10 benchmark perturbations) or ``"validation"`` (the 4 others).
        frames: frame count per variant.
        apply: ``(u, difficulty, variant, params) -> (B, T, C, H, W)`` uint8, ``u`` a ``(B, C, H, W)`` uint8 batch.
        sample: ``(u, difficulty, variant, generators) -> params``; one generator per image.
        geometric: the script applies it to the uncropped image and crops the frames (translate, rotate, ...).
        difficulties: the difficulty levels the scripts define.
    """

    name: str
    split: str
    frames: dict[str, int]
    apply: Kernel
    sample: Sampler = _no_params
    geometric: bool = False
    difficulties: tuple[int, ...] = (1, 2, 3)


#: name -> spec, filled by the perturbation modules on import.
SPECS: dict[str, PerturbationSpec] = {}


def register(spec: PerturbationSpec) -> PerturbationSpec:
    """Add ``spec`` to :data:`SPECS` (import-time registration of each perturbation module)."""
    SPECS[spec.name] = spec
    return spec


def perturbation_seed(seed: int, index: int, perturbation: str, difficulty: int) -> int:
    """The canonical 63-bit seed of one image's sequence.

    ``SHA-256`` of the UTF-8 JSON text ``["augrobust-p", seed, index, perturbation, difficulty]`` (no spaces
    after separators), first 8 bytes big-endian, top bit cleared. It depends only on these four values, never on
    the batch, device, shard or order of work.

    Example:
        >>> perturbation_seed(0, 7, "rotate", 1) == perturbation_seed(0, 7, "rotate", 1)
        True
        >>> perturbation_seed(0, 7, "gaussian_noise", 1) != perturbation_seed(0, 7, "gaussian_noise", 2)
        True
    """
    text = json.dumps(["augrobust-p", int(seed), int(index), str(perturbation), int(difficulty)], separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def to_tensor(u: torch.Tensor) -> torch.Tensor:
    """torchvision's ``ToTensor`` on uint8: ``float32(u) / 255``.

    Example:
        >>> to_tensor(torch.tensor([255], dtype=torch.uint8)).tolist()
        [1.0]
    """
    return u.float().div(255)


def to_uint8_trunc(x: torch.Tensor) -> torch.Tensor:
    """``np.uint8(255 * x)`` / ``ToPILImage``'s ``mul(255).byte()`` for ``x`` in ``[0, 1]``: truncation.

    Example:
        >>> to_uint8_trunc(torch.tensor([0.999, 0.5])).tolist()
        [254, 127]
    """
    return x.mul(255).to(torch.uint8)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision 0.2-0.4 ``CenterCrop(size)``: offsets ``int(round((H - size) / 2))`` (Python rounding).

    Example:
        >>> center_crop(torch.zeros(1, 3, 256, 300), 224).shape
        torch.Size([1, 3, 224, 224])
    """
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise AugrobustValueError(f"cannot center-crop {h}x{w} images to {size}x{size}; give images >= {size} px.")
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]


def old_torchvision_affine_matrix(
    width: int, height: int, angle: float, translate: tuple[float, float], scale: float, shear: float
) -> list[float]:
    """The inverse affine coefficients that torchvision 0.2-0.4 ``functional.affine`` hands to PIL.

    That version keeps the centre at ``(w / 2 + 0.5, h / 2 + 0.5)`` and shears along x by one angle; later
    versions moved both, so the current torchvision does not reproduce the released sequences.

    Example:
        >>> [round(v, 6) + 0.0 for v in old_torchvision_affine_matrix(4, 4, 0.0, (1, 0), 1.0, 0.0)]
        [1.0, 0.0, -1.0, 0.0, 1.0, 0.0]
    """
    cx, cy = width * 0.5 + 0.5, height * 0.5 + 0.5
    a, s = math.radians(angle), math.radians(shear)
    inv_scale = 1.0 / scale
    d = math.cos(a + s) * math.cos(a) + math.sin(a + s) * math.sin(a)
    m = [math.cos(a + s), math.sin(a + s), 0, -math.sin(a), math.cos(a), 0]
    m = [inv_scale / d * v for v in m]
    m[2] += m[0] * (-cx - translate[0]) + m[1] * (-cy - translate[1])
    m[5] += m[3] * (-cx - translate[0]) + m[4] * (-cy - translate[1])
    m[2] += cx
    m[5] += cy
    return m


def pil_affine(u: torch.Tensor, coefficients: Sequence[Sequence[float]], *, bilinear: bool) -> torch.Tensor:
    """Pillow's ``Image.transform(size, AFFINE, coefficients, BILINEAR or NEAREST)`` with fill 0, per frame.

    Output pixel ``(x, y)`` samples the input at ``(a0 (x+.5) + a1 (y+.5) + a2, a3 (x+.5) + a4 (y+.5) + a5)``
    in float64; outside ``[0, W) x [0, H)`` it is 0. Bilinear weights are float64 on edge-clamped neighbours and
    the result is truncated to uint8, as Pillow's ``bilinear_filter32RGB``; nearest takes the pixel the
    coordinate falls in.

    Args:
        u: ``(B, C, H, W)`` uint8 images.
        coefficients: ``T`` rows of 6 coefficients, one per frame (the same for every image).
        bilinear: bilinear (``True``) or nearest (``False``) sampling.

    Returns:
        ``(B, T, C, H, W)`` uint8 frames on ``u``'s device.

    Example:
        >>> u = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
        >>> pil_affine(u, [[1, 0, -1, 0, 1, 0]], bilinear=False)[0, 0, 0, 0].tolist()
        [0, 0, 1, 2]
    """
    b, c, h, w = u.shape
    dev = u.device
    coef = torch.tensor([list(map(float, row)) for row in coefficients], dtype=torch.float64, device=dev)
    xs = (torch.arange(w, dtype=torch.float64, device=dev) + 0.5).view(1, w)
    ys = (torch.arange(h, dtype=torch.float64, device=dev) + 0.5).view(h, 1)
    src = u.reshape(b, c, h * w)  # gathered as uint8, widened after: 8x less memory traffic than float64 gathers
    out = torch.empty((b, len(coef), c, h, w), dtype=torch.uint8, device=dev)
    for t in range(len(coef)):  # frames, not images: a bounded loop that keeps float64 temporaries small
        a0, a1, a2, a3, a4, a5 = coef[t]
        xin = (a0 * xs + a1 * ys) + a2  # Pillow's evaluation order, so the doubles match
        yin = (a3 * xs + a4 * ys) + a5
        valid = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
        if bilinear:
            xm, ym = xin - 0.5, yin - 0.5
            x0, y0 = torch.floor(xm), torch.floor(ym)
            dx, dy = (xm - x0).view(1, 1, -1), (ym - y0).view(1, 1, -1)
            x0, y0 = x0.long(), y0.long()
            xa, xb = x0.clamp(0, w - 1), (x0 + 1).clamp(0, w - 1)
            ya, yb = y0.clamp(0, h - 1), (y0 + 1).clamp(0, h - 1)

            def tap(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
                return src[:, :, (yy * w + xx).reshape(-1)].double()

            p00, p01, p10, p11 = tap(ya, xa), tap(ya, xb), tap(yb, xa), tap(yb, xb)
            v1 = p00 + (p01 - p00) * dx
            v2 = p10 + (p11 - p10) * dx
            v = v1 + (v2 - v1) * dy
            frame = v.to(torch.uint8)  # (UINT8) cast of a value in [0, 255]: truncation
        else:
            xi = torch.floor(xin).long().clamp(0, w - 1)
            yi = torch.floor(yin).long().clamp(0, h - 1)
            frame = src[:, :, (yi * w + xi).reshape(-1)]
        frame = frame.view(b, c, h, w) * valid.view(1, 1, h, w)
        out[:, t] = frame
    return out
