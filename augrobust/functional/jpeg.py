"""JPEG round trips: the real codec (libjpeg-turbo through torchvision.io) or kornia's differentiable model.

The ImageNet-C ``jpeg_compression`` corruption saves a uint8 PIL image as JPEG at a given quality
(libjpeg defaults: 4:2:0 chroma subsampling, standard tables) and decodes it. ``torchvision.io``'s CPU
``encode_jpeg`` / ``decode_jpeg`` use the same libjpeg-turbo code paths and are bit-identical to Pillow
at the same quality (tested in ``tests/test_corruption_digital.py``).
"""

from __future__ import annotations

import torch
from torchvision.io import decode_jpeg, encode_jpeg

__all__ = ["jpeg_roundtrip", "jpeg_roundtrip_differentiable", "jpeg_roundtrip_float", "quantize_float", "quantize_uint8"]


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


#: Float elements quantised per step: the temporaries stay in cache (a fresh full-size float buffer costs
#: a page-fault pass on the CPU).
_CHUNK_ELEMENTS = 1 << 18


def _code(images: list[torch.Tensor], qualities: list[int]) -> list[torch.Tensor]:
    """Encode and decode each uint8 CHW image at its quality: one list call per distinct quality."""
    decoded: list[torch.Tensor] = [images[0]] * len(images)
    for q in sorted(set(qualities)):
        members = [i for i, qi in enumerate(qualities) if qi == q]
        for i, img in zip(members, decode_jpeg(encode_jpeg([images[i] for i in members], quality=int(q)))):
            decoded[i] = img
    return decoded


def jpeg_roundtrip(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Encode and decode a uint8 ``(B, 3, H, W)`` batch as baseline JPEG, one quality per image.

    The codec runs on the CPU (libjpeg-turbo, bit-identical to Pillow's ``save(quality=q)``), whatever
    the device of ``x``: CUDA's nvJPEG is a different encoder. One host sync reads the qualities; images
    are coded as one list per distinct quality.

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
    # libjpeg reads interleaved pixels: channels_last images are coded without a transposing copy.
    cpu = x.detach().to("cpu").contiguous(memory_format=torch.channels_last)
    decoded = _code(list(cpu.unbind(0)), quality.to("cpu").tolist())  # the one host sync
    return torch.stack(decoded).contiguous().to(x.device)


def jpeg_roundtrip_float(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG round trip of a float ``(B, 3, H, W)`` batch in ``[0, 1]``: ``round(255 x)``, code, ``/ 255``.

    Same result as ``jpeg_roundtrip(quantize_uint8(x), quality).to(x.dtype) / 255``, without full-size
    float temporaries: the batch is quantised in cache-sized chunks straight into an interleaved
    (channels_last) uint8 buffer, which libjpeg reads as it is, and each decoded image is scaled
    straight into the output.

    Args:
        x: float ``(B, 3, H, W)`` in ``[0, 1]``.
        quality: ``(B,)`` integer qualities in 1..100.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y = jpeg_roundtrip_float(x, torch.tensor([10, 90]))
        >>> torch.equal(y, jpeg_roundtrip(quantize_uint8(x), torch.tensor([10, 90])).float() / 255)
        True
    """
    qualities = quality.to("cpu").tolist()  # the one host sync: the codec is host code
    cpu = x.detach().to("cpu")
    b = cpu.shape[0]
    pixels = torch.empty(cpu.shape, dtype=torch.uint8, memory_format=torch.channels_last)
    step = max(1, _CHUNK_ELEMENTS // max(1, cpu[0].numel()))
    for start in range(0, b, step):
        pixels[start : start + step].copy_(quantize_float(cpu[start : start + step]))
    decoded = _code(list(pixels.unbind(0)), qualities)
    out = torch.empty(cpu.shape, dtype=x.dtype)
    for i, img in enumerate(decoded):
        torch.div(img.to(out.dtype), 255.0, out=out[i])  # in the output's precision
    return out.to(x.device)


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
