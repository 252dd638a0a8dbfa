"""The ``erm`` training method: empirical risk minimisation, the batch as it is."""

from __future__ import annotations

from augrobust.train.methods.base import Method

__all__ = ["ERM"]


class ERM(Method):
    """Empirical risk minimisation: every hook keeps :class:`Method`'s default.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 4, 4)
        >>> ERM()(None, x, None) is x
        True
    """

    def __repr__(self) -> str:
        return "ERM()"
