"""JPEG round trips: the real codec (libjpeg-turbo through torchvision.io) or kornia's differentiable model.

The ImageNet-C ``jpeg_compression`` corruption saves a uint8 PIL image as JPEG at a given quality
(libjpeg defaults: 4:2:0 chroma subsampling, standard tables) and decodes it. ``torchvision.io``'s CPU
``encode_jpeg`` / ``decode_jpeg`` use the same libjpeg-turbo code paths and are bit-identical to Pillow
at the same quality (tested in ``tests/test_corruption_digital.py``).
"""

from __future__ import annotations

import torch
from torchvision.io import decode_jpeg, encode_jpeg

__all__ = ["jpeg_roundtrip", "jpeg_roundtrip_differentiable", "quantize_uint8"]


def quantize_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float ``[0, 1]`` to uint8 with ``round(255 x)`` (exact for ``k / 255`` inputs).

    Example:
        >>> quantize_uint8(torch.tensor([0.0, 0.5, 1.0])).tolist()
        [0, 128, 255]
    """
    return x.mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)


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
    cpu = x.detach().to("cpu").contiguous()
    qualities = quality.to("cpu").tolist()  # the one host sync: the codec is host code
    out = torch.empty_like(cpu)
    for q in sorted(set(qualities)):
        members = [i for i, qi in enumerate(qualities) if qi == q]
        decoded = decode_jpeg(encode_jpeg([cpu[i] for i in members], quality=int(q)))
        for i, img in zip(members, decoded):
            out[i] = img
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
