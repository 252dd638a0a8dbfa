"""tilt (test): ``cv2.warpPerspective`` of the uncropped image by a camera tilt of ``phi = theta = k (i - 15)`` deg.

The script builds ``P2 @ T @ RX @ RY @ P1`` (focal length ``sqrt(w^2 + h^2)``) per frame and warps with OpenCV's
default bilinear interpolation and a black constant border, then center-crops (ImageNet, Tiny-ImageNet). The
kernel reproduces OpenCV's fixed-point warp as of OpenCV 3.x-4.10 (what the scripts ran): the inverse map per
pixel in float64 in OpenCV's 32 x 32 output blocks, coordinates rounded to 1/32 pixel, integer bilinear weights
``(32 - a) (32 - b) * 32`` ... summing to 2^15, ``(sum + 2^14) >> 15``. OpenCV 4.11+ switched to floating-point
interpolation; against it frames differ by a few grey levels (docs/imagenet_p.md gives the measured bound).
"""

from __future__ import annotations

import numpy as np
import torch

from augrobust.perturbations.spec import PerturbationSpec, register

__all__ = ["FACTORS", "apply", "tilt_matrix"]

#: Degrees of tilt per frame step: ``phi = theta = factor * (i - 15)``.
FACTORS = {"imagenet": 1.0, "tinyimagenet": 1.0, "cifar": 0.75}
FRAMES = 31


def tilt_matrix(width: int, height: int, degrees: float) -> np.ndarray:
    """The script's forward 3x3 perspective matrix (NumPy float64, the script's product order).

    Example:
        >>> tilt_matrix(32, 32, 0.0).shape
        (3, 3)
    """
    w, h = width, height
    phi, theta = np.deg2rad(degrees), np.deg2rad(degrees)
    f = np.sqrt(w**2 + h**2)
    p1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]])
    rx = np.array(
        [[1, 0, 0, 0], [0, np.cos(theta), -np.sin(theta), 0], [0, np.sin(theta), np.cos(theta), 0], [0, 0, 0, 1]]
    )
    ry = np.array([[np.cos(phi), 0, -np.sin(phi), 0], [0, 1, 0, 0], [np.sin(phi), 0, np.cos(phi), 0], [0, 0, 0, 1]])
    t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
    p2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]])
    return p2 @ t @ rx @ ry @ p1


def _warp(u: torch.Tensor, inverse: np.ndarray) -> torch.Tensor:
    """OpenCV (<= 4.10) ``warpPerspective`` INTER_LINEAR, BORDER_CONSTANT 0, output size = input size."""
    b, c, h, w = u.shape
    dev = u.device
    m = [float(v) for v in inverse.reshape(-1)]
    bh0 = min(16, h)
    bw0 = min(1024 // bh0, w)  # OpenCV's block width: x splits into a block start and an offset
    ys = torch.arange(h, dtype=torch.float64, device=dev).view(h, 1)
    xi = torch.arange(w, device=dev)
    xb = ((xi // bw0) * bw0).double().view(1, w)
    x1 = (xi % bw0).double().view(1, w)
    x0 = (m[0] * xb + m[1] * ys) + m[2]
    y0 = (m[3] * xb + m[4] * ys) + m[5]
    w0 = (m[6] * xb + m[7] * ys) + m[8]
    den = w0 + m[6] * x1
    scale = torch.where(den != 0, 32.0 / den, torch.zeros((), dtype=torch.float64, device=dev))
    limit = float(2**31 - 1)
    fx = ((x0 + m[0] * x1) * scale).clamp(-limit - 1, limit)
    fy = ((y0 + m[3] * x1) * scale).clamp(-limit - 1, limit)
    big_x, big_y = torch.round(fx).long(), torch.round(fy).long()  # cvRound: nearest, ties to even
    sx, sy = big_x >> 5, big_y >> 5
    ax, ay = big_x & 31, big_y & 31
    weights = ((32 - ay) * (32 - ax) * 32, (32 - ay) * ax * 32, ay * (32 - ax) * 32, ay * ax * 32)
    flat = u.reshape(b, c, h * w)
    acc = torch.zeros((b, c, h * w), dtype=torch.int32, device=dev)  # at most 255 * 2^15: fits in int32
    for (dy, dx), wt in zip(((0, 0), (0, 1), (1, 0), (1, 1)), weights):
        yy, xx = sy + dy, sx + dx
        inside = ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)).reshape(-1)
        idx = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).reshape(-1)
        acc += flat[:, :, idx].int() * (wt.reshape(-1) * inside).int()
    return ((acc + (1 << 14)) >> 15).clamp(0, 255).to(torch.uint8).view(b, c, h, w)


def apply(u: torch.Tensor, difficulty: int, variant: str, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The 31 frames of an uncropped ``(B, C, H, W)`` uint8 batch.

    Example:
        >>> apply(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), 1, "cifar", {}).shape
        torch.Size([1, 31, 3, 32, 32])
    """
    h, w = u.shape[-2:]
    frames = []
    for i in range(FRAMES):  # frames, not images
        forward = tilt_matrix(w, h, FACTORS[variant] * (i - 15))
        frames.append(_warp(u, np.linalg.inv(forward)))  # OpenCV inverts the map (LU) before warping
    return torch.stack(frames, dim=1)


SPEC = register(PerturbationSpec("tilt", "test", dict.fromkeys(FACTORS, FRAMES), apply, geometric=True))
