"""Batched RGB <-> HSV, operation for operation as scikit-image's ``rgb2hsv`` / ``hsv2rgb``.

The ImageNet-C ``brightness`` and ``saturate`` corruptions round-trip through scikit-image's HSV. To be
bit-identical in float64 these kernels repeat its floating-point steps in the same order:

* ``V = max(R, G, B)``, ``delta = max - min``, ``S = delta / V`` with ``S = 0`` where ``delta == 0``;
* the hue sector is chosen with the priority blue > green > red when channels tie at the maximum
  (scikit-image assigns red, then green, then blue, each overwriting the previous);
* ``H = (sector_offset + numerator / delta) / 6 % 1`` with ``H = 0`` for grey pixels;
* back: ``hi = floor(6 H)``, ``f = 6 H - hi``, ``p = V (1 - S)``, ``q = V (1 - f S)``,
  ``t = V (1 - (1 - f) S)``, and the usual six-way choice with ``hi % 6``.

Selections are products with exact 0/1 masks (``torch.where`` and bool masks are slow on the CPU), and
the work is done in cache-sized chunks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from augrobust.functional.precision import autocast_exempt

__all__ = ["adjust_hsv", "hsv_to_rgb", "rgb_to_hsv"]

# Pixels per chunk: the ~20 live temporaries of this many elements stay within a 2 MiB L2 cache.
_CHUNK_PIXELS = 1 << 14


def _indicator(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1.0`` where ``a == b`` else ``0.0``, in ``a``'s dtype (bool masks and ``where`` are slow on CPU)."""
    # A comparison has no gradient: on detached views the ``out=`` fast path also serves inputs that need one.
    return torch.eq(a.detach(), b.detach(), out=torch.empty_like(a, requires_grad=False))


def _rgb_to_hsv_planes(r: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, ...]:
    # Every selection below is a product with an exact 0/1 mask: x * 1 + y * 0 == x bit for bit, so the
    # result equals scikit-image's masked assignments without any torch.where.
    v = torch.maximum(torch.maximum(r, g), b)
    delta = torch.minimum(torch.minimum(r, g), b).neg_().add_(v)  # v - min, as np.ptp
    colour = torch.sign(delta)  # 0 for grey pixels (delta == 0), 1 otherwise
    # S = delta / V, 0 where delta == 0 (there V == 0 or the pixel is grey): delta / max(V, tiny) is that.
    s = delta / v.clamp_min(torch.finfo(v.dtype).tiny)
    # Hue sector: scikit-image assigns red-max, then green-max, then blue-max pixels, each overwriting
    # the previous, so ties go to blue, then green.
    blue = _indicator(b, v)
    green = _indicator(g, v).mul_(1 - blue)
    red = 1 - blue - green
    numerator = (g - b).mul_(red).add_((b - r).mul_(green)).add_((r - g).mul_(blue))
    offset = blue * 4 + green * 2
    # ratio + 0 == ratio for red, 2 + ratio for green, 4 + ratio for blue; grey pixels divide by 1.
    sector = numerator.div_(delta + (1 - colour)).add_(offset).div_(6.0)
    # NumPy's remainder by 1 on [-1/6, 5/6) is h - floor(h); hue is 0 for grey pixels.
    h = sector.sub_(torch.floor(sector)).mul_(colour)
    return h, s, v


