"""The :class:`Method` base class: what a training method may change, each with a default that changes nothing.

A method sees every training batch on the device, as a float ``(B, C, H, W)`` batch in [0, 1] with its int64
labels, after the base augmentation. The trainer calls exactly these hooks, in this order, and nothing else:

* :meth:`Method.prepare_model` once, before the optimiser is built (AFA's dual BatchNorm); the checkpoint
  loader calls it again to rebuild the model the checkpoint stores;
* :meth:`Method.loss` on every step (default: cross-entropy of ``forward(method(model, x, y))``), whose
  batch comes from ``method(model, x, y)``, which defaults to :meth:`Method.augment` ``(x, y)``;
* :meth:`Method.state_dict` after every epoch and :meth:`Method.load_state_dict` on resume (ANT's generators).

Override :meth:`~Method.augment` for an input-only method (GNT, DFM-X), ``__call__`` when the augmentation needs
the model (ANT's generator step), :meth:`~Method.loss` for another objective (AFA's auxiliary route).
A plain callable ``(model, x, y) -> x_aug`` is wrapped in :class:`FunctionMethod`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from augrobust.errors import AugrobustTypeError, AugrobustValueError

__all__ = ["Forward", "FunctionMethod", "Method", "as_method"]

_HOOKS = ("loss", "prepare_model", "state_dict", "load_state_dict")

#: The training forward: the model itself, or DAMP's perturbed pass over it.
Forward = Callable[[torch.Tensor], torch.Tensor]


class Method:
    """A training method; every hook has a default that leaves training as plain ERM.

    Example:
        >>> class Flip(Method):
        ...     def augment(self, x, y):
        ...         return x.flip(-1)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> loss, logits = Flip().loss(model, model, torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0]))
        >>> loss.ndim, tuple(logits.shape), Flip().state_dict()
        (0, (3, 2), {})
    """

    def augment(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The batch the classifier trains on, from the batch ``x`` and its labels ``y`` (default: ``x``)."""
        return x

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``augment(x, y)``; a method whose augmentation needs the classifier (ANT) overrides this instead."""
        return self.augment(x, y)

    def loss(
        self, model: nn.Module, forward: Forward, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, logits)`` of one step; default ``CE(forward(self(model, x, y)), y)``.

        Args:
            model: the model (or its DDP wrapper), for methods that switch its mode or route.
            forward: the training forward (``model``, or DAMP's perturbed pass); use it for every forward
                that should train the model.
            x: float batch in [0, 1] on the device; y: its labels.

        Returns:
            The scalar loss to minimise and the logits that feed the running accuracy.
        """
        logits = forward(self(model, x, y))
        return F.cross_entropy(logits, y), logits

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """The model to train, made from the freshly built ``model`` (default: unchanged)."""
        return model

    def state_dict(self) -> dict[str, Any]:
        """State that must survive a resume, as tensors and plain containers (default: none)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (default: accept only the empty state, which is what was saved)."""
        if not isinstance(state, dict):
            raise AugrobustTypeError(f"{type(self).__name__}.load_state_dict needs a dict, got {type(state).__name__}.")
        if state:
            raise AugrobustValueError(
                f"{type(self).__name__} keeps no state, but was given one with keys {sorted(state)}: "
                "it was saved by another method."
            )


class FunctionMethod(Method):
    """A plain callable ``(model, x, y) -> x_aug`` as a :class:`Method` (no state, no model change).

    Example:
        >>> method = FunctionMethod(lambda model, x, y: x * 0)
        >>> method(None, torch.ones(1, 1, 1, 1), None).sum().item()
        0.0
    """

    def __init__(self, function: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        if not callable(function):
            raise AugrobustTypeError(
                "a training method must be a Method or a callable (model, x, y) -> x_aug, "
                f"got {type(function).__name__}."
            )
        self.function = function

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.function(model, x, y)

    def __repr__(self) -> str:
        return f"FunctionMethod({self.function!r})"


def as_method(method: Method | Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]) -> Method:
    """``method`` itself if it is a :class:`Method`, else a plain callable wrapped in :class:`FunctionMethod`.

    Raises:
        AugrobustTypeError: ``method`` is not a :class:`Method` but defines one of its hooks (``loss``,
            ``prepare_model``, ``state_dict``, ``load_state_dict``): the trainer calls hooks only on a
            :class:`Method`, so wrapping it would silently drop them.

    Example:
        >>> as_method(lambda model, x, y: x).__class__.__name__
        'FunctionMethod'
    """
    if isinstance(method, Method):
        return method
    hooks = [name for name in _HOOKS if callable(getattr(type(method), name, None))]
    if hooks:
        raise AugrobustTypeError(
            f"{type(method).__name__} defines {hooks} but is not a Method subclass, so the trainer would ignore "
            "them: derive it from augrobust.train.Method."
        )
    return FunctionMethod(method)
