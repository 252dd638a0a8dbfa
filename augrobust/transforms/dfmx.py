"""DFMX: DFM-X augmentation (Wang, Brune, Veldhuis, Strisciuglio, ICCV-W 2023).

Each image is low-/band-passed with the Dominant Frequency Map of *another* class, so the model cannot rely
only on its own class's dominant frequencies (frequency shortcuts). The DFMs come from a separately trained
model (:func:`augrobust.dfm.compute_dfms`) and are fixed during training.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from augrobust._checks import check_bool, reject_unknown_kwargs
from augrobust.dfm import load_dfms
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.frequency_mask import apply_half_spectrum_filter, half_spectrum_filter
from augrobust.transforms.base import RobustAugmentation

__all__ = ["DFMX", "dfmx_v2_form", "example_dfms"]


def example_dfms(
    num_classes: int = 10, size: int | tuple[int, int] = 32, *, keep: float = 0.4, seed: int = 0
) -> torch.Tensor:
    """Deterministic random binary DFMs, ``(num_classes, H, W)`` (``size``: ``H = W`` or ``(H, W)``), for
    examples and tests only.

    Each frequency is kept with probability ``keep``, independently (real DFMs come from
    :func:`augrobust.dfm.compute_dfms`).

    Example:
        >>> example_dfms(3, 8).shape
        torch.Size([3, 8, 8])
    """
    h, w = (size, size) if isinstance(size, int) else size
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(num_classes, h, w, generator=gen) < keep).to(torch.float32)


def _as_dfms(dfms: object) -> torch.Tensor:
    if isinstance(dfms, (str, os.PathLike)):
        out = load_dfms(dfms)
        assert isinstance(out, torch.Tensor)
        return out
    if isinstance(dfms, np.ndarray):
        dfms = torch.from_numpy(dfms)
    if not isinstance(dfms, torch.Tensor):
        raise AugrobustTypeError(
            f"dfms must be a (K, H, W) tensor or the path of a file saved by augrobust.dfm.save_dfms, got "
            f"{type(dfms).__name__}."
        )
    if dfms.ndim != 3 or dfms.shape[0] < 1 or dfms.is_complex():
        raise AugrobustValueError(
            f"dfms must be a real (K, H, W) tensor with K >= 1 classes, got shape {tuple(dfms.shape)}."
        )
    dfms = dfms.detach().to(torch.float32).clone()
    if not bool(torch.isfinite(dfms).all()):
        raise AugrobustValueError("dfms contain NaN or infinite values.")
    return dfms


class DFMX(RobustAugmentation):
    """DFM-X: filter each image with the Dominant Frequency Map of another, randomly drawn class.

    Per image: draw ``other ~ U{0, ..., K-1}``. If ``other`` is the image's own label the image is left
    unchanged (the reference's rule); otherwise, with probability ``p``, every channel is filtered with
    ``M = dfms[other]`` (DC forced to 1): ``real(ifft2(ifftshift(fftshift(fft2(x)) * M)))``
    (:func:`augrobust.functional.frequency_mask`).

    Labels: pass them at call time, ``aug(x, labels=y)``, to exclude each image's own class exactly as the
    reference does (effective rate ``p * (K - 1) / K``, 0.27 for CIFAR-10 at ``p = 0.3``). Without labels (for
    example inside ``kornia.augmentation.AugmentationSequential``, which cannot pass them) ``other`` is drawn
    among all ``K`` classes and every image is filtered with probability ``p``. The torchvision-v2 form
    (``augrobust.v2.DFMX``) takes the label from the sample itself: an ``int`` or 0-d integer tensor in
    ``(image, label)`` tuples, or the ``"label"`` / ``"labels"`` / ``"target"`` entry of a dict sample. The
    training method ``augrobust.train.DFMXMethod`` passes the batch labels.

    Which space: the reference filters *normalised* tensors without clipping. With the DC term kept the filter
    commutes with a per-channel Normalize, so filtering ``[0, 1]`` images before the model's Normalize (as
    augrobust does) is the same operation; ``clip=False`` on float input reproduces the reference exactly,
    and the default ``clip=True`` keeps the output a valid ``[0, 1]`` image (needed for ``uint8``). With
    ``keep_dc=False`` the two spaces differ (the mean is removed in ``[0, 1]`` space, not in normalised space).

    Reference quirk not reproduced: the reference ``filter`` applies ``ifftshift`` to the whole ``(3, H, W)``
    tensor, which also rolls the channel axis, so its filtered images come out with channels ``(G, B, R)``.
    augrobust keeps the channel order.

    Args:
        dfms: ``(K, H, W)`` DFMs in fftshift layout (DC at ``(H // 2, W // 2)``), or the path of a file written
            by :func:`augrobust.dfm.save_dfms` (``.pt`` / ``.npy``) or a reference pickle (``.pkl``).
        p: probability of filtering an image whose drawn class differs from its label (the reference's
            ``X%``, default 0.3).
        keep_dc: force ``M[H // 2, W // 2] = 1`` (the reference does; keeps the image mean).
        clip: clip the output to ``[0, 1]``.
        same_on_batch: one ``other`` class for the whole batch.
        keepdim: keep the input's rank (default ``True``).
        seed: ``None`` (torch's global RNG) or an int for a private reproducible stream.

    Convention:
        Input ``(C, H, W)`` or ``(B, C, H, W)`` with ``(H, W)`` equal to the DFMs' size (a different size is
        rejected: DFMs are per-frequency maps at one resolution; compute them at the training size), any
        number of channels; float or ``uint8`` (computed in float32, floored back). Parameters ``other``
        (``(B,)`` class drawn) and ``filter`` (``(B,)`` bool, ``other != label``) are stored in ``_params``.

    Example:
        >>> import torch, augrobust
        >>> from augrobust.transforms.dfmx import example_dfms
        >>> aug = augrobust.DFMX(example_dfms(10, 32), p=1.0, seed=0)
        >>> x, y = torch.rand(8, 3, 32, 32), torch.arange(8)
        >>> out = aug(x, labels=y)
        >>> bool(((aug._params["other"] == y) <= (out == x).flatten(1).all(1)).all())  # own class: unchanged
        True
        >>> torch.equal(aug(x, params=aug._params), out)
        True
    """

    def __init__(
        self,
        dfms: torch.Tensor | str | os.PathLike[str],
        *,
        p: float = 0.3,
        keep_dc: bool = True,
        clip: bool = True,
        same_on_batch: bool = False,
        keepdim: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        reject_unknown_kwargs(type(self).__name__, kwargs, self._valid_kwargs())
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim, seed=seed)
        self.register_buffer("dfms", _as_dfms(dfms))
        self.keep_dc = check_bool(keep_dc, "keep_dc")
        self.clip = check_bool(clip, "clip")
        self._draw_labels: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        """The number of classes, one DFM each (the first dimension of ``dfms``)."""
        return int(self.dfms.shape[0])

    def masks(self) -> torch.Tensor:
        """The ``(K, H, W)`` masks applied (the DFMs, with DC set to 1 when ``keep_dc``)."""
        masks = self.dfms.clone()
        if self.keep_dc:
            h, w = masks.shape[-2:]
            masks[:, h // 2, w // 2] = 1.0
        return masks

    # -- labels ----------------------------------------------------------------------------------------------
    def _check_labels(self, labels: object, input: torch.Tensor) -> torch.Tensor:
        batch = input.shape[0] if input.ndim == 4 else 1
        if isinstance(labels, bool) or not isinstance(labels, (int, torch.Tensor, np.ndarray, list, tuple)):
            raise AugrobustTypeError(
                f"labels must be integer class labels (a tensor of shape (B,)), got {type(labels).__name__}."
            )
        y = torch.as_tensor(labels, device=input.device)
        if y.dtype.is_floating_point or y.is_complex() or y.dtype == torch.bool:
            raise AugrobustTypeError(
                f"labels must be integer class indices, got dtype {y.dtype} (one-hot? use y.argmax(1))."
            )
        if y.ndim == 0 or (y.ndim == 1 and y.shape[0] == 1 and batch != 1):
            y = y.reshape(1).expand(batch)
        if y.shape != (batch,):
            raise AugrobustValueError(
                f"labels must have shape ({batch},) for an input of shape {tuple(input.shape)}, got {tuple(y.shape)}."
            )
        if y.device.type == "cpu" and y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            # Checked where it is free (no device sync); elsewhere an out-of-range label never matches.
            raise AugrobustValueError(
                f"labels must lie in 0..{self.num_classes - 1} (the DFMs' classes), got {y.tolist()[:8]}."
            )
        return y.to(torch.int64)

    def forward(  # type: ignore[override]
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor] | None = None,
        *,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | int | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Filter ``input``; ``labels`` (``(B,)``) exclude each image's own class. Replay with ``params=``.

        With ``params=`` the stored draw (including the label exclusion) is replayed and ``labels`` is ignored.
        """
        if params is None and labels is not None and isinstance(input, torch.Tensor) and input.ndim in (3, 4):
            self._draw_labels = self._check_labels(labels, input)
        try:
            return super().forward(input, params, generator=generator, **kwargs)
        finally:
            self._draw_labels = None

    # -- sample / apply --------------------------------------------------------------------------------------
    def sample_params(
        self, shape: torch.Size, *, generator: torch.Generator | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        batch = shape[0]
        rows = 1 if self.same_on_batch else batch
        other = torch.randint(self.num_classes, (rows,), generator=generator, device=device).expand(batch).contiguous()
        labels = self._draw_labels
        if labels is None:
            chosen = torch.ones(batch, dtype=torch.bool, device=device)
        else:
            chosen = other != labels.to(device)  # the reference leaves an image alone when its own class is drawn
        return {"other": other, "filter": chosen}

    def apply_params(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        h, w = self.dfms.shape[-2:]
        if tuple(x.shape[-2:]) != (h, w):
            raise AugrobustValueError(
                f"DFMX has {h}x{w} DFMs but the image is {x.shape[-2]}x{x.shape[-1]}: DFMs are per-frequency maps at "
                "one resolution. Compute DFMs at the training size, or resize (crop) images to it before DFMX."
            )
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        filters = half_spectrum_filter(self.masks().to(x.device), dtype=work)  # (K, H, W // 2 + 1), cheap
        other = params["other"].to(x.device)
        out = apply_half_spectrum_filter(x, filters[other])
        if self.clip:
            out = out.clamp(0.0, 1.0)
        chosen = params["filter"].to(x.device).view(-1, *([1] * (x.ndim - 1)))
        return torch.where(chosen, out, x)

    def extra_repr_args(self) -> dict[str, Any]:
        k, h, w = self.dfms.shape
        return {"dfms": f"<{k}x{h}x{w}>", "keep_dc": self.keep_dc, "clip": self.clip}


# -- torchvision v2: the label comes from the sample ------------------------------------------------------

_LABEL_KEYS = ("label", "labels", "target")


def _scalar_label(value: object) -> int | torch.Tensor | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.dtype.is_floating_point:
        from torchvision import tv_tensors

        if not isinstance(value, tv_tensors.TVTensor) and not value.is_complex() and value.dtype != torch.bool:
            return value.as_subclass(torch.Tensor)
    return None


def _label_of_sample(inputs: tuple[Any, ...]) -> int | torch.Tensor | None:
    from torch.utils._pytree import tree_flatten

    sample = inputs if len(inputs) > 1 else inputs[0]
    if isinstance(sample, dict):
        for key in _LABEL_KEYS:
            if key in sample and _scalar_label(sample[key]) is not None:
                return _scalar_label(sample[key])
    found = [s for s in (_scalar_label(v) for v in tree_flatten(sample)[0]) if s is not None]
    if len(found) > 1:
        raise AugrobustValueError(
            f"augrobust.v2.DFMX found {len(found)} integer scalars in the sample and cannot tell which is the label; "
            f"pass (image, label) or a dict with a {'/'.join(_LABEL_KEYS)!r} key."
        )
    return found[0] if found else None


def dfmx_v2_form(base: type) -> type:
    """Make the torchvision-v2 form of :class:`DFMX` label-aware (used by :mod:`augrobust.v2`).

    ``base`` is ``augrobust.v2.v2_form(DFMX)``; the returned subclass reads the class label from the sample
    (an ``int`` / 0-d integer tensor, or a dict's ``label`` / ``labels`` / ``target``) and excludes it as
    the reference does. Without a label it draws among all classes, like the kornia form without ``labels``.
    """

    class _LabelAwareDFMX(base):  # type: ignore[misc, valid-type]
        _sample_label: int | torch.Tensor | None = None

        def forward(self, *inputs: Any) -> Any:
            """Transform one sample, reading its class label (if any) so that its own class's map is excluded."""
            self._sample_label = _label_of_sample(inputs)
            try:
                return super().forward(*inputs)
            finally:
                self._sample_label = None

        def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
            """The draw of the v2 form, with the sample's label (when given) filtering out its own class."""
            params = super().make_params(flat_inputs)
            label = self._sample_label
            if label is not None and "draw" in params:
                draw = params["draw"]
                k = self.op.num_classes
                if (isinstance(label, int) or label.device.type == "cpu") and not 0 <= int(label) < k:
                    raise AugrobustValueError(
                        f"the sample's label {int(label)} is not one of the DFMs' classes 0..{k - 1}."
                    )
                y = torch.as_tensor(label, dtype=torch.int64, device=draw["other"].device)
                draw["filter"] = draw["other"] != y
            return params

    _LabelAwareDFMX.__name__ = _LabelAwareDFMX.__qualname__ = base.__name__
    _LabelAwareDFMX.__module__ = base.__module__
    _LabelAwareDFMX.__doc__ = base.__doc__
    return _LabelAwareDFMX