def _hsv_to_rgb_planes(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    # scikit-image: k = 6 H, hi = floor(k), f = k - hi, p = V (1 - S), q = V (1 - f S),
    # t = V (1 - (1 - f) S), and (R, G, B) = (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q) for hi = 0..5
    # (6 acts as 0). Every output is V (1 - w S) with w in {0, 1, f, 1 - f}; w per channel is a clamped
    # piecewise-linear function of k whose pieces (k - 1, 5 - k, ...) are computed exactly (Sterbenz), so
    # w equals scikit-image's f or 1 - f bit for bit, and 1 - 0 S == 1, 1 S == S reproduce v and p.
    k = h * 6
    w_r = torch.minimum(k - 1, 5 - k).clamp_(0.0, 1.0)
    w_g = torch.maximum(1 - k, k - 3).clamp_(0.0, 1.0)
    w_b = torch.maximum(3 - k, k - 5).clamp_(0.0, 1.0)
    return tuple((1 - w.mul_(s)).mul_(v) for w in (w_r, w_g, w_b))


def _chunks(b: int, n: int, device: torch.device) -> list[tuple[slice, slice]]:
    """(batch slice, pixel slice) pairs covering a ``(B, 3, N)`` batch.

    On the CPU a chunk holds at most ``_CHUNK_PIXELS`` pixels, so its temporaries stay in cache and each
    op stays under torch's intra-op parallel grain (thread hand-offs cost more than they give here).
    Elsewhere the whole batch is one chunk.
    """
    if device.type != "cpu":
        return [(slice(0, b), slice(0, n))]
    if n >= _CHUNK_PIXELS:
        pixel_slices = [slice(i, i + _CHUNK_PIXELS) for i in range(0, n, _CHUNK_PIXELS)]
        return [(slice(j, j + 1), ps) for j in range(b) for ps in pixel_slices]
    step = _CHUNK_PIXELS // n
    return [(slice(j, j + step), slice(0, n)) for j in range(0, b, step)]


def _needs_graph(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _chunked(
    x: torch.Tensor, fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]
) -> torch.Tensor:
    """Apply ``fn`` to the three channel planes of a ``(B, 3, H, W)`` batch, chunk by chunk."""
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    if _needs_graph(x):  # autograd cannot record ``out=``: one whole-batch chunk, same operations
        return torch.stack(fn(flat[:, 0], flat[:, 1], flat[:, 2]), dim=1).view(b, c, h, w)
    out = torch.empty_like(flat)
    for bs, ps in _chunks(b, h * w, x.device):
        xc = flat[bs, :, ps]
        torch.stack(fn(xc[:, 0], xc[:, 1], xc[:, 2]), dim=1, out=out[bs, :, ps])
    return out.view(b, c, h, w)


@autocast_exempt
def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB ``(B, 3, H, W)`` in ``[0, 1]`` to HSV with all three channels in ``[0, 1]`` (scikit-image's).

    Example:
        >>> import torch
        >>> rgb_to_hsv(torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64).view(1, 3, 1, 1)).flatten().tolist()
        [0.08333333333333333, 1.0, 1.0]
    """
    if x.ndim == 3:
        return rgb_to_hsv(x[None])[0]
    return _chunked(x, _rgb_to_hsv_planes)


@autocast_exempt
def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV ``(B, 3, H, W)`` (all channels in ``[0, 1]``) to RGB, as scikit-image's ``hsv2rgb``.

    Example:
        >>> import torch
        >>> hsv_to_rgb(torch.tensor([0.5, 1.0, 1.0], dtype=torch.float64).view(1, 3, 1, 1)).flatten().tolist()
        [0.0, 1.0, 1.0]
    """
    if x.ndim == 3:
        return hsv_to_rgb(x[None])[0]
    return _chunked(x, _hsv_to_rgb_planes)


@autocast_exempt
def adjust_hsv(
    x: torch.Tensor,
    *,
    saturation_scale: torch.Tensor | None = None,
    saturation_shift: torch.Tensor | None = None,
    value_shift: torch.Tensor | None = None,
) -> torch.Tensor:
    """Round-trip through HSV, changing S and/or V per sample on the way (fused, chunked).

    ``S <- clip(S * saturation_scale + saturation_shift, 0, 1)`` and ``V <- clip(V + value_shift, 0, 1)``;
    each argument is ``(B,)`` (or ``None`` to leave the channel alone). The result is clipped to
    ``[0, 1]``. With float64 input this is bit-identical to scikit-image's round trip.

    Example:
        >>> import torch
        >>> x = torch.full((1, 3, 2, 2), 0.5)
        >>> adjust_hsv(x, value_shift=torch.tensor([0.25]))[0, :, 0, 0].tolist()
        [0.75, 0.75, 0.75]
    """
    view = (-1, 1)

    def per_sample(p: torch.Tensor | None) -> torch.Tensor | None:
        return None if p is None else p.to(dtype=x.dtype, device=x.device).reshape(x.shape[0]).view(view)

    scale, shift, vshift = per_sample(saturation_scale), per_sample(saturation_shift), per_sample(value_shift)
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    graph = _needs_graph(x, scale, shift, vshift)
    out = None if graph else torch.empty_like(flat)
    # Autograd cannot record ``out=``: then one whole-batch chunk, the same operations.
    for bs, ps in [(slice(0, b), slice(0, h * w))] if graph else _chunks(b, h * w, x.device):
        xc = flat[bs, :, ps]
        hue, sat, val = _rgb_to_hsv_planes(xc[:, 0], xc[:, 1], xc[:, 2])
        if scale is not None:
            sat = sat.mul_(scale[bs])
        if shift is not None:
            sat = sat.add_(shift[bs])
        sat = sat.clamp_(0.0, 1.0)
        if vshift is not None:
            val = (val + vshift[bs]).clamp_(0.0, 1.0)
        if graph:
            out = torch.stack(_hsv_to_rgb_planes(hue, sat, val), dim=1)
        else:
            torch.stack(_hsv_to_rgb_planes(hue, sat, val), dim=1, out=out[bs, :, ps])
    out = out.view(b, c, h, w)
    # V (1 - w S) with V, w, S in [0, 1] is already in [0, 1]: scikit-image's final clip is a no-op.
    return out
