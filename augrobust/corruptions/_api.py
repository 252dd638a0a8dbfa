"""``augrobust.corrupt``: one ImageNet-C corruption on a batch, on any device."""

from __future__ import annotations

import os

import torch

from augrobust._checks import check_preset, check_reference
from augrobust._random import check_generator
from augrobust._tensor import as_batch, check_image, from_float, to_float
from augrobust.corruptions._spec import CorruptionSpec, get_spec
from augrobust.errors import AugrobustTypeError, AugrobustValueError

__all__ = ["apply_corruption", "check_severity", "corrupt", "sample_corruption_params"]

# ITU-R 601-2 luma, the weights of PIL's "L" conversion.
_LUMA = (0.299, 0.587, 0.114)


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of a ``(B, 3, H, W)`` batch, exact on grey pixels.

    Written as ``g + wr (r - g) + wb (b - g)`` (the same value, as the weights sum to 1): the plain weighted sum
    rounds a grey ``v`` to just below ``v`` (the float weights sum to ``1 - 2**-53``), and the uint8 floor then
    loses a grey level on a third of the levels.
    """
    r, g, b = rgb.unbind(dim=1)
    y = g + _LUMA[0] * (r - g) + _LUMA[2] * (b - g)
    return y.unsqueeze(1).clamp(0.0, 1.0)


def check_severity(severity: object, batch: int, device: torch.device) -> torch.Tensor:
    """Turn an int or a ``(B,)`` tensor of severities into a ``(B,)`` long tensor on ``device``."""
    if isinstance(severity, bool):
        raise AugrobustTypeError(f"severity must be an int in 1..5 or a (B,) integer tensor, got {severity!r}.")
    if isinstance(severity, int):
        if not 1 <= severity <= 5:
            raise AugrobustValueError(f"severity must be in 1..5, got {severity}.")
        return torch.full((batch,), severity, dtype=torch.long, device=device)
    if isinstance(severity, torch.Tensor):
        if severity.dtype.is_floating_point or severity.dtype == torch.bool or severity.is_complex():
            raise AugrobustTypeError(f"a severity tensor must have an integer dtype, got {severity.dtype}.")
        if severity.ndim == 0:
            severity = severity.expand(batch)
        if severity.shape != (batch,):
            raise AugrobustValueError(
                f"a severity tensor must have shape ({batch},) (one per image), got {tuple(severity.shape)}."
            )
        severity = severity.to(device=device, dtype=torch.long)
        if severity.device.type == "cpu":
            if batch and (bool((severity < 1).any()) or bool((severity > 5).any())):
                raise AugrobustValueError(f"severities must be in 1..5, got {severity.tolist()}.")
        else:  # checked on the device, without a host sync
            torch._assert_async(((severity >= 1) & (severity <= 5)).all(), "severities must be in 1..5")
        return severity
    raise AugrobustTypeError(
        f"severity must be an int in 1..5 or a (B,) integer tensor, got {type(severity).__name__}."
    )


def sample_corruption_params(
    name: str,
    shape: tuple[int, ...] | torch.Size,
    severity: int | torch.Tensor,
    *,
    preset: str = "imagenet",
    reference: str = "imagecorruptions",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    frost_dir: str | os.PathLike[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Draw the random parameters of a corruption for a batch of ``shape`` (``(B, C, H, W)``).

    The result can be passed to :func:`corrupt` as ``params=`` to replay the same draw.
    """
    spec = get_spec(name)
    preset, reference = check_preset(preset), check_reference(reference)
    shape = torch.Size(shape)
    if len(shape) == 3:
        shape = torch.Size((1, *shape))
    device = torch.device("cpu") if device is None else torch.device(device)
    sev = check_severity(severity, shape[0], device)
    options = {"frost_dir": None if frost_dir is None else str(frost_dir)}
    return spec.sample(
        shape, sev, preset=preset, reference=reference, generator=generator, device=device, options=options
    )


