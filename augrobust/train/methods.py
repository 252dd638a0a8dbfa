"""Training methods: what happens to a batch on the device before the forward pass.

A method is any callable ``(model, x, y) -> x_aug`` on a float ``(B, C, H, W)`` batch in [0, 1] that is
already on the training device. It receives the model so that adversarial methods (ANT, AFA) can use its
loss; input-only methods ignore it. New methods register a zero-argument factory in :data:`METHODS`
(``register_method``) and become available to :func:`augrobust.train.train` and ``augrobust train``.
DAMP is not a method: it changes the forward/optimiser and combines with any method.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from augrobust.errors import AugrobustError, AugrobustValueError

__all__ = ["ERM", "GNT", "METHODS", "Method", "get_method", "random_crop_flip", "register_method"]


class Method(Protocol):
    """``(model, x, y) -> x_aug``: augment a device batch (x float in [0, 1], y int64 labels).

    A method that needs its own objective (several forward passes, an auxiliary route, a consistency
    loss) also defines ``loss(model, forward, x, y) -> (loss, logits)``; the trainer then calls that
    instead of ``cross_entropy(forward(method(model, x, y)), y)``. ``forward`` is the training forward
    (DAMP's per-sub-batch pass when DAMP is on, else ``model``); ``logits`` feed the running accuracy.
    A method that needs a changed model (AFA's dual BatchNorm) defines ``prepare_model(model) -> model``:
    the trainer calls it once before building the optimizer, and ``augrobust eval`` again to load the
    checkpoint.
    """

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...


def random_crop_flip(x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """The standard CIFAR training augmentation on a device batch: zero-pad, random crop back, random h-flip.

    Per image an offset ``(dy, dx)`` uniform in ``0..2*padding`` and a flip with probability 0.5, like
    torchvision's ``RandomCrop(size, padding)`` + ``RandomHorizontalFlip()`` per sample, but one gather for
    the batch on its device.

    Example:
        >>> x = torch.rand(4, 3, 8, 8)
        >>> random_crop_flip(x, padding=2).shape
        torch.Size([4, 3, 8, 8])
    """
    if padding < 0:
        raise AugrobustValueError(f"padding must be >= 0, got {padding}.")
    b, c, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), device=x.device, generator=generator)
    flip = torch.rand(b, device=x.device, generator=generator) < 0.5
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    rows = offsets[:, :1] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # a flipped crop reads its columns backwards
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * padding))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


class ERM:
    """Empirical risk minimisation: the batch as it is.

    Example:
        >>> x = torch.rand(2, 3, 4, 4)
        >>> ERM()(None, x, None) is x
        True
    """

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x

    def __repr__(self) -> str:
        return "ERM()"


class GNT:
    """Gaussian noise training (Rusak et al. 2020): ``augrobust.GaussianNoise(sigma, p)`` on the device batch.

    Each image independently gets additive N(0, sigma^2) noise (then clipped to [0, 1]) with probability
    ``p`` and stays clean otherwise, in image space before the model's Normalize layer.

    Args:
        sigma: noise standard deviation in [0, 1] image units (0.5 in the paper).
        p: probability that an image is noised (0.5: half clean, half noisy).
        augmentation: the module to apply instead of ``augrobust.GaussianNoise(sigma=sigma, p=p)``.

    Example:
        >>> gnt = GNT(augmentation=lambda x: (x + 0.5 * torch.randn_like(x)).clamp(0, 1))
        >>> gnt(None, torch.rand(2, 3, 4, 4), None).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(
        self, sigma: float = 0.5, p: float = 0.5, augmentation: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        if augmentation is None:
            try:
                from augrobust import GaussianNoise  # type: ignore[attr-defined]
            except ImportError as err:  # the transform ships separately from the trainer
                raise AugrobustError(
                    "method 'gnt' needs augrobust.GaussianNoise, which this installation lacks; "
                    "pass augmentation=... or use method 'erm'."
                ) from err
            augmentation = GaussianNoise(sigma=sigma, p=p)
        self.sigma, self.p = sigma, p
        self.augmentation = augmentation

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if isinstance(self.augmentation, nn.Module):
            self.augmentation.to(x.device)
        return self.augmentation(x)

    def __repr__(self) -> str:
        return f"GNT(sigma={self.sigma}, p={self.p})"


#: Method name -> zero-argument factory. Extend with :func:`register_method`.
METHODS: dict[str, Callable[[], Method]] = {"erm": ERM, "gnt": GNT}


def register_method(name: str, factory: Callable[[], Method]) -> None:
    """Make ``name`` usable as ``method=`` / ``--method``; ``factory()`` returns the method callable.

    Example:
        >>> register_method("flip", lambda: lambda model, x, y: x.flip(-1))
        >>> get_method("flip")(None, torch.arange(3.0).view(1, 1, 1, 3), None).flatten().tolist()
        [2.0, 1.0, 0.0]
        >>> del METHODS["flip"]
    """
    if not isinstance(name, str) or not name:
        raise AugrobustValueError(f"method name must be a non-empty string, got {name!r}.")
    METHODS[name] = factory


def get_method(name: str, **options: Any) -> Method:
    """Instantiate the method registered as ``name`` with keyword ``options`` for its factory.

    Raises:
        AugrobustValueError: unknown name (the message lists the registered ones), or an option the
            factory does not take (the message shows the factory's signature).

    Example:
        >>> get_method("gnt", sigma=0.1)
        GNT(sigma=0.1, p=0.5)
    """
    if name not in METHODS:
        raise AugrobustValueError(f"Unknown training method {name!r}; choose one of {sorted(METHODS)}.")
    factory = METHODS[name]
    try:
        signature = inspect.signature(factory)
        signature.bind(**options)
    except TypeError as err:
        raise AugrobustValueError(
            f"method {name!r} does not take the options {sorted(options)}: {err}; its factory is {name}{signature}."
        ) from err
    except ValueError:  # no introspectable signature (some builtins): let the call itself complain
        pass
    return factory(**options)
