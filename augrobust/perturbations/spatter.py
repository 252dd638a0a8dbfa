"""spatter (validation): ImageNet-C's water drops on a liquid layer that flows down one step per frame.

Script (per image): ``L = gaussian(N(loc, scale), sigma)`` (scikit-image, mode nearest, truncate 4),
``L[L < threshold] = 0``; per frame: the water of ImageNet-C's spatter from ``uint8(L * 255)`` (OpenCV's Canny,
distance transform, equalised histogram, emboss and box blurs, :func:`augrobust.corruptions.spatter.
water_distance_map`), ``m = u8 * dist / max * 0.6`` and ``uint8(clip(x + m * (175, 238, 238) / 255, 0, 1) * 255)``
in float32; then every column of ``L`` is ``np.convolve(column, flow, mode="same")`` (float64, in NumPy's
summation order). The OpenCV chain runs on the host, one image per frame (as in the corruption). A layer with
no liquid left (the script divides by 0 and writes garbage) gets no water.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from augrobust.corruptions.spatter import water_distance_map
from augrobust.functional.filters import gaussian_blur_nearest
from augrobust.perturbations.spec import PerturbationSpec, register

__all__ = ["TABLES", "apply", "flow", "sample"]

#: (loc, scale, blur sigma, threshold, flow kernel) per variant; 31 frames, intensity 0.6.
TABLES = {
    "imagenet": (0.65, 0.27, 3.7, 0.69, (0.05, 0.1, 0.15, 0.7)),
    "tinyimagenet": (0.6, 0.25, 1.75, 0.7, (0.2, 0.8)),
    "cifar": (0.6, 0.265, 1.75, 0.7, (0.2, 0.8)),
}
FRAMES = 31
_WATER = (175 / 255.0, 238 / 255.0, 238 / 255.0)


def sample(
    u: torch.Tensor, difficulty: int, variant: str, generators: Sequence[torch.Generator | None]
) -> dict[str, torch.Tensor]:
    """Standard normals ``(B, H, W)`` float64 of the liquid layer.

    Example:
        >>> sample(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), 1, "cifar", [None, None])["liquid_noise"].shape
        torch.Size([2, 8, 8])
    """
    shape = u.shape[-2:]
    return {
        "liquid_noise": torch.stack(
            [torch.randn(shape, generator=g, device=u.device, dtype=torch.float64) for g in generators]
        )
    }


def flow(layer: torch.Tensor, kernel: Sequence[float]) -> torch.Tensor:
    """``np.convolve(column, kernel, mode="same")`` on every column of a ``(B, H, W)`` float64 layer.

    NumPy sums the products in increasing source row: ``out[i] = sum_j layer[i + s - j] * kernel[j]`` for
    ``j = k-1 .. 0`` with ``s = (k - 1) // 2``, zeros outside.

    Example:
        >>> flow(torch.tensor([[[1.0], [0.0], [0.0]]], dtype=torch.float64), (0.2, 0.8))[0, :, 0].tolist()
        [0.2, 0.8, 0.0]
    """
    k = len(kernel)
    s = (k - 1) // 2
    h = layer.shape[1]
    padded = torch.nn.functional.pad(layer, (0, 0, k, k))
    out = torch.zeros_like(layer)
    for j in range(k - 1, -1, -1):
        shift = s - j  # source row = i + shift
        out = out + padded[:, k + shift : k + shift + h] * kernel[j]
    return out


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The 31 frames of a cropped ``(B, 3, H, W)`` uint8 batch given the liquid draws.

    Example:
        >>> u = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
        >>> apply(u, 1, "cifar", {"liquid_noise": torch.zeros(1, 16, 16, dtype=torch.float64)}).shape
        torch.Size([1, 31, 3, 16, 16])
    """
    loc, scale, sigma, threshold, kernel = TABLES[variant]
    b = u.shape[0]
    liquid = loc + scale * params["liquid_noise"].to(device=u.device, dtype=torch.float64)
    liquid = gaussian_blur_nearest(liquid.unsqueeze(1), sigma, truncate=4.0).squeeze(1)
    liquid = torch.where(liquid < threshold, 0.0, liquid)
    x32 = u.float() / 255
    color = torch.tensor(_WATER, dtype=torch.float64, device=u.device).float().view(1, 3, 1, 1)
    out = torch.empty((b, FRAMES, *u.shape[1:]), dtype=torch.uint8, device=u.device)
    for i in range(FRAMES):  # frames, not images
        # float -> uint8 as NumPy's astype on x86: truncation, values >= 256 wrap
        u8 = (liquid * 255).to(torch.int64).remainder(256).to(torch.uint8)
        dist = torch.from_numpy(np.stack([water_distance_map(img) for img in u8.cpu().numpy()])).to(u.device)
        m = u8.float() * dist
        peak = m.amax(dim=(1, 2), keepdim=True)
        m = torch.where(peak > 0, m / torch.where(peak > 0, peak, 1.0), 0.0) * torch.tensor(0.6, dtype=torch.float32)
        out[:, i] = ((x32 + m.unsqueeze(1) * color).clamp(0, 1) * 255).to(torch.uint8)
        liquid = flow(liquid, kernel)
    return out


SPEC = register(PerturbationSpec("spatter", "validation", dict.fromkeys(TABLES, FRAMES), apply, sample))
