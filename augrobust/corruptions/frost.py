"""frost: a random crop of a photographed frost texture blended over the image.

Reference: ``imagecorruptions.corruptions.frost`` (imagenet_c.md 3.10):
``idx = randint(5)`` picks ``frost1.png .. frost5.jpg`` (``frost6.jpg`` is never selected); the texture is
rescaled so that it covers the image and then by 1.1 more (``cv2.resize``, ``INTER_CUBIC``, to
``ceil(side * scale)``), a crop at ``(randint(0, Ht - H), randint(0, Wt - W))`` is taken, and
``out = clip(w_img * x255 + w_frost * texture, 0, 255)`` on the ``[0, 255]`` scale.

``reference="hendrycks"`` follows the original dataset scripts: the raw texture at ``imagenet`` and
``inception`` (no resize), ``cv2.resize(fx=fy=0.2)`` (bilinear) at ``cifar`` and ``0.3`` at
``tinyimagenet``, then the same random crop. Those scripts cannot crop an image larger than the
smallest (scaled) texture minus one pixel, and neither can this reference: it raises an error.

Textures are not shipped with augrobust. They are looked up, in this order, in the directory given to
:func:`set_frost_dir`, in the directory named by the ``AUGROBUST_FROST_DIR`` environment variable, and in
an installed ``imagecorruptions`` distribution (located with ``importlib.util.find_spec``, without
importing it, since its import fails on current stacks). They are decoded once with Pillow; the rescaled
textures are cached per (reference, preset, image size, device). The rescale uses OpenCV when it is
installed (bit-identical to the reference); otherwise a separable resampling matrix with OpenCV's
coordinate mapping and kernels (a = -0.75 cubic, or bilinear), which differs from OpenCV's fixed-point
arithmetic by at most one grey level in the texture.

Params: ``texture`` (index 0..4), ``top`` and ``left`` (crop corner), all ``(B,)`` long.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import threading
from pathlib import Path

import torch

from augrobust._tensor import unit_scale_keeping_floor
from augrobust.corruptions._spec import CorruptionSpec, register, severity_table
from augrobust.errors import AugrobustValueError
from augrobust.functional.precision import autocast_exempt
from augrobust.functional.sync import constant_table

__all__ = [
    "FROST_FILES",
    "TABLES",
    "frost",
    "frost_dir",
    "frost_texture_sizes",
    "load_frost_textures",
    "sample_frost_crops",
    "set_frost_dir",
]

#: (image weight, frost weight) per severity, per preset (imagenet_c.md 3.1, 4.2-4.4).
TABLES = {
    "imagenet": ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "inception": ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "tinyimagenet": ((1.0, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)),
    "cifar": ((1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
}

#: The five selectable textures, in the reference's index order (frost2 and frost3 are the same pixels).
FROST_FILES: tuple[str, ...] = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")

#: Texture scale of the original scripts per preset (``None``: the raw texture, no resize).
HENDRYCKS_SCALE: dict[str, float | None] = {"imagenet": None, "inception": None, "cifar": 0.2, "tinyimagenet": 0.3}

_ENV_VAR = "AUGROBUST_FROST_DIR"
_user_dir: Path | None = None
_lock = threading.Lock()
_raw_cache: dict[str, list[torch.Tensor]] = {}  # directory -> 5 uint8 (H, W, 3) CPU tensors
_scaled_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # key -> (stack, sizes)


def set_frost_dir(path: str | os.PathLike[str] | None) -> None:
    """Use the frost textures of ``path`` (a folder holding ``frost1.png`` .. ``frost5.jpg``).

    ``None`` restores the default lookup (``AUGROBUST_FROST_DIR``, then an installed ``imagecorruptions``).

    Example:
        >>> set_frost_dir(None)
    """
    global _user_dir
    _user_dir = None if path is None else Path(path)


@functools.lru_cache(maxsize=1)  # the installed distribution does not move while we run
def _installed_frost_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("imagecorruptions")  # finds the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "frost"
        if (candidate / FROST_FILES[0]).is_file():
            return candidate
    return None


def frost_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """The folder the frost textures are read from: ``folder`` if given, else the configured lookup.

    Raises:
        AugrobustValueError: no folder with the textures was given and no ``imagecorruptions`` is installed.

    Example:
        >>> frost_dir().name
        'frost'
    """
    if folder is not None:
        return Path(folder)
    if _user_dir is not None:
        return _user_dir
    env = os.environ.get(_ENV_VAR)
    if env:
        return Path(env)
    found = _installed_frost_dir()
    if found is None:
        raise AugrobustValueError(
            "frost needs the ImageNet-C frost textures (frost1.png .. frost5.jpg), which augrobust does not "
            "ship. Either `pip install imagecorruptions==1.1.2` (augrobust reads its textures without "
            "importing it), or put the files in a folder and pass frost_dir=folder (to augrobust.corrupt, "
            "Corruption or RandomCorruption), call augrobust.corruptions.frost.set_frost_dir(folder), or set "
            f"the environment variable {_ENV_VAR}."
        )
    return found


def _decode(path: Path) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise AugrobustValueError(
            f"frost texture {str(path)!r} does not exist; the frost folder must hold {list(FROST_FILES)} "
            f"(see set_frost_dir / {_ENV_VAR})."
        )
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")  # drops the (all-opaque) alpha, as cv2.imread does
            rgb.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise AugrobustValueError(f"frost texture {str(path)!r} could not be decoded as an image: {err}") from err
    data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return data.view(rgb.height, rgb.width, 3).clone()


def load_frost_textures(folder: str | os.PathLike[str] | None = None) -> list[torch.Tensor]:
    """The five selectable frost textures as uint8 ``(H, W, 3)`` RGB tensors (decoded once, cached).

    Example:
        >>> [tuple(t.shape) for t in load_frost_textures()]
        [(600, 900, 3), (315, 560, 3), (315, 560, 3), (350, 527, 3), (495, 660, 3)]
    """
    path = frost_dir(folder)
    key = str(path.resolve())
    with _lock:
        cached = _raw_cache.get(key)
        if cached is None:
            cached = [_decode(path / name) for name in FROST_FILES]
            _raw_cache[key] = cached
    return cached


def _imagecorruptions_size(tex_hw: tuple[int, int], h: int, w: int) -> tuple[int, int]:
    """The reference's rescaled texture size: cover the image, then x1.1, ceil."""
    th, tw = tex_hw
    if th >= h and tw >= w:
        scale = 1.0
    elif th < h and tw >= w:
        scale = h / th
    elif th >= h and tw < w:
        scale = w / tw
    else:
        scale = max(h / th, w / tw)
    scale *= 1.1
    return math.ceil(th * scale), math.ceil(tw * scale)


