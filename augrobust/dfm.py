"""Dominant Frequency Maps (DFMs): which frequencies a trained classifier needs, per class.

A DFM is a binary ``(H, W)`` mask over the fftshift-ed spectrum (DC at ``(H // 2, W // 2)``), one per class.
DFM-X (Wang et al., ICCV-W 2023) computes them once from a separately trained model and then trains a new
model on images filtered with *other* classes' DFMs (:class:`augrobust.DFMX`).

This module holds

* :func:`removal_order`: the spiral order in which the DFM-X procedure tries to remove frequencies (the
  reference's ``removal_order.pkl``, rebuilt for any size);
* :func:`compute_dfms`: the greedy sweep of the reference ``Compute_DFM_CIFAR.py``, batched on the model's
  device: one forward of the evaluation set per removal level serves every class at once;
* :func:`save_dfms` / :func:`load_dfms`: a ``torch.load(weights_only=True)``-safe file format (or ``.npy``),
  and :func:`load_reference_dfms` for the reference's pickles (a dict ``class -> H x W mask``) through a
  restricted unpickler that builds nothing but containers, numbers and NumPy arrays.

The sweep (reference semantics). Let ``order`` be :func:`removal_order`. Positions with level 0 are always
removed. For each class ``c``, ``cur_c`` starts as the number of correctly classified class-``c`` images
(unfiltered). Then for every distinct level ``v`` from the highest (next to DC) down to 1: tentatively remove
the frequencies of level ``v`` in addition to those already removed for ``c``, filter the class-``c`` images,
and count the correct ones ``n_c``; if ``n_c >= cur_c - tolerance`` the removal is kept and ``cur_c = n_c``.
The DFM is what was never removed. Because a class's count only depends on its own images, all classes'
candidate masks are evaluated in the same forward pass: each image is filtered with its own class's mask.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from augrobust._pickle import safe_pickle_load
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.frequency_mask import apply_half_spectrum_filter, half_spectrum_filter

__all__ = [
    "DFM_FORMAT",
    "compute_dfms",
    "load_dfms",
    "load_reference_dfms",
    "removal_order",
    "save_dfms",
]

#: The ``format`` tag of files written by :func:`save_dfms`.
DFM_FORMAT = "augrobust.dfm"
_FORMAT_VERSION = 1


# -- the removal order -------------------------------------------------------------------------------------


def _spiral(h: int, w: int) -> np.ndarray:
    """1, 2, ..., h*w laid clockwise from the top-left corner inwards."""
    out = np.zeros((h, w), dtype=np.int64)
    top, left, bottom, right, value = 0, 0, h - 1, w - 1, 1
    while top <= bottom and left <= right:
        for c in range(left, right + 1):
            out[top, c] = value
            value += 1
        top += 1
        for r in range(top, bottom + 1):
            out[r, right] = value
            value += 1
        right -= 1
        if top <= bottom:
            for c in range(right, left - 1, -1):
                out[bottom, c] = value
                value += 1
            bottom -= 1
        if left <= right:
            for r in range(bottom, top - 1, -1):
                out[r, left] = value
                value += 1
            left += 1
    return out


def _conjugate_index(n: int) -> np.ndarray:
    """Index of frequency ``-k`` for every index in fftshift layout of length ``n`` (DC at ``n // 2``)."""
    return (2 * (n // 2) - np.arange(n)) % n


def removal_order(size: int | Sequence[int], *, reference_layout: bool = True) -> torch.Tensor:
    """The DFM-X removal order over the fftshift-ed spectrum: higher levels are removed first.

    Construction (it reproduces the reference's ``DFMs/removal_order.pkl`` for 32x32 position for position):
    number the ``H x W`` grid 1, 2, ... clockwise in a spiral from the top-left corner inwards, so the levels
    grow towards the centre (for even sizes the DC term gets ``H*W - 1`` and its left neighbour ``H*W``);
    then every position in the right half (columns ``>= W // 2``) takes the level of its conjugate-symmetric
    partner ``-k``, so that most conjugate pairs are removed together. With ``reference_layout=True`` (the
    reference) the Nyquist row (row 0, even ``H``) right of the DC column gets level 0 instead: those
    frequencies are removed in every DFM. ``reference_layout=False`` gives them their partner's level.

    Args:
        size: ``S`` or ``(H, W)``, each at least 2.
        reference_layout: keep the reference's always-removed half of the Nyquist row (default ``True``).

    Returns:
        ``(H, W)`` int64 levels (0 = always removed).

    Example:
        >>> removal_order(4)
        tensor([[ 1,  2,  3,  0],
                [12, 13,  8,  9],
                [11, 16, 15, 16],
                [10,  9, 14, 13]])
    """
    h, w = _parse_size(size)
    plain = _spiral(h, w)
    rows, cols = _conjugate_index(h), _conjugate_index(w)
    partner = plain[rows[:, None], cols[None, :]]
    order = plain.copy()
    order[:, w // 2 :] = partner[:, w // 2 :]
    if reference_layout and h % 2 == 0:
        order[0, w // 2 + 1 :] = 0
    return torch.from_numpy(order)


def _parse_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        dims = (size, size)
    elif isinstance(size, Sequence) and len(size) == 2 and all(
        isinstance(s, int) and not isinstance(s, bool) for s in size
    ):
        dims = (int(size[0]), int(size[1]))
    else:
        raise AugrobustTypeError(f"size must be an int or a pair (H, W) of ints, got {size!r}.")
    if min(dims) < 2:
        raise AugrobustValueError(f"size must be at least 2x2, got {dims}.")
    return dims


# -- the sweep ---------------------------------------------------------------------------------------------


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _as_images(images: object) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise AugrobustTypeError(f"images must be a torch.Tensor (N, C, H, W), got {type(images).__name__}.")
    if images.ndim != 4:
        raise AugrobustValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}.")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise AugrobustTypeError(f"images must be uint8 or float, got {images.dtype}.")
    return images


def compute_dfms(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    tolerance: int = 6,
    num_classes: int | None = None,
    batch_size: int = 1000,
    order: torch.Tensor | None = None,
    center: Sequence[float] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Compute one DFM per class with the DFM-X greedy sweep (see the module docstring), batched.

    Args:
        model: a trained classifier taking the images as given (augrobust models take ``[0, 1]`` images and
            normalise inside). Run in eval mode under ``torch.no_grad``; its mode is restored afterwards.
        images: ``(N, C, H, W)`` evaluation images, uint8 (scaled to ``[0, 1]``) or float (used as they are,
            float64 stays float64). The reference uses the CIFAR-10 test set; a held-out training split
            avoids tuning on the test set.
        labels: ``(N,)`` integer class labels.
        tolerance: the reference's ``t``: how many more correct images of a class a removal may cost
            (default 6, for 1000 images per class).
        num_classes: ``K`` (default: ``max(labels) + 1``); every class needs at least one image.
        batch_size: images per forward pass.
        order: a removal order (default :func:`removal_order` of the image size).
        center: per-channel offset to filter around (filter ``x - center``, add it back). The reference filters
            normalised images, which only differs from filtering ``[0, 1]`` images when the DC term is
            removed; passing the model's Normalize mean reproduces it exactly.
        progress: called as ``progress(done, total)`` after each level (``total`` = number of levels).

    Returns:
        ``(K, H, W)`` float32 0/1 DFMs on the CPU, in fftshift layout.

    Raises:
        AugrobustValueError / AugrobustTypeError: malformed images, labels, order or arguments, or a class
            with no image.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
        >>> x, y = torch.rand(20, 3, 8, 8), torch.arange(20) % 2
        >>> compute_dfms(model, x, y, tolerance=1).shape
        torch.Size([2, 8, 8])
    """
    images = _as_images(images)
    if (
        not isinstance(labels, torch.Tensor)
        or labels.ndim != 1
        or labels.dtype.is_floating_point
        or labels.is_complex()
    ):
        raise AugrobustTypeError("labels must be a 1-D integer torch.Tensor with one label per image.")
    if labels.shape[0] != images.shape[0]:
        raise AugrobustValueError(f"{images.shape[0]} images but {labels.shape[0]} labels.")
    if images.shape[0] == 0:
        raise AugrobustValueError("compute_dfms needs at least one evaluation image.")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise AugrobustValueError(f"tolerance must be a number >= 0 (images per class), got {tolerance!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise AugrobustValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
    labels_cpu = labels.detach().to("cpu", torch.int64)
    if int(labels_cpu.min()) < 0:
        raise AugrobustValueError(f"labels must be >= 0, got {int(labels_cpu.min())}.")
    k = int(labels_cpu.max()) + 1 if num_classes is None else num_classes
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or int(labels_cpu.max()) >= k:
        raise AugrobustValueError(
            f"num_classes must be an int > max(labels) = {int(labels_cpu.max())}, got {num_classes!r}."
        )
    counts = torch.bincount(labels_cpu, minlength=k)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise AugrobustValueError(f"classes {missing} have no evaluation image; every class needs some to get a DFM.")
    h, w = images.shape[-2:]
    if order is None:
        order = removal_order((h, w))
    if not isinstance(order, torch.Tensor) or tuple(order.shape) != (h, w) or order.is_floating_point() and not bool(
        (order == order.round()).all()
    ):
        raise AugrobustValueError(
            f"order must be an integer-valued ({h}, {w}) tensor (see removal_order), got {order!r:.80}."
        )
    order = order.to(torch.int64)
    levels = torch.unique(order[order > 0]).flip(0).tolist()  # highest (next to DC) first

    device = _model_device(model)
    dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    offset = None if center is None else torch.as_tensor(center, dtype=dtype, device=device).reshape(1, -1, 1, 1)
    order_dev = order.to(device)
    labels_dev = labels_cpu.to(device)

    def count_correct(keep: torch.Tensor | None) -> torch.Tensor:
        """Correct predictions per class when each image is filtered with its class's ``keep`` mask."""
        correct = torch.zeros(k, dtype=torch.int64, device=device)
        filters = None if keep is None else half_spectrum_filter(keep, dtype=dtype)
        for start in range(0, images.shape[0], batch_size):
            xb = images[start : start + batch_size].to(device)
            xb = xb.to(dtype).div_(255.0) if xb.dtype == torch.uint8 else xb.to(dtype)
            yb = labels_dev[start : start + batch_size]
            if filters is not None:
                xb = xb if offset is None else xb - offset
                xb = apply_half_spectrum_filter(xb, filters[yb])
                xb = xb if offset is None else xb + offset
            hit = (model(xb).argmax(1) == yb).to(torch.int64)
            correct.scatter_add_(0, yb, hit)
        return correct

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            current = count_correct(None)
            removed = (order_dev == 0).unsqueeze(0).expand(k, h, w).clone()
            for step, level in enumerate(levels, 1):
                candidate = removed | (order_dev == level)
                found = count_correct((~candidate).to(dtype))
                accept = found >= current - tolerance
                removed = torch.where(accept.view(k, 1, 1), candidate, removed)
                current = torch.where(accept, found, current)
                if progress is not None:
                    progress(step, len(levels))
    finally:
        model.train(was_training)
    return (~removed).to(device="cpu", dtype=torch.float32)


# -- files -------------------------------------------------------------------------------------------------


def _check_dfms(dfms: object, source: str) -> torch.Tensor:
    if isinstance(dfms, np.ndarray):
        dfms = torch.from_numpy(dfms)
    if not isinstance(dfms, torch.Tensor):
        raise AugrobustTypeError(f"{source}: DFMs must be a tensor of shape (K, H, W), got {type(dfms).__name__}.")
    if dfms.ndim != 3 or min(dfms.shape) < 1:
        raise AugrobustValueError(f"{source}: DFMs must have shape (K, H, W) with K >= 1, got {tuple(dfms.shape)}.")
    integer_like = (torch.bool, torch.uint8, torch.int32, torch.int64)
    if dfms.is_complex() or not (dfms.is_floating_point() or dfms.dtype in integer_like):
        raise AugrobustTypeError(f"{source}: DFMs must be real numbers, got dtype {dfms.dtype}.")
    dfms = dfms.to(torch.float32)
    if not bool(torch.isfinite(dfms).all()):
        raise AugrobustValueError(f"{source}: DFMs contain NaN or infinite values.")
    return dfms


def save_dfms(path: str | os.PathLike[str], dfms: torch.Tensor, meta: dict[str, Any] | None = None) -> Path:
    """Write DFMs to ``path``: ``.npy`` (the bare ``(K, H, W)`` float32 array) or a torch file (anything else).

    The torch file holds ``{"format": "augrobust.dfm", "version": 1, "dfms": (K, H, W) float32, "meta": {...}}``
    and loads with ``torch.load(path, weights_only=True)``; ``meta`` may hold strings, numbers, bools, None,
    lists and dicts (e.g. the model, tolerance and data used).

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = save_dfms(os.path.join(d, "dfms.pt"), torch.ones(10, 32, 32), {"tolerance": 6})
        ...     load_dfms(p, return_meta=True)[1]
        {'tolerance': 6}
    """
    dfms = _check_dfms(dfms, "save_dfms").detach().cpu()
    path = Path(path)
    if path.is_dir():
        raise AugrobustValueError(f"{str(path)!r} is a directory; give a file name such as dfms.pt.")
    if not path.parent.is_dir():
        raise AugrobustValueError(f"the folder of {str(path)!r} does not exist.")
    meta = {} if meta is None else meta
    _check_meta(meta, "meta")
    if path.suffix == ".npy":
        if meta:
            raise AugrobustValueError("a .npy file holds only the array; save meta in a .pt file instead.")
        np.save(path, dfms.numpy())
    else:
        torch.save({"format": DFM_FORMAT, "version": _FORMAT_VERSION, "dfms": dfms, "meta": meta}, path)
    return path


def _check_meta(value: object, where: str) -> None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_meta(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise AugrobustTypeError(f"{where} keys must be str or int, got {key!r}.")
            _check_meta(item, f"{where}[{key!r}]")
        return
    raise AugrobustTypeError(
        f"{where} must hold only str, numbers, bools, None, lists and dicts (weights_only-safe), "
        f"got {type(value).__name__}."
    )


def load_dfms(
    path: str | os.PathLike[str], *, return_meta: bool = False
) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    """Read DFMs saved by :func:`save_dfms` (``.pt`` or ``.npy``) or a reference pickle (``.pkl``).

    Args:
        path: the file. ``.pkl`` files go through :func:`load_reference_dfms`.
        return_meta: also return the stored ``meta`` dict (empty for ``.npy`` / ``.pkl``).

    Returns:
        ``(K, H, W)`` float32 DFMs (and the meta dict).

    Raises:
        AugrobustValueError: missing file, or a file that is not a DFM file (the message says what was found).
    """
    path = Path(path)
    if not path.is_file():
        raise AugrobustValueError(
            f"No DFM file at {str(path)!r}; compute one with augrobust.dfm.compute_dfms + save_dfms."
        )
    meta: dict[str, Any] = {}
    if path.suffix == ".pkl":
        dfms = load_reference_dfms(path)
    elif path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise AugrobustValueError(f"Cannot read {str(path)!r} as a .npy DFM array: {err}") from err
        dfms = _check_dfms(array, str(path))
    else:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for a bad file (UnpicklingError, RuntimeError, ...)
            raise AugrobustValueError(
                f"Cannot read {str(path)!r} as a DFM file ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                "write it with augrobust.dfm.save_dfms."
            ) from err
        if not isinstance(data, dict) or data.get("format") != DFM_FORMAT or "dfms" not in data:
            found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
            raise AugrobustValueError(
                f"{str(path)!r} is not an augrobust DFM file (expected a dict with format={DFM_FORMAT!r}, "
                f"found {found})."
            )
        if data.get("version") != _FORMAT_VERSION:
            raise AugrobustValueError(
                f"{str(path)!r} has DFM format version {data.get('version')!r}; "
                f"this augrobust reads {_FORMAT_VERSION}."
            )
        dfms = _check_dfms(data["dfms"], str(path))
        meta = data.get("meta") or {}
    return (dfms, meta) if return_meta else dfms


def load_reference_dfms(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read the reference's DFM pickle (``DFMs/resnet18.pkl``: a dict ``class -> H x W mask``) safely.

    The pickle is read with an unpickler that refuses every global except NumPy's array constructors, so a
    malicious file cannot run code. Classes must be the integers ``0..K-1``; masks are lists or arrays.

    Returns:
        ``(K, H, W)`` float32 DFMs, class ``k`` at index ``k``.

    Example:
        >>> import tempfile, os, pickle
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = os.path.join(d, "ref.pkl")
        ...     with open(p, "wb") as f:
        ...         pickle.dump({0: [[1.0, 0.0], [0.0, 1.0]], 1: [[0.0, 0.0], [1.0, 1.0]]}, f)
        ...     load_reference_dfms(p).shape
        torch.Size([2, 2, 2])
    """
    path = Path(path)
    data = safe_pickle_load(path, what="DFM pickle")
    if not isinstance(data, dict) or not data:
        raise AugrobustValueError(
            f"{str(path)!r} must hold a non-empty dict class -> (H, W) mask, found {type(data).__name__}."
        )
    keys = sorted(data, key=lambda key: (not isinstance(key, int), str(key)))
    if any(isinstance(key, bool) or not isinstance(key, int) for key in keys) or keys != list(range(len(keys))):
        raise AugrobustValueError(f"{str(path)!r}: the dict keys must be the classes 0..K-1, got {list(data)[:12]}.")
    try:
        stacked = np.stack([np.asarray(data[key], dtype=np.float64) for key in keys])
    except (ValueError, TypeError) as err:
        raise AugrobustValueError(f"{str(path)!r}: the masks are not equal-sized numeric (H, W) arrays: {err}") from err
    return _check_dfms(stacked, str(path))

