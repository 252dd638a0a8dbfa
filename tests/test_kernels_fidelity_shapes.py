"""Fidelity of every deterministic corruption at tall, wide, square, odd and 2-D grayscale sizes.

The family tests compare at a few sizes (mostly square or wide); issue 9 found pixelate off on tall images
(Pillow >= 13's pass order) and defocus_blur off on grayscale photos (kernel taps one float32 ulp off),
so here every deterministic corruption meets the oracle at shapes of every kind, on real photographs and
random arrays. The float64 path floored to uint8 must equal imagecorruptions bit for bit. One severity per
shape keeps this quick (each corruption still meets all five; the family tests cover all five per image).
The 2-D grayscale case goes in as the oracle takes it (``(H, W)``, which it replicates to RGB); augrobust
gets the replicated RGB image (what ``augrobust.compat`` does) and, for per-channel corruptions, also the
single channel.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import oracle_corrupt, photo

import augrobust
from augrobust.corruptions import get_spec

DETERMINISTIC = (
    "gaussian_blur", "defocus_blur", "zoom_blur", "brightness", "contrast", "saturate", "pixelate",
    "jpeg_compression",
)  # fmt: skip

# (H, W), photo, severity: tall, wide, square, odd both ways, tall and odd; severities cycle 1..5.
SHAPES = (
    ((181, 64), "astronaut", 1),
    ((41, 150), "coffee", 2),
    ((64, 64), "chelsea", 3),
    ((45, 71), "rocket", 4),
    ((97, 37), "coffee", 5),
)


def _floor64(img: np.ndarray, name: str, severity: int) -> np.ndarray:
    """augrobust's float64 path on a uint8 HWC (or HW) image, floored as the reference floors."""
    x = torch.from_numpy(np.ascontiguousarray(img)).to(torch.float64) / 255
    x = x.permute(2, 0, 1) if x.ndim == 3 else x[None]
    y = augrobust.corrupt(x, name, severity)
    return np.floor(y.permute(1, 2, 0).numpy() * 255).astype(np.int64)


def _random(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("case", range(len(SHAPES)))
def test_rgb_photo_and_random_at_every_kind_of_shape(name: str, case: int) -> None:
    (h, w), photo_name, severity = SHAPES[case]
    for label, img in (("photo", photo(photo_name, (h, w))), ("random", _random((h, w, 3), case))):
        ref = oracle_corrupt(img, name, severity).astype(np.int64)
        got = _floor64(img, name, severity)
        assert got.shape == ref.shape
        differ = got != ref
        assert not differ.any(), (
            f"{name} s{severity} {label} {h}x{w}: {int(differ.sum())} values differ "
            f"(max {np.abs(got - ref).max()} levels)"
        )


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("size", [(53, 40), (40, 97)])
def test_2d_grayscale(name: str, size: tuple[int, int]) -> None:
    severity = 1 + (size[0] + len(name)) % 5  # spread the severities over names and sizes
    gray_photo = np.asarray(photo("astronaut", size).mean(axis=2), dtype=np.uint8)
    for label, gray in (("photo", gray_photo), ("random", _random(size, 7))):
        ref = oracle_corrupt(gray, name, severity).astype(np.int64)  # (H, W, 3): the oracle replicates
        got = _floor64(np.repeat(gray[..., None], 3, axis=2), name, severity)
        np.testing.assert_array_equal(got, ref, err_msg=f"{name} s{severity} {label} grayscale as RGB")
        if get_spec(name).per_channel:
            one = _floor64(gray, name, severity)
            np.testing.assert_array_equal(one[..., 0], ref[..., 0], err_msg=f"{name} {label} one channel")
