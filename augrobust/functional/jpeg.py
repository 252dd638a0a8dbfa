"""JPEG round trips: the real codec (libjpeg through Pillow) or kornia's differentiable model.

The ImageNet-C ``jpeg_compression`` corruption saves a uint8 PIL image as JPEG at a given quality
(libjpeg defaults: 4:2:0 chroma subsampling, standard tables, islow DCT) and decodes it again. The real
round trip here makes the same two Pillow calls, so it is bit-identical to the reference by construction,
with whatever libjpeg build Pillow ships.

Why Pillow (measured on the 2-core CPU of the dev machine, one thread, astronaut photo, quality 15,
best of 5 interleaved rounds; bit identity against ``imagecorruptions.corrupt(..., "jpeg_compression")``
on 210 cases: 4 photographs at full size and 7 sizes (tall, wide, odd, 32x32), random RGB and
grayscale-stacked arrays, 5 severities each, plus 240 cases at the other presets' qualities):

* Pillow: 0 mismatches; ~130-150 us per 32x32 image, ~360-450 us per 224x224 image.
* torchvision.io (the previous codec): 0 mismatches; ~51 us and ~400 us; deprecated since torchvision 0.29.
* TorchCodec 0.17: 0 mismatches; ~41 us and ~270 us.
* simplejpeg 1.9: 409 of 450 cases differ (its TurboJPEG encoder writes other coefficients even with
  4:2:0 and the accurate DCT; its decoder alone is exact); ~15 us and ~190 us.

TorchCodec is the faster exact codec, but each release is built against one torch minor version and
does not declare it (a mismatch fails at import), and its JPEG encoder only exists since 0.16, which would
pin this library to the newest torch; Pillow is already a dependency, is the reference's own codec (exact
by construction, on any Pillow version the reference also runs on) and has a stable API. Its cost is
Python overhead per image (~100 us, so about 3x at 32x32 and 1.2x at 224x224, for the one corruption in
nineteen that uses it); the images of a batch are coded on torch's CPU threads
(:func:`augrobust.functional.host.host_map`), as libjpeg runs without the GIL.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import torch
from PIL import Image

from augrobust.errors import AugrobustValueError
from augrobust.functional.host import host_map

__all__ = [
    "jpeg_roundtrip",
    "jpeg_roundtrip_differentiable",
    "jpeg_roundtrip_float",
    "quantize_float",
    "quantize_uint8",
]


def quantize_float(x: torch.Tensor) -> torch.Tensor:
    """Float ``[0, 1]`` to the integers ``round(255 x)`` in 0..255, in ``x``'s dtype (a new tensor).

    Example:
        >>> quantize_float(torch.tensor([0.0, 0.5, 1.0])).tolist()
        [0.0, 128.0, 255.0]
    """
    return x.mul(255.0).round_().clamp_(0.0, 255.0)


def quantize_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float ``[0, 1]`` to uint8 with ``round(255 x)`` (exact for ``k / 255`` inputs).

    Example:
        >>> quantize_uint8(torch.tensor([0.0, 0.5, 1.0])).tolist()
        [0, 128, 255]
    """
    return quantize_float(x).to(torch.uint8)


