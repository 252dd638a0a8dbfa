"""The ``dfmx`` training method: DFM-X (Wang et al., ICCV-W 2023) on the device batch, with the batch labels.

Workflow: train a standard model, compute its Dominant Frequency Maps on held-out images
(:func:`augrobust.dfm.compute_dfms`), save them (:func:`augrobust.dfm.save_dfms`), then train a new model with
``DFMXMethod(dfms=path)``. From the command line the method reads the DFM file from the environment variable
:data:`DFMS_ENV` (``AUGROBUST_DFMS=/path/dfms.pt augrobust train --method dfmx ...``).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from augrobust.errors import AugrobustValueError
from augrobust.train.methods import register_method
from augrobust.transforms.dfmx import DFMX

__all__ = ["DFMS_ENV", "DFMXMethod"]

#: Environment variable naming the DFM file when the method is built without arguments (``--method dfmx``).
DFMS_ENV = "AUGROBUST_DFMS"


class DFMXMethod:
    """DFM-X as a training method: ``augrobust.DFMX(dfms, p)(x, labels=y)`` on each device batch.

    Each image is, with probability ``p``, filtered with the DFM of a randomly drawn class; it is left alone
    when the drawn class is its own (the reference's rule, effective rate ``p (K - 1) / K``). The batch is in
    ``[0, 1]`` before the model's Normalize layer; with the DC term kept the filter commutes with Normalize,
    so ``clip=False`` (the default here) is exactly the reference's filtering of normalised tensors.

    Args:
        dfms: ``(K, H, W)`` DFMs or a DFM file path (``.pt`` / ``.npy`` from :func:`augrobust.dfm.save_dfms`, or
            a reference ``.pkl``); default: the file named by the ``AUGROBUST_DFMS`` environment variable.
        p: the reference's ``X%`` (0.3).
        clip: clip to ``[0, 1]`` (off by default: the reference does not clip).
        augmentation: a ready ``DFMX`` module to use instead (``dfms``, ``p`` and ``clip`` are then ignored).

    Example:
        >>> from augrobust.transforms.dfmx import example_dfms
        >>> method = DFMXMethod(example_dfms(10, 8), p=1.0)
        >>> method(None, torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])).shape
        torch.Size([4, 3, 8, 8])
    """

    def __init__(
        self,
        dfms: torch.Tensor | str | os.PathLike[str] | None = None,
        *,
        p: float = 0.3,
        clip: bool = False,
        augmentation: DFMX | None = None,
    ) -> None:
        if augmentation is None:
            if dfms is None:
                dfms = os.environ.get(DFMS_ENV) or None
                if dfms is None:
                    raise AugrobustValueError(
                        f"method 'dfmx' needs DFMs: set {DFMS_ENV}=/path/to/dfms.pt (written by "
                        "augrobust.dfm.save_dfms) or pass DFMXMethod(dfms=...)."
                    )
            augmentation = DFMX(dfms, p=p, clip=clip)
        self.augmentation = augmentation

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.augmentation.to(x.device)
        return self.augmentation(x, labels=y)

    def __repr__(self) -> str:
        aug = self.augmentation
        k, h, w = aug.dfms.shape
        return f"DFMXMethod(dfms=<{k}x{h}x{w}>, p={aug.p}, clip={aug.clip})"


register_method("dfmx", DFMXMethod)
