"""spatter: water drops (severities with mode 0) or mud splashes (mode 1) over the image.

Reference: ``imagecorruptions.corruptions.spatter`` (imagenet_c.md 3.16); the original scripts are the
same algorithm (only the tables differ), so ``reference`` changes nothing here.

1. ``liquid = N(loc, scale)`` of size ``H x W`` (float64), ``skimage.filters.gaussian(sigma)``
   (mode ``'nearest'``, truncate 4), values ``< threshold`` set to 0.
2. Water: ``u8 = uint8(liquid * 255)``; ``255 - Canny(u8, 50, 150)``; L2 distance transform (mask 5),
   truncated at 20; 3x3 box blur; to uint8; ``equalizeHist``; ``filter2D`` with the emboss kernel
   ``[[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]`` into saturated uint8; 3x3 box blur. ``m = u8 * dist``
   normalised by its maximum and scaled by the intensity; all float32, as in the reference:
   ``out = clip(x + m * (175, 238, 238) / 255, 0, 1)``.
3. Mud: ``m = gaussian(float32(liquid > threshold), mud_sigma)`` (float32 between the two passes, as
   SciPy writes a float32 image), ``m[m < 0.8] = 0``; ``out = x * (1 - m) + m * (63, 42, 20) / 255``.

Everything is batched torch except the OpenCV chain of the water branch (Canny .. final box blur), which
has no exact torch formulation (Canny's hysteresis, the chamfer distance transform, histogram
equalisation with uint8 saturation in between): it runs with OpenCV on the CPU, one image at a time, and
needs ``opencv-python(-headless)``. Choosing the branch per sample costs one host sync (the indices of
the water samples); the mud branch and the blends run batched on the image's device.

The reference divides by ``max(m)``, which is 0 when no pixel passes the threshold (it then returns
NaN, cast to garbage); here such an image gets no water (``m = 0``).

Params: ``liquid_noise`` ``(B, H, W)`` standard normals (float64); the kernel scales them to
``loc + scale * z`` exactly as NumPy's ``normal`` does.
"""

from __future__ import annotations

import numpy as np
import torch

from augrobust._tensor import cache_chunk, unit_scale_keeping_floor
from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.errors import AugrobustValueError
from augrobust.functional.filters import (
    correlate1d_nearest,
    gaussian_kernels,
    gaussian_radius,
    separable_filter_nearest,
)
from augrobust.functional.host import host_map
from augrobust.functional.precision import autocast_exempt
from augrobust.functional.sync import constant_table, host_reads_ok

__all__ = ["TABLES", "sample_spatter_noise", "spatter", "water_distance_map"]

