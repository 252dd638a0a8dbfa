"""jpeg_compression: the Pillow codec against the reference, no deprecated codec, and its autograd contract.

The oracle is ``imagecorruptions.corrupt(..., corruption_name="jpeg_compression")`` (tests/oracle.py):
real photographs and random arrays at square, wide, tall, odd and 2-D grayscale sizes, all severities.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import augrobust
from augrobust.compat import corrupt as compat_corrupt
from augrobust.corruptions.jpeg_compression import TABLES, jpeg_compression
from augrobust.functional.jpeg import jpeg_roundtrip, jpeg_roundtrip_float
from tests.oracle import oracle_corrupt, photo

SIZES = [(224, 224), (32, 32), (37, 53), (1000, 37), (181, 64), (33, 512), (97, 181)]


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(9)
    images = {f"{name}{h}x{w}": photo(name, (h, w)) for name in ("astronaut", "rocket") for h, w in SIZES}
    images.update({f"coffee{h}x{w}": photo("coffee", (h, w)) for h, w in [(64, 33), (600, 37)]})
    for h, w in [(32, 32), (224, 224), (37, 53), (600, 37)]:
        images[f"random{h}x{w}"] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        images[f"gray{h}x{w}"] = rng.integers(0, 256, (h, w), dtype=np.uint8)  # 2-D: the reference stacks it
    return images


IMAGES = _images()


def _tensor(img: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
    return torch.from_numpy(img).permute(2, 0, 1).to(dtype) / 255


@pytest.mark.parametrize("key", list(IMAGES))
def test_equals_the_reference_bit_for_bit(key: str) -> None:
    img = IMAGES[key]
    for severity in range(1, 6):
        ref = oracle_corrupt(img, "jpeg_compression", severity)
        assert np.array_equal(compat_corrupt(img, severity, "jpeg_compression"), ref), severity
        for dtype in (torch.float64, torch.float32):  # exact in float32 too: k / 255 round-trips
            y = augrobust.corrupt(_tensor(img, dtype), "jpeg_compression", severity)
            ours = np.floor(y.permute(1, 2, 0).double().numpy() * 255).astype(np.uint8)
            assert np.array_equal(ours, ref), (severity, dtype)


def test_uint8_batch_mixing_severities_equals_the_reference() -> None:
    imgs = [photo(name, (48, 80)) for name in ("astronaut", "coffee", "chelsea", "rocket", "astronaut")]
    x = torch.stack([torch.from_numpy(i).permute(2, 0, 1) for i in imgs])
    severity = torch.tensor([1, 2, 3, 4, 5])
    y = augrobust.corrupt(x, "jpeg_compression", severity)
    for i, img in enumerate(imgs):
        ref = oracle_corrupt(img, "jpeg_compression", i + 1)
        assert np.array_equal(y[i].permute(1, 2, 0).numpy(), ref), i


def _pillow(img: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


@pytest.mark.parametrize("preset", sorted(TABLES))
def test_every_preset_quality_equals_pillow(preset: str) -> None:
    """The oracle only has the ImageNet qualities; the others are checked against Pillow's own calls."""
    imgs = [photo("astronaut", (32, 32)), photo("chelsea", (64, 64)), photo("coffee", (37, 53))]
    for img in imgs:
        x = torch.from_numpy(img).permute(2, 0, 1)[None]
        for severity, quality in enumerate(TABLES[preset], start=1):
            y = augrobust.corrupt(x, "jpeg_compression", severity, preset=preset)
            assert np.array_equal(y[0].permute(1, 2, 0).numpy(), _pillow(img, quality)), (preset, severity)


def test_any_memory_layout_and_batch_order() -> None:
    x = torch.from_numpy(np.stack([photo(n, (40, 56)) for n in ("rocket", "coffee", "chelsea")]))  # B, H, W, C
    quality = torch.tensor([7, 80, 25])
    strided = x.permute(0, 3, 1, 2)  # a channels_last view
    y = jpeg_roundtrip(strided, quality)
    assert y.is_contiguous() and y.dtype == torch.uint8
    for i in range(3):
        assert np.array_equal(y[i].permute(1, 2, 0).numpy(), _pillow(x[i].numpy(), int(quality[i])))
    assert torch.equal(jpeg_roundtrip(strided.contiguous(), quality), y)
    assert torch.equal(jpeg_roundtrip_float(strided.double() / 255, quality), y.double() / 255)


def test_empty_batch() -> None:
    x = torch.rand(0, 3, 32, 32)
    assert augrobust.corrupt(x, "jpeg_compression", 3).shape == (0, 3, 32, 32)


def test_no_deprecated_codec_and_no_warning() -> None:
    x = torch.rand(2, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        augrobust.corrupt(x, "jpeg_compression", 2)
        compat_corrupt(photo("rocket", (32, 32)), 2, "jpeg_compression")
    import augrobust.functional.jpeg as module

    assert "torchvision" not in module.__dict__ and not any(
        getattr(v, "__module__", "").startswith("torchvision") for v in vars(module).values()
    )


# ---------------------------------------------------------------------------------------------- autograd
# The real codec is not differentiable: its result carries no graph (requires_grad False) and it still runs
# on inputs that require grad; kornia's model (differentiable=True) is the gradient path.


def test_runs_on_an_input_that_requires_grad_and_says_it_has_no_graph() -> None:
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    expected = augrobust.corrupt(x, "jpeg_compression", 3)
    leaf = x.clone().requires_grad_(True)
    y = augrobust.corrupt(leaf, "jpeg_compression", 3)
    assert torch.equal(y, expected)
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()  # torch's own error: no silent zero gradient
    assert leaf.grad is None


def test_kernel_and_transform_on_a_non_leaf_that_requires_grad() -> None:
    base = torch.rand(1, 3, 32, 32, requires_grad=True)
    x = base * 0.5 + 0.25  # a non-leaf tensor with a graph
    y = jpeg_compression(x, torch.tensor([2]), {}, preset="imagenet", reference="imagecorruptions")
    assert not y.requires_grad and y.dtype == x.dtype
    out = augrobust.Corruption("jpeg_compression", 2)(x)
    assert torch.equal(out, y) and not out.requires_grad


def test_grayscale_and_uint8_inputs_with_grad_mode_on() -> None:
    gray = torch.rand(1, 1, 32, 32, requires_grad=True)
    y = augrobust.corrupt(gray, "jpeg_compression", 5)
    assert y.shape == (1, 1, 32, 32) and not y.requires_grad


def test_differentiable_option_is_the_gradient_path() -> None:
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    y = jpeg_compression(
        x, torch.tensor([1, 5]), {}, preset="imagenet", reference="imagecorruptions", differentiable=True
    )
    assert y.requires_grad
    y.sum().backward()
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)
