"""torchvision ``transforms.v2`` forms of the augrobust transforms.

``augrobust.v2.GaussianNoise`` behaves like ``augrobust.GaussianNoise`` but plugs into ``v2.Compose`` and
per-sample ``Dataset`` pipelines: it takes any sample structure (``(image, label)``, dicts, ...), transforms
images and videos (``tv_tensors.Image``, ``tv_tensors.Video``, plain tensors by torchvision's pure-tensor rule,
PIL images) and passes masks, boxes, key points and labels through untouched. The input's type, rank and
dtype are kept: ``uint8`` stays ``uint8`` (computed in float32, floored back), PIL stays PIL.

Randomness: parameters are drawn once per call (torchvision's rule) for the first image of the sample,
with one row per image of a batched tensor, so a ``(B, C, H, W)`` tensor still gets a different draw per
image. In ``DataLoader`` workers use ``seed=None`` (torch's global RNG, which the workers seed apart) or an
int seed (each worker folds its id in).

Example:
    >>> import torch, augrobust
    >>> from torchvision.transforms import v2
    >>> from torchvision import tv_tensors
    >>> pipeline = v2.Compose([augrobust.v2.GaussianNoise(sigma=0.1), v2.ToDtype(torch.float32, scale=True)])
    >>> img = tv_tensors.Image(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8))
    >>> out, label = pipeline(img, 3)
    >>> type(out).__name__, out.dtype, label
    ('Image', torch.float32, 3)
"""

from __future__ import annotations

import inspect
from typing import Any

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from augrobust import transforms as _kornia_forms
from augrobust._tensor import check_image, from_float, to_float
from augrobust.transforms.base import RobustAugmentation

__all__ = [
    "DFMX",
    "AdversarialNoise",
    "Corruption",
    "FourierNoise",
    "GaussianNoise",
    "RandomCorruption",
    "RobustTransformV2",
    "SpeckleNoise",
    "v2_form",
]


def _is_image_like(inpt: Any) -> bool:
    if isinstance(inpt, (tv_tensors.Image, tv_tensors.Video, PIL.Image.Image)):
        return True
    return isinstance(inpt, torch.Tensor) and not isinstance(inpt, tv_tensors.TVTensor)


class RobustTransformV2(v2.Transform):
    """Adapter: a torchvision v2 ``Transform`` around an augrobust kornia-form transform."""

    kornia_class: type[RobustAugmentation]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        kwargs.setdefault("keepdim", True)
        self.op = self.kornia_class(*args, **kwargs)

    def _to_batch(self, inpt: Any) -> tuple[torch.Tensor, torch.Size]:
        x = TF.pil_to_tensor(inpt) if isinstance(inpt, PIL.Image.Image) else inpt.as_subclass(torch.Tensor)
        if x.ndim < 3:
            check_image(x, name=f"{type(self).__name__} input")  # raises: a rank error with the fix
        lead = x.shape[:-3]
        return x.reshape(-1, *x.shape[-3:]), lead

    def _draw(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        op = self.op
        check_image(batch, name=f"{type(self).__name__} input", channels=op.channels, min_size=op.min_size)
        device = batch.device
        gen = op.generator_for(device)
        op._draw_dtype = to_float(batch[:0]).dtype
        params = op.sample_params(batch.shape, generator=gen, device=device)
        if op.p < 1.0:
            params["__apply"] = torch.rand((batch.shape[0],), generator=gen, device=device) < op.p
        return params

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        for inpt in flat_inputs:
            if _is_image_like(inpt):
                batch, _ = self._to_batch(inpt)
                return {"draw": self._draw(batch), "shape": batch.shape}
        return {}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not _is_image_like(inpt):
            return inpt  # masks, boxes, key points, labels, ...
        batch, lead = self._to_batch(inpt)
        draw = params.get("draw") if params.get("shape") == batch.shape else None
        if draw is None:  # another image of a different shape in the same sample gets its own draw
            draw = self._draw(batch)
        check_image(batch, name=f"{type(self).__name__} input", channels=self.op.channels, min_size=self.op.min_size)
        xf = to_float(batch)
        gate = draw.get("__apply")
        out = self.op.apply_params(xf, {k: v for k, v in draw.items() if k != "__apply"})
        if gate is not None:
            out = torch.where(gate.view(-1, 1, 1, 1), out, xf)
        out = from_float(out, batch).reshape(*lead, *batch.shape[1:])
        if isinstance(inpt, PIL.Image.Image):
            return TF.to_pil_image(out)
        if isinstance(inpt, tv_tensors.TVTensor):
            return tv_tensors.wrap(out, like=inpt)
        return out

    # torchvision < 0.21 named the two hooks with a leading underscore.
    def _get_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return self.make_params(flat_inputs)

    def _transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self.transform(inpt, params)

    def __repr__(self) -> str:
        return f"augrobust.v2.{self.op!r}"


def v2_form(kornia_class: type[RobustAugmentation]) -> type[RobustTransformV2]:
    """Build the torchvision v2 class of a kornia-form augrobust transform (same name and arguments)."""
    name = kornia_class.__name__

    def __init__(self: RobustTransformV2, *args: Any, **kwargs: Any) -> None:
        RobustTransformV2.__init__(self, *args, **kwargs)

    # Each class gets its own __init__ so that help() / inspect show that transform's arguments (setting the
    # signature on the shared base __init__ would give every class the last one built).
    __init__.__signature__ = inspect.signature(kornia_class.__init__)  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{name}.__init__"
    return type(
        name,
        (RobustTransformV2,),
        {
            "kornia_class": kornia_class,
            "__init__": __init__,
            "__module__": __name__,
            "__qualname__": name,
            "__doc__": f"torchvision v2 form of :class:`augrobust.{name}` (same arguments).\n\n"
            + (kornia_class.__doc__ or ""),
        },
    )


AdversarialNoise = v2_form(_kornia_forms.AdversarialNoise)
Corruption = v2_form(_kornia_forms.Corruption)
DFMX = _kornia_forms.dfmx.dfmx_v2_form(v2_form(_kornia_forms.DFMX))  # label-aware: takes the label from the sample
FourierNoise = v2_form(_kornia_forms.FourierNoise)
GaussianNoise = v2_form(_kornia_forms.GaussianNoise)
RandomCorruption = v2_form(_kornia_forms.RandomCorruption)
SpeckleNoise = v2_form(_kornia_forms.SpeckleNoise)