#: (loc, scale, blur sigma, threshold, intensity or mud sigma, mode: 0 water / 1 mud) per severity.
TABLES = {
    "imagenet": (
        (0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
    "inception": (
        (0.65, 0.3, 4, 0.69, 0.9, 0), (0.65, 0.3, 3.5, 0.68, 0.9, 0), (0.65, 0.3, 3, 0.68, 0.8, 0),
        (0.65, 0.3, 1.2, 0.65, 1.8, 1), (0.67, 0.4, 1.2, 0.65, 1.8, 1),
    ),
    "tinyimagenet": (
        (0.62, 0.1, 0.7, 0.7, 0.6, 0), (0.65, 0.1, 0.8, 0.7, 0.6, 0), (0.65, 0.3, 1, 0.69, 0.6, 0),
        (0.65, 0.1, 0.7, 0.68, 0.6, 1), (0.65, 0.1, 0.5, 0.67, 0.6, 1),
    ),
    "cifar": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
}  # fmt: skip

_WATER = (175 / 255.0, 238 / 255.0, 238 / 255.0)
_MUD = (63 / 255.0, 42 / 255.0, 20 / 255.0)
_EMBOSS = ((-2, -1, 0), (-1, 1, 1), (0, 1, 2))
#: Liquid-layer pixels per CPU chunk (float64: 4 MB, ten 224-px images): the blur's passes stay in the cache and
#: the per-chunk costs (SciPy calls, the branch choice) are shared. Measured at 224 px, kernel only, ms per image
#: at severities 1 / 5: 1 << 16: 2.68 / 2.13 (1 thread), 2.47 / 1.80 (2 threads); 1 << 19: 2.24 / 1.71, 1.63 / 1.21.
_CHUNK_ELEMENTS = 1 << 19


def _kernels_numpy(preset: str, column: int) -> torch.Tensor:
    rows = TABLES.get(preset, TABLES["imagenet"])
    return gaussian_kernels([float(r[column]) for r in rows])


@constant_table(16)
def _kernel_pack(preset: str) -> torch.Tensor:
    """Both kernel tables (columns 2 and 4) flattened in one tensor: one graph constant under torch.compile."""
    return torch.cat([_kernels_numpy(preset, 2).flatten(), _kernels_numpy(preset, 4).flatten()])


def _kernels(preset: str, column: int) -> torch.Tensor:
    """``(5, 2R + 1)`` SciPy Gaussian kernels of one sigma column of the table (R: the table's largest)."""
    if not torch.compiler.is_compiling():
        return _kernels_numpy(preset, column)
    rows = TABLES.get(preset, TABLES["imagenet"])
    widths = [2 * max(gaussian_radius(float(r[c])) for r in rows) + 1 for c in (2, 4)]
    pack = _kernel_pack(preset)
    first = 5 * widths[0]
    return pack[:first].view(5, widths[0]) if column == 2 else pack[first:].view(5, widths[1])


def sample_spatter_noise(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """One ``H x W`` standard-normal field per image (float64).

    Example:
        >>> import torch
        >>> p = sample_spatter_noise((2, 3, 32, 48), torch.tensor([1, 4]), preset="imagenet",
        ...                          reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> p["liquid_noise"].shape, p["liquid_noise"].dtype
        (torch.Size([2, 32, 48]), torch.float64)
    """
    b, _, h, w = shape
    return {"liquid_noise": torch.randn((b, h, w), generator=generator, device=device, dtype=torch.float64)}


def water_distance_map(liquid_u8: np.ndarray) -> np.ndarray:
    """The reference's OpenCV chain on one uint8 ``H x W`` liquid layer, as a float32 map.

    Canny edges, L2 distance to them (mask 5) truncated at 20, box blur, equalised histogram, emboss
    filter into saturated uint8, box blur.

    Example:
        >>> import numpy as np
        >>> water_distance_map(np.zeros((16, 16), np.uint8)).dtype
        dtype('float32')
    """
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise AugrobustValueError(
            "spatter's water branch (severities 1-3) uses OpenCV's Canny, distance transform and histogram "
            "equalisation, which have no exact torch equivalent; install opencv-python-headless."
        ) from err
    dist = 255 - cv2.Canny(liquid_u8, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    dist = cv2.filter2D(dist, cv2.CV_8U, np.array(_EMBOSS))
    return cv2.blur(dist, (3, 3)).astype(np.float32)


def _blur_method(x: torch.Tensor) -> str:
    """How to blur the liquid layer and the mud mask: all three are SciPy's result (bit-identical in float64;
    ``matmul`` ~1e-16 from it, for small float32 images); SciPy itself is fastest on large CPU images."""
    if max(x.shape[-2:]) <= 96:
        return "direct" if x.dtype == torch.float64 else "matmul"
    return "scipy" if host_reads_ok(x.device) else "direct"


def _blur_float32_image(mask: torch.Tensor, weights: torch.Tensor, method: str) -> torch.Tensor:
    """``scipy.ndimage.gaussian_filter`` of a float32 ``(B, H, W)`` image: each pass in float64, stored as float32."""
    if method == "scipy":
        return separable_filter_nearest(mask.unsqueeze(1), weights, method="scipy").squeeze(1)
    w64 = weights.to(device=mask.device, dtype=torch.float64)
    rows = correlate1d_nearest(mask.to(torch.float64), w64, 1).to(torch.float32)
    return correlate1d_nearest(rows.to(torch.float64), w64, 2).to(torch.float32)


def _water_distance_maps(u8: torch.Tensor) -> torch.Tensor:
    """:func:`water_distance_map` of each uint8 ``(H, W)`` image of a ``(B, H, W)`` batch, on its device."""
    u8_cpu = u8.cpu().numpy()  # OpenCV runs on the host, one image at a time, on torch's CPU threads
    maps = torch.empty(u8.shape, dtype=torch.float32)

    def one(i: int) -> None:
        maps[i] = torch.from_numpy(water_distance_map(u8_cpu[i]))

    host_map(one, len(u8_cpu))
    return maps.to(u8.device)


@torch.library.custom_op("augrobust::water_distance_maps", mutates_args=())
def _water_distance_maps_op(u8: torch.Tensor) -> torch.Tensor:
    """:func:`_water_distance_maps` as an operator ``torch.compile`` keeps whole (it runs OpenCV on the host)."""
    return _water_distance_maps(u8)


@_water_distance_maps_op.register_fake
def _water_distance_maps_shape(u8: torch.Tensor) -> torch.Tensor:
    return torch.empty(u8.shape, dtype=torch.float32, device=u8.device)


def _water(x: torch.Tensor, liquid: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
    """Water branch for a sub-batch; returns ``y`` with ``floor(255 y)`` equal to the reference's uint8."""
    # float -> uint8 as NumPy's astype on x86 (values >= 256 wrap; negative cannot occur after thresholding)
    u8 = (liquid * 255).to(torch.int64).bitwise_and_(255).to(torch.uint8)
    if torch.compiler.is_compiling():  # one opaque op in the graph: OpenCV is host code
        dist = torch.ops.augrobust.water_distance_maps(u8)
    else:
        dist = _water_distance_maps(u8)
    m = u8.to(torch.float32) * dist
    peak = m.amax(dim=(1, 2), keepdim=True)
    m = torch.where(peak > 0, m / torch.where(peak > 0, peak, 1.0), 0.0)
    m = (m * intensity.to(torch.float32).view(-1, 1, 1)).unsqueeze(1)
    color = torch.tensor(_WATER, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    x32 = x.to(torch.float32)  # the reference works on float32 x and multiplies by 255 in float32
    y32 = (x32 + m * color).clamp_(0.0, 1.0)
    if x.dtype == torch.float32:  # floor(255 * y) in float32 is then the reference's own product
        return y32
    return unit_scale_keeping_floor((y32 * 255).to(x.dtype))


def _mud(x: torch.Tensor, liquid: torch.Tensor, threshold: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    mask = (liquid > threshold.view(-1, 1, 1)).to(torch.float32)
    m = _blur_float32_image(mask, kernels, _blur_method(x))
    m = torch.where(m < 0.8, 0.0, m).unsqueeze(1)
    kept = (x.to(torch.float32) * (1 - m)).to(x.dtype)  # float32 in the reference
    color = torch.tensor(_MUD, dtype=torch.float64, device=x.device).view(1, 3, 1, 1).to(x.dtype)
    return (kept + color * m.to(x.dtype)).clamp_(0.0, 1.0)


@autocast_exempt
def spatter(
    x: torch.Tensor, severity: torch.Tensor, params: dict[str, torch.Tensor], *, preset: str, reference: str
) -> torch.Tensor:
    """Water or mud spatter per image (see the module docstring).

    Example:
        >>> import torch, augrobust
        >>> augrobust.corrupt(torch.rand(2, 3, 32, 32), "spatter", 4).shape
        torch.Size([2, 3, 32, 32])
    """
    b, _, h, w = x.shape
    noise = params["liquid_noise"]
    if noise.shape != (b, h, w):
        raise AugrobustValueError(
            f"spatter params['liquid_noise'] must have shape ({b}, {h}, {w}), got {tuple(noise.shape)}."
        )
    # The liquid layer takes dozens of float64 passes (one per blur tap): on the CPU, chunks of a few images
    # keep them in cache (3x faster at 224 px); on an accelerator the batch is one chunk.
    step = cache_chunk(x.device, _CHUNK_ELEMENTS, h * w)
    if step >= b:
        return _spatter(x, severity, noise, preset)
    out = torch.empty_like(x)
    for start in range(0, b, step):
        part = slice(start, start + step)
        out[part] = _spatter(x[part], severity[part], noise[part], preset)
    return out


def _spatter(x: torch.Tensor, severity: torch.Tensor, noise: torch.Tensor, preset: str) -> torch.Tensor:
    b, _, h, w = x.shape
    table = severity_table(TABLES, preset, severity)  # float64, (B, 6)
    loc, scale, threshold = table[:, 0].view(b, 1, 1), table[:, 1].view(b, 1, 1), table[:, 3]
    # The liquid layer is float64 in the reference whatever the image dtype. The float64 path blurs it in
    # SciPy's tap order (bit-identical); the float32 path may use banded matmuls on small images
    # (faster there, ~1e-16 from SciPy).
    liquid = loc + scale * noise.to(device=x.device, dtype=torch.float64)
    blur = _kernels(preset, 2).to(x.device)[severity - 1]
    liquid = separable_filter_nearest(liquid.unsqueeze(1), blur, method=_blur_method(x)).squeeze(1)
    liquid = torch.where(liquid < threshold.view(b, 1, 1), 0.0, liquid)

    is_mud = table[:, 5] > 0.5
    if not host_reads_ok(x.device):
        # Sync-free (accelerators, torch.compile): both branches on the whole batch, kept per sample.
        kernels = _kernels(preset, 4).to(x.device)[severity - 1]
        mud = _mud(x, liquid, threshold, kernels)
        return torch.where(is_mud.view(b, 1, 1, 1), mud, _water(x, liquid, table[:, 4]))
    mud_idx = is_mud.nonzero().flatten()  # the one host read (eager CPU): which samples take which branch
    water_idx = (~is_mud).nonzero().flatten()
    if not water_idx.numel():  # one branch for the whole chunk (one severity, the usual case): no gathers
        return _mud(x, liquid, threshold, _kernels(preset, 4).to(x.device)[severity - 1])
    if not mud_idx.numel():
        return _water(x, liquid, table[:, 4])
    out = torch.empty_like(x)
    if mud_idx.numel():
        kernels = _kernels(preset, 4).to(x.device)[severity[mud_idx] - 1]
        out[mud_idx] = _mud(x[mud_idx], liquid[mud_idx], threshold[mud_idx], kernels)
    if water_idx.numel():
        out[water_idx] = _water(x[water_idx], liquid[water_idx], table[water_idx, 4])
    return out


SPEC = register(
    CorruptionSpec(name="spatter", apply=spatter, sample_params=sample_spatter_noise, per_channel=False, min_size=8)
)
