"""Checkpoints: atomic writes, ``weights_only`` loads, and the RNG states that make resumption exact.

A checkpoint is a plain dict of tensors and plain containers, so ``torch.load(weights_only=True)`` reads
it without running arbitrary pickled code::

    {"model", "optimizer", "scheduler": state dicts, "epoch": epochs finished,
     "rng": {"torch", "cuda", "numpy", "python", "damp"}, "config": {"arch", "num_classes", ...},
     "method": the method's state_dict(), "history": [one metrics row per finished epoch]}

plus ``"rng_ranks"`` / ``"method_ranks"`` (every rank's) under DDP. Checkpoints written before ``method``
and ``history`` were always stored lack them; both loaders accept that.

:func:`load_model` turns a checkpoint back into the trained network (for evaluation, DFMs, export).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from augrobust._io import atomic_save
from augrobust.errors import AugrobustError, AugrobustFileNotFoundError, AugrobustValueError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CHECKPOINT_KEYS", "capture_rng", "load_checkpoint", "load_model", "restore_rng", "save_checkpoint"]

CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng", "config")
_CONFIG_KEYS = ("arch", "num_classes")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel and torch.compile


def capture_rng(damp_generator: torch.Generator | None = None) -> dict[str, Any]:
    """torch (CPU and every CUDA device), NumPy, Python and DAMP generator states as tensors / plain types."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "state": list(py_state), "gauss_next": py_gauss},
        "damp": damp_generator.get_state() if damp_generator is not None else None,
    }


def restore_rng(rng: dict[str, Any], damp_generator: torch.Generator | None = None) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
    np_rng = rng["numpy"]
    np.random.set_state(
        ("MT19937", np_rng["key"].numpy().astype(np.uint32), np_rng["pos"], np_rng["has_gauss"],
         np_rng["cached_gaussian"])
    )
    py = rng["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    if damp_generator is not None and rng["damp"] is not None:
        damp_generator.set_state(rng["damp"])


def save_checkpoint(path: str | os.PathLike[str], checkpoint: dict[str, Any]) -> Path:
    """Write ``checkpoint`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    A crash mid-write leaves the previous checkpoint intact, never a truncated one.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = save_checkpoint(f"{d}/ckpt.pt", {"epoch": 1, "w": torch.ones(2)})
        ...     torch.load(p, weights_only=True)["epoch"]
        1
    """
    return atomic_save(path, checkpoint, make_parents=False)


def load_checkpoint(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    *,
    keys: tuple[str, ...] = CHECKPOINT_KEYS,
) -> dict[str, Any]:
    """Load and validate a trainer checkpoint with ``torch.load(weights_only=True)``.

    ``keys`` are the entries the caller needs: all of them to resume training (the default), only
    ``("model", "config")`` to evaluate (a checkpoint stripped of its optimizer state still evaluates).

    Raises:
        AugrobustFileNotFoundError: no file at ``path``.
        AugrobustValueError: unreadable / non-checkpoint file, or missing keys (the message says which).
    """
    path = Path(path)
    if not path.is_file():
        raise AugrobustFileNotFoundError(f"checkpoint not found: {str(path)!r}.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt, truncated, or not written by torch.save of plain types
        # torch's message runs to several paragraphs; its first line says what failed (--debug shows it all).
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AugrobustValueError(
            f"cannot load checkpoint {str(path)!r} with weights_only=True (is it a file written by augrobust "
            f"train?): {reason}"
        ) from err
    if not isinstance(ckpt, dict):
        raise AugrobustValueError(f"Checkpoint {str(path)!r} holds a {type(ckpt).__name__}, expected a dict.")
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise AugrobustValueError(f"Checkpoint {str(path)!r} lacks keys {missing}; expected {list(keys)}.")
    config = ckpt["config"]
    if not isinstance(config, dict) or any(k not in config for k in _CONFIG_KEYS):
        raise AugrobustValueError(
            f"Checkpoint {str(path)!r} has a malformed config {config!r}; it needs keys {list(_CONFIG_KEYS)}."
        )
    epoch = ckpt.get("epoch", 0)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise AugrobustValueError(f"Checkpoint {str(path)!r} has a malformed epoch {ckpt['epoch']!r}.")
    return ckpt


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The network a trainer checkpoint holds, in eval mode on ``device``, and the checkpoint's config.

    Builds ``config["arch"]`` for ``config["num_classes"]``, lets the run's method give it the form it was
    trained in (:meth:`~augrobust.train.methods.Method.prepare_model`: AFA's dual BatchNorm, which evaluates
    with its main BN), strips ``DistributedDataParallel`` / ``torch.compile`` prefixes and loads the weights
    strictly. A method that cannot be rebuilt here (not registered in this process, or options no longer
    valid, e.g. a DFM-X run from before the maps were a method option) leaves the plain architecture: the
    weights then load exactly or the error says why the method was not applied.

    Raises:
        AugrobustValueError: as :func:`load_checkpoint`, or weights that do not fit the architecture.

    Example:
        >>> import tempfile
        >>> from augrobust.train import TrainConfig, train
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = train(TrainConfig(arch="resnet8_cifar", data="synthetic:16", epochs=1, batch_size=8), d, log=None)
        ...     model, config = load_model(f"{d}/checkpoint.pt")
        >>> config["arch"], model.training
        ('resnet8_cifar', False)
    """
    from augrobust.train.methods import get_method
    from augrobust.train.models import build_model

    ckpt = load_checkpoint(path, keys=("model", "config"))
    config = ckpt["config"]
    model = build_model(config["arch"], int(config["num_classes"]))
    name, not_applied = config.get("method", "erm"), ""
    try:
        model = get_method(name, **config.get("method_options", {})).prepare_model(model)
    except AugrobustError as err:  # a model-changing method's weights will not fit: the error below says so
        not_applied = f" (its method {name!r} was not applied: {err})"
    state = dict(ckpt["model"])
    for prefix in _WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise AugrobustValueError(
            f"The weights in {str(path)!r} do not fit {config['arch']}{not_applied}: {err}"
        ) from err
    return model.to(device).eval(), config
