"""AFA training (Vaish et al., CVPR 2024): Fourier-basis noise through an auxiliary BatchNorm route.

AFA's "adversarial" part is not an optimisation: strong, out-of-distribution Fourier-basis images
(:class:`augrobust.FourierNoise`) go through a second forward pass whose BatchNorm layers are separate
auxiliary copies (AdvProp / AugMax style), and the two cross-entropies are averaged (the authors' ACE loss):

    L = 1/2 * [ CE(f_M(main(x)), y) + CE(f_A(FourierNoise(x)), y) ]

``f_M`` uses the main BNs, ``f_A`` the auxiliary ones; every other weight is shared. The Fourier image is made
from the batch as it arrives (crop / flip only), not from the main-stream augmentation. At test time the
model runs with the main BNs only.

Pieces:

* :class:`DualBatchNorm2d`: two ``BatchNorm2d`` (``main`` for route ``"M"``, ``aux`` for route ``"A"``);
  evaluation mode always uses ``main``.
* :func:`convert_to_dual_bn`: replace every ``BatchNorm2d`` of a model (both copies start from its state).
* :func:`auxiliary_route`: a context manager routing every dual BN of a model through ``aux``.
* :func:`strip_dual_bn`: back to plain ``BatchNorm2d`` (the main copies), for export and evaluation.
* :class:`AFA` (method ``"afa"``: the two-stream objective above) and :class:`AFANoAux` (method
  ``"afa_noaux"``: ``FourierNoise`` on every image in a single stream, the paper's "AFA w/o aux").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.train.methods.base import Forward, Method

__all__ = [
    "AFA",
    "AFANoAux",
    "DualBatchNorm2d",
    "auxiliary_route",
    "convert_to_dual_bn",
    "dual_bn_modules",
    "strip_dual_bn",
]

_ROUTES = ("M", "A")


class DualBatchNorm2d(nn.Module):
    """Two ``BatchNorm2d`` layers behind one module: ``main`` (route ``"M"``) and ``aux`` (route ``"A"``).

    In training mode the input goes through the BN named by :attr:`route`; only that BN's running
    statistics are updated and only its affine parameters receive gradients. In evaluation mode the main
    BN is always used, whatever the route, so a trained model evaluates as a plain network.

    Args:
        num_features: number of channels ``C``.
        eps, momentum, affine, track_running_stats, device, dtype: as for ``nn.BatchNorm2d`` (both copies).

    Example:
        >>> bn = DualBatchNorm2d(4)
        >>> bn.route = "A"
        >>> _ = bn(torch.randn(8, 4, 2, 2) + 3.0)
        >>> float(bn.main.running_mean.abs().max()), bool(bn.aux.running_mean.min() > 0.2)
        (0.0, True)
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kwargs = dict(eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats)
        self.main = nn.BatchNorm2d(num_features, **kwargs, device=device, dtype=dtype)
        self.aux = nn.BatchNorm2d(num_features, **kwargs, device=device, dtype=dtype)
        self.num_features = num_features
        self._route = "M"

    @property
    def route(self) -> str:
        """``"M"`` (main BN) or ``"A"`` (auxiliary BN); used in training mode only."""
        return self._route

    @route.setter
    def route(self, value: str) -> None:
        if value not in _ROUTES:
            raise AugrobustValueError(f"DualBatchNorm2d.route must be 'M' (main) or 'A' (auxiliary), got {value!r}.")
        self._route = value

    @classmethod
    def from_batchnorm(cls, bn: nn.BatchNorm2d) -> DualBatchNorm2d:
        """A dual BN whose two copies both start from ``bn``'s parameters, running statistics and mode."""
        weight = bn.weight if bn.weight is not None else bn.running_mean
        dual = cls(
            bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
            track_running_stats=bn.track_running_stats,
            device=weight.device if weight is not None else None, dtype=weight.dtype if weight is not None else None,
        )  # fmt: skip
        state = bn.state_dict()
        dual.main.load_state_dict(state)
        dual.aux.load_state_dict(state)
        for copy in (dual.main, dual.aux):
            for name, param in copy.named_parameters():
                param.requires_grad_(getattr(bn, name).requires_grad)
        return dual.train(bn.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self._route == "A":
            return self.aux(x)
        return self.main(x)

    def extra_repr(self) -> str:
        return f"{self.num_features}, route={self._route!r}"


def convert_to_dual_bn(model: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` in ``model`` with a :class:`DualBatchNorm2d` started from it.

    Works in place on the module tree (call it before building the optimiser and before wrapping in
    ``DistributedDataParallel``) and returns the model; a bare ``BatchNorm2d`` is returned converted.
    Layers that already are dual are left alone, so converting twice changes nothing. Other norms
    (LayerNorm, GroupNorm, InstanceNorm, SyncBatchNorm) are kept: they are shared by both routes.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
        >>> type(convert_to_dual_bn(net)[1]).__name__
        'DualBatchNorm2d'
    """
    if not isinstance(model, nn.Module):
        raise AugrobustTypeError(f"convert_to_dual_bn needs an nn.Module, got {type(model).__name__}.")
    if isinstance(model, nn.BatchNorm2d):
        return DualBatchNorm2d.from_batchnorm(model)
    for name, child in model.named_children():
        if isinstance(child, DualBatchNorm2d):
            continue
        converted = convert_to_dual_bn(child)
        if converted is not child:
            setattr(model, name, converted)
    return model


def strip_dual_bn(model: nn.Module) -> nn.Module:
    """Replace every :class:`DualBatchNorm2d` by its main ``BatchNorm2d``: the network used at test time.

    For exporting or evaluating an AFA-trained model as a plain network (its ``state_dict`` then loads
    into the unconverted architecture). Works in place and returns the model.

    Example:
        >>> net = convert_to_dual_bn(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)))
        >>> type(strip_dual_bn(net)[1]).__name__
        'BatchNorm2d'
    """
    if isinstance(model, DualBatchNorm2d):
        return model.main
    for name, child in model.named_children():
        stripped = strip_dual_bn(child)
        if stripped is not child:
            setattr(model, name, stripped)
    return model


def dual_bn_modules(model: nn.Module) -> list[DualBatchNorm2d]:
    """Every :class:`DualBatchNorm2d` in ``model`` (also inside a ``DistributedDataParallel`` wrapper)."""
    return [m for m in model.modules() if isinstance(m, DualBatchNorm2d)]


@contextlib.contextmanager
def auxiliary_route(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, every :class:`DualBatchNorm2d` of ``model`` uses its auxiliary BN (training mode).

    The previous routes are restored on exit, also when the block raises. A model without dual BNs is
    unaffected (its norm layers are shared by both routes).

    Example:
        >>> net = convert_to_dual_bn(nn.Sequential(nn.BatchNorm2d(2)))
        >>> with auxiliary_route(net):
        ...     inside = net[0].route
        >>> inside, net[0].route
        ('A', 'M')
    """
    duals = dual_bn_modules(model)
    previous = [m.route for m in duals]
    try:
        for m in duals:
            m.route = "A"
        yield model
    finally:
        for m, route in zip(duals, previous):
            m.route = route


def _fourier_noise(mean_strength: float, min_strength: float, granularity: int) -> nn.Module:
    from augrobust.transforms.fourier_noise import FourierNoise  # the transform layer imports lazily here

    return FourierNoise(mean_strength, min_strength=min_strength, granularity=granularity)


class AFANoAux(Method):
    """"AFA w/o aux": :class:`augrobust.FourierNoise` on every training image, one stream, one BN.

    Args:
        mean_strength: mean of the exponential strength (10: the authors' published configs).
        min_strength: offset added to every strength.
        granularity: number of orientations on ``[-pi, 0]`` (448).
        augmentation: a module to apply instead of ``FourierNoise(mean_strength, ...)``.

    Example:
        >>> method = AFANoAux(mean_strength=5.0)
        >>> method(None, torch.rand(2, 3, 8, 8), None).shape
        torch.Size([2, 3, 8, 8])
    """

    def __init__(
        self,
        mean_strength: float = 10.0,
        min_strength: float = 0.0,
        granularity: int = 448,
        augmentation: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.mean_strength, self.min_strength, self.granularity = mean_strength, min_strength, granularity
        self.augmentation = augmentation if augmentation is not None else _fourier_noise(
            mean_strength, min_strength, granularity
        )

    def augment(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.augmentation(x)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(mean_strength={self.mean_strength}, min_strength={self.min_strength}, "
            f"granularity={self.granularity})"
        )


class AFA(AFANoAux):
    """AFA with the auxiliary route: ``1/2 [CE(f_M(main(x)), y) + CE(f_A(FourierNoise(x)), y)]``.

    The trainer calls :meth:`prepare_model` once (converting every ``BatchNorm2d`` to a
    :class:`DualBatchNorm2d`) and then :meth:`loss` per step; evaluation uses the main BNs. Called as a plain
    method, ``AFA()(model, x, y)`` returns ``FourierNoise(x)`` (the single-stream variant).

    Models without ``DualBatchNorm2d`` (not converted, or LayerNorm models such as ViT / CCT) still work:
    the auxiliary pass then shares every norm layer with the main pass and AFA is only an extra loss term,
    which is what the reference does for its LayerNorm models.

    Args:
        mean_strength, min_strength, granularity, augmentation: as :class:`AFANoAux`.
        main_augmentation: the main stream's augmentation ``x -> x_main`` on the device batch (AugMix, PRIME,
            GNT, ...); ``None`` keeps the batch as it is ("AFA" alone).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(1), nn.Linear(144, 2))
        >>> model = AFA().prepare_model(net)
        >>> x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
        >>> loss, logits = AFA().loss(model, model, x, y)
        >>> loss.ndim, tuple(logits.shape)
        (0, (4, 2))
    """

    def __init__(
        self,
        mean_strength: float = 10.0,
        min_strength: float = 0.0,
        granularity: int = 448,
        augmentation: Callable[[torch.Tensor], torch.Tensor] | None = None,
        main_augmentation: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(mean_strength, min_strength, granularity, augmentation)
        self.main_augmentation = main_augmentation

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Give ``model`` its auxiliary BNs (:func:`convert_to_dual_bn`); call once, before the optimiser."""
        return convert_to_dual_bn(model)

    def loss(
        self, model: nn.Module, forward: Forward, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ACE objective; returns ``(loss, main-route logits)``.

        Args:
            model: the model (or its DDP wrapper): its dual BNs are switched for the auxiliary pass.
            forward: the training forward (``model``, or DAMP's perturbed pass).
            x: float batch in ``[0, 1]`` on the device; y: labels.
        """
        x_main = x if self.main_augmentation is None else self.main_augmentation(x)
        logits = forward(x_main)
        x_aux = self.augmentation(x)  # from the batch as it came, not from the main stream's augmentation
        with auxiliary_route(model):
            aux_logits = forward(x_aux)
        loss = 0.5 * (F.cross_entropy(logits, y) + F.cross_entropy(aux_logits, y))
        return loss, logits

