"""The ``dfmx`` training method: DFM-X (Wang et al., ICCV-W 2023) on the device batch, with the batch labels.

Workflow: train a standard model, compute its Dominant Frequency Maps on held-out images (``augrobust dfm``, or
:func:`augrobust.dfm.compute_dfms` and :func:`augrobust.dfm.save_dfms`), then train a new model with the maps
as the method option ``dfms``: ``TrainConfig(method="dfmx", method_options={"dfms": "dfms.pt"})``, or
``augrobust train --method dfmx --method-option dfms=dfms.pt``.
"""

from __future__ import annotations

import os

import torch

from augrobust._checks import check_bool, check_probability
from augrobust.errors import AugrobustValueError
from augrobust.train.methods.base import Method
from augrobust.transforms.dfmx import DFMX

__all__ = ["DFMXMethod"]


class DFMXMethod(Method):
    """DFM-X as a training method: ``augrobust.DFMX(dfms, p)(x, labels=y)`` on each device batch.

    Each image is, with probability ``p``, filtered with the DFM of a randomly drawn class; it is left alone
    when the drawn class is its own (the reference's rule, effective rate ``p (K - 1) / K``). The batch is in
    ``[0, 1]`` before the model's Normalize layer; with the DC term kept the filter commutes with Normalize,
    so ``clip=False`` (the default here) is exactly the reference's filtering of normalised tensors.

    A DFM *file* is read when the method first augments a batch, not when it is built: the checkpoint loader
    builds the run's method to rebuild its model and must not need the map file for that.

    Args:
        dfms: ``(K, H, W)`` DFMs or a DFM file path (``.pt`` / ``.npy`` from :func:`augrobust.dfm.save_dfms`, or
            a reference ``.pkl``).
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
        if augmentation is None and dfms is None:
            raise AugrobustValueError(
                "method 'dfmx' needs DFMs: pass the map file as the method option dfms "
                "(method_options={'dfms': 'dfms.pt'}, or --method-option dfms=dfms.pt; write it with `augrobust dfm` "
                "or augrobust.dfm.save_dfms), or DFMXMethod(dfms=tensor)."
            )
        self._dfms, self._p, self._clip = dfms, check_probability(p, "p"), check_bool(clip, "clip")
        if augmentation is None and isinstance(dfms, torch.Tensor):
            augmentation = DFMX(dfms, p=p, clip=clip)  # in memory already: check the maps now
        self._augmentation = augmentation

    @property
    def augmentation(self) -> DFMX:
        """The ``DFMX`` module (reads the DFM file on first use)."""
        if self._augmentation is None:
            self._augmentation = DFMX(self._dfms, p=self._p, clip=self._clip)
        return self._augmentation

    def augment(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.augmentation.to(x.device)
        return self.augmentation(x, labels=y)

    def __repr__(self) -> str:
        if self._augmentation is None:
            return f"DFMXMethod(dfms={str(self._dfms)!r}, p={self._p}, clip={self._clip})"
        aug = self._augmentation
        k, h, w = aug.dfms.shape
        return f"DFMXMethod(dfms=<{k}x{h}x{w}>, p={aug.p}, clip={aug.clip})"
