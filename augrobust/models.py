"""Models from other libraries for evaluation: ``torchvision:NAME`` / ``timm:NAME`` with local weights, and
an input normalisation applied after the corruption.

Nothing is downloaded: architectures are built with random initialisation and the weights come only from a
local file (a plain ``state_dict`` or an augrobust checkpoint). timm is an optional extra
(``pip install 'augrobust[timm]'``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from augrobust.errors import AugrobustValueError

__all__ = ["NORMALIZATIONS", "Normalized", "load_model_spec", "load_weights", "parse_normalize"]

#: Named input normalisations ``(mean, std)`` for ``normalize=`` / ``--normalize``.
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}

# Prefixes of wrapped state dicts (DistributedDataParallel, torch.compile) that a plain model does not have.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def parse_normalize(value: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``None``, a name of :data:`NORMALIZATIONS`, ``(mean, std)``, or the text ``"M1,M2,M3,S1,S2,S3"`` (or
    ``"M,S"`` for one value per channel) as ``(mean, std)`` tuples.

    Example:
        >>> parse_normalize("0.5,0.25")
        ((0.5,), (0.25,))
        >>> parse_normalize("imagenet")[1]
        (0.229, 0.224, 0.225)
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value in NORMALIZATIONS:
            return NORMALIZATIONS[value]
        try:
            nums = [float(v) for v in value.split(",")]
        except ValueError:
            nums = []
        if len(nums) not in (2, 6):
            raise AugrobustValueError(
                f"normalize {value!r} is not understood; give {' or '.join(NORMALIZATIONS)}, 'MEAN,STD' (two numbers) "
                "or 'M1,M2,M3,S1,S2,S3' (six)."
            )
        half = len(nums) // 2
        mean, std = tuple(nums[:half]), tuple(nums[half:])
    else:
        try:
            mean, std = (tuple(float(v) for v in value[0]), tuple(float(v) for v in value[1]))
        except (TypeError, ValueError, IndexError):
            raise AugrobustValueError(f"normalize must be a name or (mean, std) sequences, got {value!r}.") from None
    if len(mean) != len(std) or len(mean) not in (1, 3) or any(s <= 0 for s in std):
        raise AugrobustValueError(
            f"normalize needs 1 or 3 means and as many positive stds, got mean {mean} and std {std}."
        )
    return mean, std


class Normalized(nn.Module):
    """``model((x - mean) / std)``: the normalisation a model was trained with, applied to images in ``[0, 1]``
    after the corruption (corruptions work on the image, not on its normalised form).

    Example:
        >>> m = Normalized(nn.Identity(), (0.5,), (0.5,))
        >>> m(torch.ones(1, 3, 1, 1)).flatten().tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a plain ``state_dict`` or an augrobust checkpoint (its ``"model"`` entry) into ``model``, strictly.

    ``module.`` / ``_orig_mod.`` prefixes (DDP, ``torch.compile``) are stripped. Loaded with
    ``weights_only=True``: a file that needs arbitrary unpickling is refused.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise AugrobustValueError(f"weights file {p!r} does not exist; give a state_dict saved with torch.save.")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a non-checkpoint file
        raise AugrobustValueError(f"cannot read weights {p!r} ({type(e).__name__}: {e}).") from e
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]  # an augrobust checkpoint
    elif isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise AugrobustValueError(f"{p!r} holds no state_dict (a dict of tensors); got {type(obj).__name__}.")
    state = dict(obj)
    for prefix in _WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches (e.g. another number of classes)
        raise AugrobustValueError(
            f"the weights {p!r} do not fit the model: {str(e).splitlines()[-1].strip()}; check --model and "
            "--num-classes."
        ) from e
    if result.missing_keys or result.unexpected_keys:
        raise AugrobustValueError(
            f"the weights {p!r} do not fit the model: missing {result.missing_keys[:4]}"
            f"{' ...' if len(result.missing_keys) > 4 else ''}, unexpected {result.unexpected_keys[:4]}"
            f"{' ...' if len(result.unexpected_keys) > 4 else ''}; check --model and --num-classes."
        )
    return model


def load_model_spec(spec: str, *, weights: str | os.PathLike[str] | None = None, num_classes: int = 1000) -> nn.Module:
    """Build ``torchvision:NAME`` or ``timm:NAME`` with random initialisation (nothing is downloaded) for
    ``num_classes`` and load ``weights`` (see :func:`load_weights`), in eval mode.

    Example:
        >>> load_model_spec("torchvision:resnet18", num_classes=10).fc.out_features
        10
    """
    lib, sep, name = spec.partition(":")
    if not sep or not name or lib not in ("torchvision", "timm"):
        raise AugrobustValueError(
            f"--model {spec!r} is not understood; give torchvision:NAME (e.g. torchvision:resnet18) or timm:NAME."
        )
    if lib == "torchvision":
        import torchvision

        available = torchvision.models.list_models()
        if name not in available:
            from augrobust._checks import closest

            raise AugrobustValueError(f"torchvision has no model {name!r}{closest(name, available)}.")
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    else:
        try:
            import timm
        except ImportError:
            raise AugrobustValueError(
                "timm models need timm, which is not installed: pip install 'augrobust[timm]'."
            ) from None
        if not timm.is_model(name):
            raise AugrobustValueError(f"timm has no model {name!r}; see timm.list_models().")
        model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    if weights is not None:
        load_weights(model, weights)
    return model.eval()