def _resize_matrix(n_in: int, n_out: int, inv_scale: float, cubic: bool) -> torch.Tensor:
    """``(n_out, n_in)`` float64 resampling matrix with OpenCV's ``resize`` coordinate mapping.

    ``src = (dst + 0.5) * inv_scale - 0.5``; cubic uses Keys' kernel with a = -0.75 and replicated
    borders, bilinear clamps at the borders, as ``cv::resize`` does.
    """
    dst = torch.arange(n_out, dtype=torch.float64)
    src = (dst + 0.5) * inv_scale - 0.5
    base = torch.floor(src)
    frac = src - base
    mat = torch.zeros((n_out, n_in), dtype=torch.float64)
    rows = torch.arange(n_out)
    if cubic:
        a = -0.75
        taps = []
        for k, d in zip(range(-1, 3), (1 + frac, frac, 1 - frac, 2 - frac)):
            ad = d.abs()
            wgt = torch.where(
                ad <= 1, ((a + 2) * ad - (a + 3)) * ad * ad + 1, ((a * ad - 5 * a) * ad + 8 * a) * ad - 4 * a
            )
            taps.append((k, wgt))
        for k, wgt in taps:
            idx = (base.long() + k).clamp(0, n_in - 1)
            mat.index_put_((rows, idx), wgt, accumulate=True)
    else:
        i0 = base.long()
        frac = torch.where(i0 < 0, torch.zeros_like(frac), frac)
        i0 = i0.clamp(min=0)
        frac = torch.where(i0 >= n_in - 1, torch.zeros_like(frac), frac)
        i0 = i0.clamp(max=n_in - 1)
        i1 = (i0 + 1).clamp(max=n_in - 1)
        mat.index_put_((rows, i0), 1 - frac, accumulate=True)
        mat.index_put_((rows, i1), frac, accumulate=True)
    return mat