def apply_corruption(
    spec: CorruptionSpec,
    x: torch.Tensor,
    severity: torch.Tensor,
    params: dict[str, torch.Tensor],
    *,
    preset: str,
    reference: str,
    options: dict[str, object] | None = None,
) -> torch.Tensor:
    """Run a kernel on a float batch of any supported channel count (1, 3 or 4).

    Half-precision batches are corrupted in float32 (the reference computes in float64/float32; several
    building blocks, e.g. the CPU FFT, have no half kernels) and cast back.
    """
    for key, value in params.items():  # every field has one row per image (the spec's contract)
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] != x.shape[0]:
            raise AugrobustValueError(
                f"{spec.name}: params[{key!r}] has {value.shape[0]} rows but the batch has {x.shape[0]} images; "
                "replayed params must be drawn for a batch of the same size (sample_corruption_params(name, "
                "image.shape, ...))."
            )
    if x.shape[0] == 0:  # nothing to corrupt; some building blocks (MKL FFT) reject empty batches
        return x.clone()
    if x.dtype in (torch.float16, torch.bfloat16):
        out = apply_corruption(spec, x.float(), severity, params, preset=preset, reference=reference, options=options)
        return out.to(x.dtype)
    extra = spec.options_for(options)
    c = x.shape[1]
    if c == 3 or (c == 1 and spec.per_channel):
        return spec.apply(x, severity, params, preset=preset, reference=reference, **extra)
    if c == 1:
        rgb = spec.apply(x.expand(-1, 3, -1, -1), severity, params, preset=preset, reference=reference, **extra)
        return _luma(rgb)
    # RGBA: corrupt the colour, keep the alpha channel as it is.
    rgb = spec.apply(x[:, :3], severity, params, preset=preset, reference=reference, **extra)
    alpha = x[:, 3:] if spec.differentiable else x[:, 3:].detach()  # no graph through alpha alone
    return torch.cat([rgb, alpha], dim=1)


def corrupt(
    image: torch.Tensor,
    name: str,
    severity: int | torch.Tensor = 1,
    *,
    preset: str = "imagenet",
    reference: str = "imagecorruptions",
    generator: torch.Generator | None = None,
    params: dict[str, torch.Tensor] | None = None,
    frost_dir: str | os.PathLike[str] | None = None,
) -> torch.Tensor:
    """Apply one ImageNet-C corruption to an image or a batch.

    Args:
        image: ``(C, H, W)`` or ``(B, C, H, W)``; ``uint8`` in ``[0, 255]`` or float in ``[0, 1]``;
            ``C`` is 3 (RGB), 1 (grayscale) or 4 (RGBA, the alpha channel is kept as it is).
        name: an imagecorruptions name (see :func:`augrobust.get_corruption_names`).
        severity: an int in 1..5, or a ``(B,)`` integer tensor so that one batch mixes severities.
        preset: severity table: ``"imagenet"`` (default at any size), ``"tinyimagenet"``, ``"cifar"``
            or ``"inception"``.
        reference: ``"imagecorruptions"`` (default) or ``"hendrycks"`` where the two differ.
        generator: optional ``torch.Generator`` on the image's device.
        params: replay a draw from :func:`sample_corruption_params` instead of drawing.
        frost_dir: folder with the frost textures (frost only; default: ``AUGROBUST_FROST_DIR``, then an
            installed ``imagecorruptions``).

    Returns:
        The corrupted image, same shape, dtype and device. ``uint8`` results are floored as in
        imagecorruptions. Grayscale: per-channel corruptions (noise, blur, ...) act on the single channel;
        colour corruptions replicate it to RGB and convert back with ITU-R 601 luma.

    Example:
        >>> import torch, augrobust
        >>> x = torch.rand(2, 3, 32, 32)
        >>> augrobust.corrupt(x, "gaussian_noise", severity=3).shape
        torch.Size([2, 3, 32, 32])
    """
    spec = get_spec(name)
    preset, reference = check_preset(preset), check_reference(reference)
    check_image(image, channels=(1, 3, 4), min_size=spec.min_size)
    x = as_batch(image)
    generator = check_generator(generator, x.device)
    sev = check_severity(severity, x.shape[0], x.device)
    xf = to_float(x)
    options = {"frost_dir": frost_dir}
    if params is None:
        params = spec.sample(
            xf.shape, sev, preset=preset, reference=reference, generator=generator, device=xf.device, options=options
        )
    out = apply_corruption(spec, xf, sev, params, preset=preset, reference=reference, options=options)
    out = from_float(out, x)
    return out[0] if image.ndim == 3 else out
