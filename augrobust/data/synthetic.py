"""SyntheticShapes: a built-in, procedural 10-class RGB dataset for quick robustness experiments.

Each image shows one class object (a shape, or a disk filled with a fine texture) at a random position, scale,
rotation and colour on a cluttered background (a colour gradient plus soft blobs). Item ``i`` is a pure
function of ``(seed, split, i)``: it does not depend on the order of access or on DataLoader workers. The
three textured classes (stripes, checker, dots) have a period of 3.5 to 5 pixels, so blur turns them into
plain disks and noise hides them: a model trained without augmentation loses accuracy under corruption,
which is what a robustness experiment needs to measure.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from augrobust.errors import AugrobustTypeError, AugrobustValueError

__all__ = ["SYNTHETIC_CLASSES", "SyntheticShapes", "render_synthetic_image"]

#: Class names, in label order.
SYNTHETIC_CLASSES: tuple[str, ...] = (
    "disk", "square", "triangle", "cross", "ring", "star", "half_disk", "stripes", "checker", "dots",
)  # fmt: skip

# Render at twice the resolution and average 2x2 blocks: anti-aliased edges.
_SUPERSAMPLE = 2
# Distinct seed-sequence keys make the two splits independent streams: disjoint by construction.
_SPLIT_KEY = {True: 0x7A41, False: 0x7E57}
_LUMA = np.array([0.299, 0.587, 0.114])


def _shape_mask(label: int, px: np.ndarray, py: np.ndarray, tx: np.ndarray, ty: np.ndarray, period: float) -> np.ndarray:
    """Coverage mask of the class object; (px, py) are object coordinates (radius 1), (tx, ty) the same
    rotated frame in image units, used for textures whose period is fixed in pixels."""
    rho = np.hypot(px, py)
    if label == 0:  # disk
        return rho <= 1.0
    if label == 1:  # square
        return np.maximum(np.abs(px), np.abs(py)) <= 0.8
    if label == 2:  # equilateral triangle, circumradius 1
        inside = np.ones_like(px, dtype=bool)
        for angle in (-np.pi / 2, np.pi / 6, 5 * np.pi / 6):
            inside &= px * np.cos(angle) + py * np.sin(angle) <= 0.5
        return inside
    if label == 3:  # plus-shaped cross
        return ((np.abs(px) <= 0.3) & (np.abs(py) <= 1.0)) | ((np.abs(py) <= 0.3) & (np.abs(px) <= 1.0))
    if label == 4:  # ring
        return (rho <= 1.0) & (rho >= 0.55)
    if label == 5:  # five-pointed star-like flower
        phi = np.arctan2(py, px)
        return rho <= 0.6 + 0.4 * np.cos(5 * phi)
    if label == 6:  # half disk
        return (rho <= 1.0) & (py >= 0.0)
    disk = rho <= 1.0
    w = 2 * np.pi / period
    if label == 7:  # stripes
        return disk & (np.sin(w * tx) > 0)
    if label == 8:  # checker
        return disk & (np.sin(w * tx) * np.sin(w * ty) > 0)
    # label 9: a grid of dots
    cx = np.mod(tx, period) - period / 2
    cy = np.mod(ty, period) - period / 2
    return disk & (np.hypot(cx, cy) <= 0.32 * period)


def _contrasting_colour(rng: np.random.Generator, against: np.ndarray, min_luma_gap: float) -> np.ndarray:
    for _ in range(16):
        c = rng.uniform(0.0, 1.0, 3)
        if abs(float(c @ _LUMA) - float(against @ _LUMA)) >= min_luma_gap:
            return c
    return np.zeros(3) if float(against @ _LUMA) > 0.5 else np.ones(3)


def render_synthetic_image(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    """Draw one ``(size, size, 3)`` uint8 image of class ``label`` with the random draws of ``rng``.

    Example:
        >>> import numpy as np
        >>> render_synthetic_image(np.random.default_rng(0), 3, 32).shape
        (32, 32, 3)
    """
    n = size * _SUPERSAMPLE
    # Pixel-centre coordinates in [-1, 1].
    axis = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    y, x = np.meshgrid(axis, axis, indexing="ij")

    # Background: a colour with a linear gradient and a few soft blobs of other colours (clutter).
    bg = rng.uniform(0.0, 1.0, 3)
    grad_dir = rng.uniform(0, 2 * np.pi)
    grad = (x * np.cos(grad_dir) + y * np.sin(grad_dir))[..., None] * rng.uniform(-0.25, 0.25, 3)
    img = bg + grad
    for _ in range(int(rng.integers(2, 5))):
        centre = rng.uniform(-1.0, 1.0, 2)
        width = rng.uniform(0.15, 0.5)
        blob = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * width**2))
        img = img + blob[..., None] * (rng.uniform(0.0, 1.0, 3) - bg) * rng.uniform(0.2, 0.5)
    img = np.clip(img, 0.0, 1.0)

    # Object: scale (radius in image half-widths), position kept inside the frame, rotation, colours.
    radius = rng.uniform(0.38, 0.62)
    cx, cy = rng.uniform(-(1 - radius * 0.9), 1 - radius * 0.9, 2)
    theta = rng.uniform(0, 2 * np.pi)
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    tx = (x - cx) * cos_t + (y - cy) * sin_t
    ty = -(x - cx) * sin_t + (y - cy) * cos_t
    period = rng.uniform(3.5, 5.0) * 2.0 / size  # texture period in pixels -> image units
    fg = _contrasting_colour(rng, bg, 0.3)
    mask = _shape_mask(label, tx / radius, ty / radius, tx, ty, period)
    if label >= 7:
        # Textured disks: the disk is filled with a second colour, the texture drawn in fg on it.
        fill = _contrasting_colour(rng, fg, 0.3)
        disk = np.hypot(tx, ty) <= radius
        img = np.where(disk[..., None], fill, img)
    img = np.where(mask[..., None], fg, img)

    img = img.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


class SyntheticShapes(Dataset[tuple[torch.Tensor, int]]):
    """A procedural 10-class RGB dataset: items are ``(uint8 tensor (3, size, size), int label)``.

    Labels cycle through the 10 classes (``label = index % 10``), so every split is balanced. Item ``i`` is
    rendered from a NumPy generator seeded with ``(seed, split, i)``: the same whatever the access order or
    the number of workers, and the train and test splits are independent streams.

    Args:
        n: number of images.
        seed: dataset seed.
        train: the training split (else the test split).
        size: image side in pixels (>= 8).

    Example:
        >>> from augrobust.data import SyntheticShapes
        >>> ds = SyntheticShapes(20, seed=0, train=False)
        >>> image, label = ds[13]
        >>> tuple(image.shape), image.dtype, label, ds.classes[label]
        ((3, 32, 32), torch.uint8, 3, 'cross')
        >>> bool((ds[13][0] == image).all())
        True
    """

    classes: tuple[str, ...] = SYNTHETIC_CLASSES

    def __init__(self, n: int, *, seed: int = 0, train: bool = True, size: int = 32) -> None:
        for arg, value, low in (("n", n, 0), ("seed", seed, 0), ("size", size, 8)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise AugrobustTypeError(f"{arg} must be an int, got {value!r}.")
            if value < low:
                raise AugrobustValueError(f"{arg} must be >= {low}, got {value}.")
        self.n, self.seed, self.train, self.size = int(n), int(seed), bool(train), int(size)

    @property
    def targets(self) -> list[int]:
        """The label of every image, in index order (as torchvision datasets expose them)."""
        return [i % len(SYNTHETIC_CLASSES) for i in range(self.n)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if isinstance(index, torch.Tensor):
            index = int(index)
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for SyntheticShapes of length {self.n}.")
        index %= self.n
        label = index % len(SYNTHETIC_CLASSES)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _SPLIT_KEY[self.train], index]))
        hwc = render_synthetic_image(rng, label, self.size)
        return torch.from_numpy(hwc).permute(2, 0, 1).contiguous(), label

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"SyntheticShapes(n={self.n}, seed={self.seed}, split={split}, size={self.size})"
