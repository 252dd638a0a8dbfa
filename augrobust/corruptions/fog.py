"""fog: a diamond-square plasma fractal added to the image, then a contrast-reducing rescale.

Reference: ``imagecorruptions.corruptions.fog`` / ``plasma_fractal`` (imagenet_c.md 3.11). A toroidal
diamond-square heightmap of side ``mapsize`` (a power of two) starts from ``map[0, 0] = 0`` and
``wibble = 100``; at each level (step ``mapsize, mapsize/2, ..., 2``) it fills the square centres, then
the two diamond point sets, each with the mean of four (wrapped) neighbours plus
``wibble * U(-wibble, wibble)``, and divides ``wibble`` by the severity's decay. The map is min-max
normalised, cropped top-left to ``H x W`` and shared by the channels:
``out = clip((x + c0 * map) * max(x) / (max(x) + c0), 0, 1)`` with ``max(x)`` the image's global maximum.

``mapsize`` is ``next_power_of_2(max(H, W))`` for ``reference="imagecorruptions"``; the original scripts
(``reference="hendrycks"``) fix it per preset (256 at imagenet, 512 at inception, 64 at tinyimagenet,
32 at cifar) and crop it, so larger images are an error there.

Randomness: the reference draws ``3 * n * n`` uniforms per level (``n = mapsize / step``: squares, then
the row diamonds, then the column diamonds), ``mapsize**2 - 1`` in all. They are the params, stored
flat in draw order as standard uniforms in ``[0, 1)``; the kernel maps them to ``U(-w, w)`` exactly as
NumPy's ``uniform`` does (``-w + 2w * u``), so a replay of NumPy's stream reproduces the map bit for bit.
"""

from __future__ import annotations

import torch

from augrobust._tensor import cache_chunk
from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.errors import AugrobustValueError
from augrobust.functional.precision import autocast_exempt

__all__ = ["TABLES", "HENDRYCKS_MAPSIZE", "fog", "fog_mapsize", "plasma_fractal", "sample_fog_uniforms"]

#: (strength c0, wibble decay) per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
    "inception": ((1.5, 2.0), (2.0, 2.0), (2.5, 1.8), (2.5, 1.6), (3.0, 1.5)),
    "tinyimagenet": ((0.4, 3.0), (0.7, 3.0), (1.0, 2.5), (1.5, 2.0), (2.0, 1.75)),
    "cifar": ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75)),
}

#: Plasma side of the original scripts, per preset (``plasma_fractal``'s default argument there).
HENDRYCKS_MAPSIZE = {"imagenet": 256, "inception": 512, "tinyimagenet": 64, "cifar": 32}

_CHUNK_ELEMENTS = 1 << 18  # four 256x256 maps per chunk (measured best on CPU)


def fog_mapsize(height: int, width: int, *, preset: str = "imagenet", reference: str = "imagecorruptions") -> int:
    """Side of the plasma map the reference generates for an ``height x width`` image.

    Raises:
        AugrobustValueError: ``reference="hendrycks"`` and the image is larger than that preset's map.

    Example:
        >>> fog_mapsize(224, 224), fog_mapsize(96, 160), fog_mapsize(32, 32, preset="cifar", reference="hendrycks")
        (256, 256, 32)
    """
    if reference == "hendrycks":
        size = HENDRYCKS_MAPSIZE[preset]
        if height > size or width > size:
            raise AugrobustValueError(
                f"fog with reference='hendrycks' and preset={preset!r} crops a {size}x{size} plasma map, "
                f"so the image must be at most {size}x{size}; got {height}x{width}. Use "
                "reference='imagecorruptions' (map size follows the image) or a larger preset."
            )
        return size
    side = max(height, width, 3)  # imagecorruptions takes the max over (H, W, C=3)
    return 1 << (side - 1).bit_length()