def _resize_texture(
    tex: torch.Tensor, out_hw: tuple[int, int], inv_scale: tuple[float, float], cubic: bool, fx: float | None = None
) -> torch.Tensor:
    """Resize a uint8 ``(H, W, 3)`` texture as ``cv2.resize`` does (OpenCV itself when installed)."""
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        arr, mode = tex.numpy(), cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
        if fx is not None:  # the original scripts pass fx = fy, which also sets the coordinate scale
            out = cv2.resize(arr, (0, 0), fx=fx, fy=fx, interpolation=mode)
        else:
            out = cv2.resize(arr, (out_hw[1], out_hw[0]), interpolation=mode)
        return torch.from_numpy(out.copy())
    ry = _resize_matrix(tex.shape[0], out_hw[0], inv_scale[0], cubic)
    rx = _resize_matrix(tex.shape[1], out_hw[1], inv_scale[1], cubic)
    img = tex.to(torch.float64).permute(2, 0, 1)
    out = ry @ img @ rx.T
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()


def _scaled_textures(
    h: int, w: int, preset: str, reference: str, folder: str | os.PathLike[str] | None = None
) -> list[torch.Tensor]:
    raw = load_frost_textures(folder)
    scaled = []
    for tex in raw:
        th, tw = tex.shape[:2]
        if reference == "imagecorruptions":
            oh, ow = _imagecorruptions_size((th, tw), h, w)
            scaled.append(_resize_texture(tex, (oh, ow), (th / oh, tw / ow), cubic=True))
        else:
            fx = HENDRYCKS_SCALE[preset]
            if fx is None:
                scaled.append(tex)
            else:
                # cv2.resize(dsize=(0, 0), fx=fy=f): size rounded to nearest, coordinates scaled by 1/f
                oh, ow = round(th * fx), round(tw * fx)
                scaled.append(_resize_texture(tex, (oh, ow), (1 / fx, 1 / fx), cubic=False, fx=fx))
    return scaled


def _texture_stack(
    h: int, w: int, preset: str, reference: str, device: torch.device, folder: str | os.PathLike[str] | None = None
):
    """``(5, Hmax, Wmax, 3)`` uint8 stack of rescaled textures on ``device`` and their ``(5, 2)`` sizes."""
    key_preset = preset if reference == "hendrycks" else "*"  # imagecorruptions ignores the preset here
    path = frost_dir(folder)
    key = (str(path.resolve()), reference, key_preset, h, w, str(device))
    with _lock:
        hit = _scaled_cache.get(key)
    if hit is not None:
        return hit
    scaled = _scaled_textures(h, w, preset, reference, path)
    sizes = torch.tensor([t.shape[:2] for t in scaled], dtype=torch.long)
    if bool((sizes[:, 0] <= h).any()) or bool((sizes[:, 1] <= w).any()):
        smallest = tuple(int(v) - 1 for v in sizes.min(dim=0).values)
        raise AugrobustValueError(
            f"frost with reference={reference!r} and preset={preset!r} crops an HxW patch from textures as "
            f"small as {tuple(int(v) for v in sizes.min(dim=0).values)} and needs H, W at most {smallest}; got "
            f"{h}x{w}. Use reference='imagecorruptions' (it rescales the texture to cover any image)."
        )
    hmax, wmax = int(sizes[:, 0].max()), int(sizes[:, 1].max())
    stack = torch.zeros((len(scaled), hmax, wmax, 3), dtype=torch.uint8)
    for i, t in enumerate(scaled):
        stack[i, : t.shape[0], : t.shape[1]] = t
    result = (stack.to(device), sizes.to(device))
    with _lock:
        _scaled_cache[key] = result
    return result