def _code_one(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Save one uint8 ``(H, W, 3)`` array as JPEG with Pillow and decode it: the reference's two calls."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.array(decoded)  # a writable copy: torch.from_numpy warns on Pillow's read-only buffer


def _code_into(pixels: torch.Tensor, quality: int) -> None:
    """Code one contiguous uint8 ``(C, H, W)`` CPU image and write the decoded image back into it.

    libjpeg reads and writes interleaved pixels: OpenCV's ``merge`` / ``split`` interleave and de-interleave
    the planes (several times faster than torch's transposing copies).
    """
    planes = [plane.numpy() for plane in pixels]
    decoded = _code_one(cv2.merge(planes), quality)
    cv2.split(decoded.reshape(*decoded.shape[:2], -1), planes)  # into the planes, in place


def _qualities(quality: torch.Tensor, batch: int) -> list[int]:
    values = quality.to("cpu").tolist()  # the one host sync: the codec is host code
    if len(values) != batch:
        raise AugrobustValueError(f"need one JPEG quality per image: got {len(values)} for a batch of {batch}.")
    return [int(q) for q in values]


def jpeg_roundtrip(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Encode and decode a uint8 ``(B, 3, H, W)`` batch as baseline JPEG, one quality per image.

    The codec runs on the CPU (libjpeg through Pillow, the reference's own calls), whatever the device of
    ``x``: CUDA's nvJPEG is a different encoder. One host sync reads the qualities. The result never
    carries an autograd graph (the codec is not differentiable).

    Args:
        x: uint8 ``(B, 3, H, W)``.
        quality: ``(B,)`` integer qualities in 1..100.

    Returns:
        The decoded uint8 batch, on ``x``'s device.

    Example:
        >>> x = torch.full((2, 3, 16, 16), 128, dtype=torch.uint8)
        >>> jpeg_roundtrip(x, torch.tensor([10, 90])).shape
        torch.Size([2, 3, 16, 16])
    """
    qualities = _qualities(quality, x.shape[0])
    # One contiguous copy on the host, coded in place (never x's own memory): the codec is host code.
    out = x.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
    # One image per call, spread over torch's CPU threads (libjpeg runs without the GIL).
    host_map(lambda i: _code_into(out[i], qualities[i]), len(qualities))
    return out.to(x.device)


def jpeg_roundtrip_float(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG round trip of a float ``(B, 3, H, W)`` batch in ``[0, 1]``: ``round(255 x)``, code, ``/ 255``.

    Same result as ``jpeg_roundtrip(quantize_uint8(x), quality).to(x.dtype) / 255``, without batch-sized
    temporaries: each image is quantised, coded and scaled into the output on its own, spread over torch's
    CPU threads. The result is a new tensor without an autograd graph, whether or not ``x``
    requires grad: the codec is not differentiable (see ``jpeg_roundtrip_differentiable``).

    Args:
        x: float ``(B, 3, H, W)`` in ``[0, 1]``.
        quality: ``(B,)`` integer qualities in 1..100.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y = jpeg_roundtrip_float(x, torch.tensor([10, 90]))
        >>> torch.equal(y, jpeg_roundtrip(quantize_uint8(x), torch.tensor([10, 90])).float() / 255)
        True
    """
    if torch.compiler.is_compiling():  # one opaque op in the graph: the codec is host code
        return torch.ops.augrobust.jpeg_roundtrip_float(x.detach(), quality)
    return _jpeg_float(x, quality)


#: Elements per chunk: enough images to amortise torch's per-op overhead, few enough to stay in cache.
_CHUNK_ELEMENTS = 1 << 19


def _jpeg_float(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    qualities = _qualities(quality, x.shape[0])
    cpu = x.detach().to("cpu")
    b = cpu.shape[0]
    out = torch.empty(cpu.shape, dtype=x.dtype)
    tasks = max(1, min(torch.get_num_threads(), b))
    step = max(1, min(_CHUNK_ELEMENTS // max(1, cpu[0].numel()), -(-b // tasks)))
    starts = range(0, b, step)

    def code(task: int) -> None:
        # Each task walks its chunks with its own cache-sized buffers (a fresh batch-sized temporary would
        # cost a page-fault pass); the tasks run on torch's CPU threads, as libjpeg runs without the GIL.
        shape = (step, *cpu.shape[1:])  # contiguous, whatever the input's layout: OpenCV needs whole planes
        scaled = torch.empty(shape, dtype=cpu.dtype)
        pixels = torch.empty(shape, dtype=torch.uint8)
        for start in starts[task::tasks]:
            k = min(step, b - start)
            torch.mul(cpu[start : start + k], 255.0, out=scaled[:k]).round_().clamp_(0.0, 255.0)
            pixels[:k].copy_(scaled[:k])  # quantize_uint8 without temporaries
            for i in range(k):
                _code_into(pixels[i], qualities[start + i])
            out[start : start + k].copy_(pixels[:k]).div_(255.0)  # in the output's precision

    host_map(code, tasks)
    return out.to(x.device)


@torch.library.custom_op("augrobust::jpeg_roundtrip_float", mutates_args=())
def _jpeg_float_op(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """:func:`jpeg_roundtrip_float` as an operator ``torch.compile`` keeps whole (it runs the host codec)."""
    return _jpeg_float(x, quality)


@_jpeg_float_op.register_fake
def _jpeg_float_shape(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def jpeg_roundtrip_differentiable(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """kornia's differentiable JPEG model (an approximation of the codec, not libjpeg's output).

    Args:
        x: float ``(B, 3, H, W)`` in ``[0, 1]``.
        quality: ``(B,)`` qualities.

    Example:
        >>> x = torch.rand(2, 3, 16, 16, requires_grad=True)
        >>> jpeg_roundtrip_differentiable(x, torch.tensor([10, 90])).sum().backward()
        >>> x.grad.shape
        torch.Size([2, 3, 16, 16])
    """
    from kornia.enhance import jpeg_codec_differentiable

    return jpeg_codec_differentiable(x, quality.to(device=x.device, dtype=x.dtype)).clamp(0.0, 1.0)
