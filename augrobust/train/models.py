"""Models for the reference trainer: they take float images in [0, 1] and normalise inside.

Putting :class:`Normalize` first keeps every augmentation, corruption and evaluation in image space
([0, 1], before normalisation), which is where GNT and ImageNet-C are defined.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from augrobust._checks import check_count, closest
from augrobust.errors import AugrobustTypeError, AugrobustValueError

__all__ = ["ARCHITECTURES", "IMAGENET_MEAN", "IMAGENET_STD", "Normalize", "build_model"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as the first layer of a model.

    Args:
        mean: per-channel mean.
        std: per-channel standard deviation (all > 0).

    Example:
        >>> norm = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        >>> norm(torch.full((1, 3, 2, 2), 0.75))[0, :, 0, 0].tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise AugrobustValueError(f"Normalize needs equal-length mean/std with std > 0, got {mean}, {std}.")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def _cifar_stem(net: torchvision.models.ResNet) -> torchvision.models.ResNet:
    """Swap the 7x7/2 stem and max-pool for a 3x3/1 stem (the usual CIFAR ResNet)."""
    net.conv1 = nn.Conv2d(3, net.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    return net


def _resnet18_cifar(num_classes: int) -> nn.Module:
    # zero_init_residual=True zero-initialises the last BN gamma of every block (DAMP's CIFAR setting).
    return _cifar_stem(torchvision.models.resnet18(weights=None, num_classes=num_classes, zero_init_residual=True))


class _ResNet8(nn.Module):
    """A 3-stage CIFAR ResNet with one basic block per stage (widths 16/32/64, ~78k parameters).

    Small enough to train in minutes on a CPU: used by the tests and the CPU end-to-end benchmark
    (SyntheticShapes to > 90 % clean accuracy in ~10 epochs). Two deliberate departures from the
    ResNet-18 recipe, both measured on SyntheticShapes (5k images, 8 epochs, lr 0.05):

    - stages 2 and 3 downsample with a 2x2 max-pool before a stride-1 block, not with stride-2 convs: a
      stride-2 3x3 conv and its 1x1 stride-2 shortcut keep one pixel in four, which aliases fine textures
      (SyntheticShapes' 3.5-5 px stripes / checkers / dots; CIFAR has such detail too) and left the strided
      net at ~37 % train accuracy after 8 epochs, against 91 % with max-pool at the same cost;
    - the last BN gamma of each block starts at 1, not 0: zero-init residuals help deep nets start as
      near-identity maps, but with only three blocks it left the net training far slower (8 epochs:
      23 % -> 74 % train accuracy without it, strided variant).
    """

    def __init__(self, num_classes: int, widths: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
        )
        blocks: list[nn.Module] = []
        inplanes = widths[0]
        for i, planes in enumerate(widths):
            if i:
                blocks.append(nn.MaxPool2d(2))  # anti-aliased enough for 3-5 px textures; see the docstring
            downsample = None
            if inplanes != planes:
                downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes))
            blocks.append(BasicBlock(inplanes, planes, downsample=downsample))
            inplanes = planes
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def _torchvision(name: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes)

    return build


#: Architecture name -> builder ``(num_classes) -> nn.Module`` (without the Normalize layer).
ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    "resnet8_cifar": _ResNet8,
    "resnet18_cifar": _resnet18_cifar,
    **{name: _torchvision(name) for name in ("resnet18", "resnet34", "resnet50", "resnet101", "wide_resnet50_2")},
}


def build_model(
    arch: str,
    num_classes: int,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> nn.Sequential:
    """Build ``Normalize -> network`` for float images in [0, 1].

    Args:
        arch: a key of :data:`ARCHITECTURES`: ``"resnet18_cifar"`` (3x3 stem, no max-pool, zero-init last
            BN gamma per block), ``"resnet8_cifar"`` (tiny, for CPU runs and tests: one block
            per stage, max-pool downsampling, no zero-init; see ``_ResNet8``) or a torchvision ResNet
            name such as ``"resnet18"`` / ``"resnet50"`` (random init, ``weights=None``).
        num_classes: number of output logits (>= 2).
        mean: per-channel mean of the Normalize layer.
        std: per-channel std of the Normalize layer.

    Returns:
        ``nn.Sequential(Normalize, net)``; ``model[1]`` is the network.

    Raises:
        AugrobustValueError: unknown ``arch`` (the message lists the known ones) or ``num_classes < 2``.

    Example:
        >>> model = build_model("resnet8_cifar", num_classes=10)
        >>> model(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    if not isinstance(arch, str):
        raise AugrobustTypeError(f"arch must be a string, got {type(arch).__name__}.")
    if arch not in ARCHITECTURES:
        raise AugrobustValueError(
            f"Unknown arch {arch!r}{closest(arch, ARCHITECTURES)}; choose one of {sorted(ARCHITECTURES)}."
        )
    num_classes = check_count(num_classes, "num_classes", minimum=2)
    return nn.Sequential(Normalize(mean, std), ARCHITECTURES[arch](num_classes))