@constant_table(16)
def _compiled_texture_stack(
    h: int, w: int, preset: str, reference: str, device: torch.device, folder: str | os.PathLike[str] | None
) -> torch.Tensor:
    return _texture_stack(h, w, preset, reference, device, folder)[0]


def frost_texture_sizes(
    height: int, width: int, *, preset: str = "imagenet", reference: str = "imagecorruptions"
) -> torch.Tensor:
    """``(5, 2)`` (height, width) of the rescaled textures the reference crops from.

    Example:
        >>> frost_texture_sizes(224, 224).tolist()
        [[660, 991], [347, 616], [347, 616], [386, 580], [545, 727]]
    """
    return _texture_stack(height, width, preset, reference, torch.device("cpu"))[1].clone()


def sample_frost_crops(
    shape: tuple[int, int, int, int],
    severity: torch.Tensor,
    *,
    preset: str,
    reference: str,
    generator: torch.Generator | None,
    device: torch.device,
    frost_dir: str | os.PathLike[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Texture index uniform in 0..4, crop corner uniform over the reference's ``randint`` ranges.

    Example:
        >>> import torch
        >>> p = sample_frost_crops((4, 3, 32, 32), torch.full((4,), 2), preset="imagenet",
        ...                        reference="imagecorruptions", generator=None, device=torch.device("cpu"))
        >>> sorted(p)
        ['left', 'texture', 'top']
    """
    b, _, h, w = shape
    _, sizes = _texture_stack(h, w, preset, reference, device, frost_dir)
    texture = torch.randint(0, len(FROST_FILES), (b,), generator=generator, device=device)
    u = torch.rand((b, 2), generator=generator, device=device, dtype=torch.float64)
    span = (sizes[texture] - torch.tensor([h, w], device=device)).to(torch.float64)  # randint(0, span)
    corner = (u * span).floor().long().minimum(span.long() - 1)
    return {"texture": texture, "top": corner[:, 0].contiguous(), "left": corner[:, 1].contiguous()}


@autocast_exempt
def frost(
    x: torch.Tensor,
    severity: torch.Tensor,
    params: dict[str, torch.Tensor],
    *,
    preset: str,
    reference: str,
    frost_dir: str | os.PathLike[str] | None = None,
) -> torch.Tensor:
    """Blend a crop of a frost texture over each image (batched gather; see the module docstring).

    Example:
        >>> import torch, augrobust
        >>> augrobust.corrupt(torch.rand(2, 3, 32, 32), "frost", 2).shape
        torch.Size([2, 3, 32, 32])
    """
    b, _, h, w = x.shape
    if torch.compiler.is_compiling():  # file reads and a lock: taken as a constant by the compiler
        stack = _compiled_texture_stack(h, w, preset, reference, x.device, frost_dir)
    else:
        stack, _ = _texture_stack(h, w, preset, reference, x.device, frost_dir)
    texture, top, left = (params[k].to(device=x.device, dtype=torch.long) for k in ("texture", "top", "left"))
    rows = (top.view(b, 1) + torch.arange(h, device=x.device)).view(b, h, 1)
    cols = (left.view(b, 1) + torch.arange(w, device=x.device)).view(b, 1, w)
    crop = stack[texture.view(b, 1, 1), rows, cols]  # (B, H, W, 3) uint8
    crop = crop.permute(0, 3, 1, 2).to(x.dtype)
    weights = severity_table(TABLES, preset, severity, dtype=x.dtype)
    w_img = weights[:, 0].view(b, 1, 1, 1)
    w_frost = weights[:, 1].view(b, 1, 1, 1)
    if x.dtype != torch.float64:
        # float32 and below: blend on the [0, 1] scale in fewer passes (within 1 grey level)
        return torch.addcmul(w_img * x, crop, w_frost / 255).clamp_(0.0, 1.0)
    # float64: the reference blends on the [0, 255] scale; x * 255 recovers the uint8 value exactly
    blended = (w_img * (x * 255) + w_frost * crop).clamp_(0.0, 255.0)
    return unit_scale_keeping_floor(blended)


SPEC = register(
    CorruptionSpec(
        name="frost", apply=frost, sample_params=sample_frost_crops, per_channel=False, options=("frost_dir",)
    )
)