def sample_fog_uniforms(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Draw the ``mapsize**2 - 1`` standard uniforms of each image's diamond-square map (float32).

    Example:
        >>> import torch
        >>> p = sample_fog_uniforms((2, 3, 32, 32), torch.tensor([1, 5]), preset="imagenet",
        ...                         reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> p["uniforms"].shape, p["uniforms"].dtype
        (torch.Size([2, 1023]), torch.float32)
    """
    b, _, h, w = shape
    size = fog_mapsize(h, w, preset=preset, reference=reference)
    # float32 draws: half the cost of float64, ample resolution for a random map. Replayed NumPy draws
    # are passed as float64 and reproduce the reference bit for bit.
    u = torch.rand((b, size * size - 1), generator=generator, device=device, dtype=torch.float32)
    return {"uniforms": u}


def _wibbles(decay: torch.Tensor, levels: int) -> torch.Tensor:
    """``(B, levels)`` wibble amplitudes: 100, 100/d, 100/d/d, ... as repeated float division (as the reference)."""
    cols = [torch.full_like(decay, 100.0)]
    for _ in range(levels - 1):
        cols.append(cols[-1] / decay)
    return torch.stack(cols, dim=1)


def plasma_fractal(uniforms: torch.Tensor, decay: torch.Tensor, mapsize: int) -> torch.Tensor:
    """Batched diamond-square heightmaps in ``[0, 1]``, ``(B, mapsize, mapsize)``.

    Vectorised over the batch: ``log2(mapsize)`` levels of strided slices and wrapped rolls, whose
    additions are ordered as the reference's so that float64 results are bit-identical.

    Args:
        uniforms: ``(B, mapsize**2 - 1)`` standard uniforms in draw order; its dtype is the compute dtype.
        decay: ``(B,)`` wibble decay per image.
        mapsize: a power of two.

    Example:
        >>> import torch
        >>> m = plasma_fractal(torch.rand(2, 63, dtype=torch.float64), torch.tensor([2.0, 1.4]).double(), 8)
        >>> m.shape, float(m.amin()), float(m.amax())
        (torch.Size([2, 8, 8]), 0.0, 1.0)
    """
    b = uniforms.shape[0]
    dtype, device = uniforms.dtype, uniforms.device
    levels = mapsize.bit_length() - 1
    wib = _wibbles(decay.to(dtype), levels)
    grid = torch.zeros((b, mapsize, mapsize), dtype=dtype, device=device)
    pos, step, level = 0, mapsize, 0
    half = step // 2
    while step >= 2:
        half = step // 2
        n = mapsize // step
        w = wib[:, level].view(b, 1, 1, 1)
        draws = uniforms[:, pos : pos + 3 * n * n].view(b, 3, n, n)
        pos += 3 * n * n
        # U(-w, w) as NumPy computes it: low + (high - low) * u.
        noise = w * (-w + (w + w) * draws)
        # squares: centre = mean of the four corners + noise
        corners = grid[:, 0::step, 0::step]
        acc = corners + torch.roll(corners, -1, dims=1)
        acc = acc + torch.roll(acc, -1, dims=2)
        grid[:, half::step, half::step] = acc / 4 + noise[:, 0]
        # diamonds: row points, then column points
        centres = grid[:, half::step, half::step]
        corners = grid[:, 0::step, 0::step]
        lt = (centres + torch.roll(centres, 1, dims=1)) + (corners + torch.roll(corners, -1, dims=2))
        grid[:, 0::step, half::step] = lt / 4 + noise[:, 1]
        tt = (centres + torch.roll(centres, 1, dims=2)) + (corners + torch.roll(corners, -1, dims=1))
        grid[:, half::step, 0::step] = tt / 4 + noise[:, 2]
        step //= 2
        level += 1
    grid = grid - grid.amin(dim=(1, 2), keepdim=True)
    return grid / grid.amax(dim=(1, 2), keepdim=True)


@autocast_exempt
def fog(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Add a plasma-fractal fog layer (batched; see the module docstring).

    Example:
        >>> import torch, augrobust
        >>> augrobust.corrupt(torch.rand(2, 3, 40, 40), "fog", 3).shape
        torch.Size([2, 3, 40, 40])
    """
    b, _, h, w = x.shape
    size = fog_mapsize(h, w, preset=preset, reference=reference)
    uniforms = params["uniforms"]
    if uniforms.shape != (b, size * size - 1):
        raise AugrobustValueError(
            f"fog params['uniforms'] must have shape ({b}, {size * size - 1}) for a {h}x{w} image "
            f"(map size {size}), got {tuple(uniforms.shape)}."
        )
    table = severity_table(TABLES, preset, severity, dtype=x.dtype)
    strength = table[:, 0].view(b, 1, 1, 1)
    # Maps are built a few at a time so that the strided level updates stay in cache (the chunking
    # depends on the shape only: no sync).
    chunk = cache_chunk(x.device, _CHUNK_ELEMENTS, size * size)
    uniforms = uniforms.to(x.dtype)
    plasma = torch.cat(
        [
            plasma_fractal(u, d, size)[:, :h, :w]
            for u, d in zip(uniforms.split(chunk), table[:, 1].split(chunk), strict=True)
        ]
    ).unsqueeze(1)
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x + strength * plasma) * peak / (peak + strength)).clamp_(0.0, 1.0)


SPEC = register(CorruptionSpec(name="fog", apply=fog, sample_params=sample_fog_uniforms, per_channel=False))
