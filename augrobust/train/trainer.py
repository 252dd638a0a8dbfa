"""The reference training loop: SGD (Nesterov) + cosine schedule, device-side methods, optional DAMP, DDP.

One step: the uint8 batch is moved to the device, converted to float in [0, 1], given the base augmentation
(``crop_flip`` by default), augmented there by the method ``(model, x, y) -> x_aug``, passed forward (through
:class:`~augrobust.train.damp.DAMP` when ``damp_sigma`` is set), and the cross-entropy is minimised with SGD;
a method with its own ``loss`` (AFA, ANT) supplies the objective instead. After every epoch the checkpoint
(model, optimiser, schedule, RNG streams and a stateful method's state) is written atomically, so an
interrupted job resumes (``resume=True``) to exactly the weights an uninterrupted one reaches.

Under ``torchrun`` (``WORLD_SIZE`` set) the same code runs data-parallel: gloo on CPU, nccl on CUDA, a
``DistributedSampler`` shards the data, ``batch_size`` is the global batch, rank 0 evaluates and writes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from augrobust.train.damp import DAMP
from augrobust.train.methods import METHODS, Method, get_method, random_crop_flip
from augrobust.train.models import ARCHITECTURES, build_model

__all__ = ["CHECKPOINT_NAME", "METRICS_NAME", "TrainConfig", "TrainResult", "build_datasets", "train"]

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"

#: Label-preserving augmentation applied to every training batch on the device, before the method.
BASE_AUGMENTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "crop_flip": random_crop_flip,
    "none": lambda x: x,
}

# Keys a resumed run may change without changing the result's meaning.
_RESUMABLE_CHANGES = frozenset({"num_workers"})


@dataclasses.dataclass
class TrainConfig:
    """Everything that determines a training run (stored in the checkpoint as plain types).

    Args:
        arch: model name (see :data:`augrobust.train.models.ARCHITECTURES`).
        method: training method name (see :data:`augrobust.train.methods.METHODS`).
        method_options: keyword arguments for the method's factory, plain JSON-like values (e.g.
            ``{"sigma": 0.5, "p": 0.5}`` for ``gnt``, ``{"dfms": "dfms.pt"}`` for ``dfmx``).
        data: ``"synthetic"`` / ``"synthetic:N"`` (SyntheticShapes, N training images, N/5 test) or
            ``"cifar10:ROOT"``; or a label for datasets passed to :func:`train` directly.
        epochs: number of epochs.
        batch_size: global batch size (split over DDP processes).
        lr: peak learning rate (cosine-annealed to 0, per step).
        wd: weight decay (coupled L2 on all parameters, as DAMP's CIFAR setting).
        momentum: Nesterov momentum.
        damp_sigma: DAMP's sigma; ``None`` trains with plain SGD.
        damp_m: DAMP's number of sub-batches per global batch.
        base_augmentation: ``"crop_flip"`` (zero-pad 4, random crop, random horizontal flip: the standard
            CIFAR recipe, applied on the device before the method) or ``"none"``.
        seed: seed for initialisation, data order, augmentation and DAMP noise.
        num_classes: classes of the model (``None``: from the dataset's ``classes``).
        num_workers: DataLoader workers.

    Example:
        >>> TrainConfig(arch="resnet8_cifar", epochs=1).validate().arch
        'resnet8_cifar'
    """

    arch: str = "resnet18_cifar"
    method: str = "erm"
    method_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: str = "synthetic"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    wd: float = 5e-4
    momentum: float = 0.9
    damp_sigma: float | None = None
    damp_m: int = 8
    base_augmentation: str = "crop_flip"
    seed: int = 0
    num_classes: int | None = None
    num_workers: int = 0

    def validate(self) -> TrainConfig:
        """Check every field; raise :class:`~augrobust.errors.AugrobustValueError` naming the bad one."""
        if self.arch not in ARCHITECTURES:
            raise AugrobustValueError(f"Unknown arch {self.arch!r}; choose one of {sorted(ARCHITECTURES)}.")
        if self.method not in METHODS:
            raise AugrobustValueError(f"Unknown method {self.method!r}; choose one of {sorted(METHODS)}.")
        if not isinstance(self.method_options, dict) or not all(isinstance(k, str) for k in self.method_options):
            raise AugrobustValueError(
                f"TrainConfig.method_options must be a dict with string keys, got {self.method_options!r}."
            )
        try:  # stored in the checkpoint, which loads with weights_only=True: plain values only
            json.dumps(self.method_options)
        except (TypeError, ValueError) as err:
            raise AugrobustValueError(
                f"TrainConfig.method_options must hold plain JSON values (str, number, bool, list, dict): {err}"
            ) from err
        for name, low in (("epochs", 1), ("batch_size", 1), ("damp_m", 1), ("seed", 0), ("num_workers", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise AugrobustValueError(f"TrainConfig.{name} must be an int >= {low}, got {value!r}.")
        for name in ("lr", "wd", "momentum"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise AugrobustValueError(f"TrainConfig.{name} must be a finite number >= 0, got {value!r}.")
        if self.damp_sigma is not None and (
            isinstance(self.damp_sigma, bool) or not isinstance(self.damp_sigma, (int, float)) or not self.damp_sigma >= 0
        ):
            raise AugrobustValueError(f"TrainConfig.damp_sigma must be None or a number >= 0, got {self.damp_sigma!r}.")
        if self.damp_sigma is not None and self.batch_size % self.damp_m:
            raise AugrobustValueError(
                f"batch_size {self.batch_size} must be a multiple of damp_m {self.damp_m} (equal DAMP sub-batches)."
            )
        if self.num_classes is not None and (not isinstance(self.num_classes, int) or self.num_classes < 2):
            raise AugrobustValueError(f"TrainConfig.num_classes must be None or an int >= 2, got {self.num_classes!r}.")
        if self.base_augmentation not in BASE_AUGMENTATIONS:
            raise AugrobustValueError(
                f"TrainConfig.base_augmentation must be one of {sorted(BASE_AUGMENTATIONS)}, got {self.base_augmentation!r}."
            )
        if not isinstance(self.data, str) or not self.data:
            raise AugrobustValueError(f"TrainConfig.data must be a non-empty string, got {self.data!r}.")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown or missing keys raise a clear error."""
        if not isinstance(data, dict):
            raise AugrobustValueError(f"A training config must be a dict, got {type(data).__name__}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise AugrobustValueError(f"Malformed training config: unknown keys {unknown}; allowed {sorted(fields)}.")
        return cls(**data).validate()


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the trained (unwrapped) model, per-epoch metrics and the output folder."""

    model: nn.Module
    history: list[dict[str, Any]]
    out_dir: Path


def build_datasets(data: str, seed: int = 0) -> tuple[Dataset[Any], Dataset[Any]]:
    """``(train, test)`` datasets from a spec: ``synthetic``, ``synthetic:N`` or ``cifar10:ROOT``.

    Example:
        >>> train_set, test_set = build_datasets("synthetic:50")
        >>> len(train_set), len(test_set)
        (50, 10)
    """
    from augrobust import data as datasets

    kind, _, arg = data.partition(":")
    if kind == "synthetic":
        try:
            n = int(arg) if arg else 10_000
        except ValueError:
            n = -1
        if n < 1:
            raise AugrobustValueError(f"Bad data spec {data!r}: 'synthetic:N' needs a positive integer N.")
        return (
            datasets.SyntheticShapes(n, seed=seed, train=True),
            datasets.SyntheticShapes(max(n // 5, 1), seed=seed, train=False),
        )
    if kind == "cifar10":
        if not arg:
            raise AugrobustValueError(f"Bad data spec {data!r}: write 'cifar10:ROOT' with the dataset folder.")
        return datasets.CIFAR10(arg, train=True), datasets.CIFAR10(arg, train=False)
    raise AugrobustValueError(f"Unknown data spec {data!r}; use 'synthetic', 'synthetic:N' or 'cifar10:ROOT'.")


def _num_classes(config: TrainConfig, dataset: Dataset[Any]) -> int:
    if config.num_classes is not None:
        return config.num_classes
    classes = getattr(dataset, "classes", None)
    if classes is None:
        raise AugrobustValueError("The dataset has no 'classes' attribute: set TrainConfig.num_classes.")
    return len(classes)


def _to_float(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise AugrobustTypeError(f"Training images must be uint8 or float, got {x.dtype}.")
    return x.float()


class _Distributed:
    """Process-group setup from torchrun's environment; a no-op single process otherwise."""

    def __init__(self, device: str | torch.device) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(device)
        self.owns_group = False
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", local_rank if self.world_size > 1 else torch.cuda.current_device())
        if self.world_size > 1:
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
                self.owns_group = True

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()


def _for_rank(ckpt: dict[str, Any], key: str, env: _Distributed) -> Any:
    """``ckpt[key]`` (rank 0's), or this rank's entry of ``ckpt[key + "_ranks"]`` when saved by as many ranks."""
    per_rank = ckpt.get(f"{key}_ranks")
    return per_rank[env.rank] if per_rank is not None and len(per_rank) == env.world_size else ckpt[key]


def _check_resumable(stored: dict[str, Any], config: TrainConfig, path: Path) -> None:
    current = config.to_dict()
    diffs = {
        k: (stored.get(k), current.get(k))
        for k in sorted(set(stored) | set(current))
        if k not in _RESUMABLE_CHANGES and stored.get(k) != current.get(k)
    }
    if diffs:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diffs.items())
        raise AugrobustValueError(f"Cannot resume from {str(path)!r}: the config differs ({detail}).")


@torch.no_grad()
def _accuracy(model: nn.Module, dataset: Dataset[Any], device: torch.device, batch_size: int) -> float:
    was_training = model.training
    model.eval()
    correct = total = 0
    # Own generator: evaluating must not advance the global RNG (a resumed run would then diverge).
    for xb, yb in DataLoader(dataset, batch_size=batch_size, shuffle=False, generator=torch.Generator()):
        logits = model(_to_float(xb.to(device)))
        correct += int((logits.argmax(1) == yb.to(device)).sum())
        total += len(yb)
    model.train(was_training)
    return correct / max(total, 1)


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    resume: bool = False,
    datasets: tuple[Dataset[Any], Dataset[Any] | None] | None = None,
    method: Method | None = None,
    stop_after_epoch: int | None = None,
    log: Callable[[str], None] | None = print,
) -> TrainResult:
    """Train a model as ``config`` says, checkpointing to ``out_dir`` after every epoch.

    Args:
        config: the run's settings (validated here).
        out_dir: output folder (created if missing): ``checkpoint.pt`` (atomic, every epoch) and
            ``metrics.jsonl`` (one JSON line per epoch).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (under torchrun, ``cuda`` means ``cuda:LOCAL_RANK``).
        resume: continue from ``out_dir/checkpoint.pt``; without it an existing checkpoint is an error, so
            finished work is never overwritten by accident.
        datasets: ``(train, test)`` to use instead of building ``config.data`` (``test`` may be ``None``).
        method: a method callable instead of ``METHODS[config.method]()`` (``config.method`` still labels it).
        stop_after_epoch: stop once this many epochs are done (time-sliced jobs; the schedule still spans
            ``config.epochs``), to be continued with ``resume=True``.
        log: where progress lines go (``None``: silent); only rank 0 logs.

    Returns:
        :class:`TrainResult` with the trained model (unwrapped, on ``device``) and the metrics history.

    Raises:
        AugrobustValueError: bad config, unusable ``out_dir``, missing / malformed / mismatching checkpoint.

    Example:
        >>> import tempfile
        >>> from augrobust.data import SyntheticShapes
        >>> cfg = TrainConfig(arch="resnet8_cifar", epochs=1, batch_size=16, lr=0.05, damp_sigma=0.1, damp_m=4)
        >>> data = (SyntheticShapes(32, train=True), SyntheticShapes(16, train=False))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     result = train(cfg, d, datasets=data, log=None)
        >>> [row["epoch"] for row in result.history]
        [1]
    """
    config = config.validate()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise AugrobustValueError(f"Output path {str(out)!r} exists and is not a directory.")
    ckpt_path = out / CHECKPOINT_NAME
    if resume and not ckpt_path.is_file():
        raise AugrobustValueError(f"Cannot resume: no checkpoint at {str(ckpt_path)!r}. Run without resume to start.")
    if not resume and ckpt_path.exists():
        raise AugrobustValueError(
            f"{str(ckpt_path)!r} already exists: pass resume=True (--resume) to continue it, or choose another out dir."
        )

    env = _Distributed(device)
    try:
        return _train(config, out, ckpt_path, env, resume, datasets, method, stop_after_epoch, log)
    finally:
        env.close()


def _train(
    config: TrainConfig,
    out: Path,
    ckpt_path: Path,
    env: _Distributed,
    resume: bool,
    datasets: tuple[Dataset[Any], Dataset[Any] | None] | None,
    method: Method | None,
    stop_after_epoch: int | None,
    log: Callable[[str], None] | None,
) -> TrainResult:
    say = log if (log is not None and env.rank == 0) else (lambda _msg: None)
    device = env.device
    if config.batch_size % env.world_size:
        raise AugrobustValueError(f"batch_size {config.batch_size} must be a multiple of WORLD_SIZE {env.world_size}.")
    local_batch = config.batch_size // env.world_size
    damp = None
    if config.damp_sigma is not None:
        if config.damp_m % env.world_size:
            raise AugrobustValueError(
                f"damp_m {config.damp_m} counts sub-batches of the global batch; it must be a multiple of "
                f"WORLD_SIZE {env.world_size}."
            )
        damp_generator = torch.Generator(device=device)
        damp_generator.manual_seed(config.seed * 1_000_003 + 7919 * (env.rank + 1))
        damp = DAMP(config.damp_sigma, config.damp_m // env.world_size, generator=damp_generator)

    train_set, test_set = datasets if datasets is not None else build_datasets(config.data, seed=config.seed)
    num_classes = _num_classes(config, train_set)

    # Same initial weights on every rank; then rank-specific streams for augmentation.
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    model = build_model(config.arch, num_classes).to(device)
    if method is None:
        method = get_method(config.method, **config.method_options)
    prepare_model = getattr(method, "prepare_model", None)
    if prepare_model is not None:  # e.g. AFA's dual BatchNorm; before the optimizer, resume and DDP
        model = prepare_model(model).to(device)
    if env.rank:
        torch.manual_seed(config.seed + 1_000_003 * env.rank)
        np.random.seed(config.seed + 1_000_003 * env.rank)
        random.seed(config.seed + 1_000_003 * env.rank)

    sampler = DistributedSampler(
        train_set, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=config.seed, drop_last=True
    )
    loader = DataLoader(
        train_set,
        batch_size=local_batch,
        sampler=sampler,
        drop_last=True,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
    )
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise AugrobustValueError(
            f"The training set ({len(train_set)} images) is smaller than one batch per process ({local_batch})."
        )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0, weight_decay=config.wd
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    stored_config = {**config.to_dict(), "num_classes": num_classes}

    start_epoch = 0
    history: list[dict[str, Any]] = []
    if resume:
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        _check_resumable(ckpt["config"], TrainConfig(**{**config.to_dict(), "num_classes": num_classes}), ckpt_path)
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
        except (RuntimeError, KeyError, ValueError) as err:
            raise AugrobustValueError(f"Checkpoint {str(ckpt_path)!r} does not fit this model/optimizer: {err}") from err
        start_epoch = ckpt["epoch"]
        if hasattr(method, "load_state_dict"):
            if "method" not in ckpt:
                raise AugrobustValueError(f"Checkpoint {str(ckpt_path)!r} lacks the state of method {config.method!r}.")
            method.load_state_dict(_for_rank(ckpt, "method", env))
        restore_rng(_for_rank(ckpt, "rng", env), damp.generator if damp is not None else None)
        history = _read_history(out / METRICS_NAME, start_epoch, rewrite=env.rank == 0)
        say(f"resumed from {ckpt_path} at epoch {start_epoch}/{config.epochs}")
    elif env.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / METRICS_NAME).unlink(missing_ok=True)
    env.barrier()

    net: nn.Module = model
    if env.active:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    say(
        f"training {config.arch} ({sum(p.numel() for p in model.parameters())} params) with {config.method}"
        f"{f' + {damp!r}' if damp is not None else ''} on {device} x{env.world_size}, "
        f"{steps_per_epoch} steps/epoch"
    )

    base_augmentation = BASE_AUGMENTATIONS[config.base_augmentation]
    forward = functools.partial(damp.forward, net) if damp is not None else net  # the training forward
    last = config.epochs if stop_after_epoch is None else min(config.epochs, stop_after_epoch)
    for epoch in range(start_epoch, last):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for xb, yb in loader:
            x = base_augmentation(_to_float(xb.to(device, non_blocking=True)))
            y = yb.to(device, non_blocking=True)
            if hasattr(method, "loss"):  # a method with its own objective (e.g. AFA's auxiliary route)
                loss, logits = method.loss(net, forward, x, y)
            else:
                logits = forward(method(net, x, y))
                loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum) / seen,
            "train_acc": float(correct) / seen,
            "lr": scheduler.get_last_lr()[0],
            "seconds": time.perf_counter() - t0,
        }
        rngs = env.gather(capture_rng(damp.generator if damp is not None else None))
        # A stateful method (ANT's generators and their optimiser) is saved per rank, like the RNG streams.
        method_states = env.gather(method.state_dict()) if hasattr(method, "state_dict") else None
        if env.rank == 0:
            if test_set is not None:
                row["test_acc"] = _accuracy(model, test_set, device, max(local_batch, 256))
            checkpoint = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "rng": rngs[0],
                "config": stored_config,
            }
            if env.active:
                checkpoint["rng_ranks"] = rngs
            if method_states is not None:
                checkpoint["method"] = method_states[0]
                if env.active:
                    checkpoint["method_ranks"] = method_states
            save_checkpoint(ckpt_path, checkpoint)
            with open(out / METRICS_NAME, "a") as f:
                f.write(json.dumps(row) + "\n")
            say(
                f"epoch {epoch + 1}/{config.epochs} loss {row['train_loss']:.4f} train_acc {row['train_acc']:.4f}"
                + (f" test_acc {row['test_acc']:.4f}" if "test_acc" in row else "")
                + f" ({row['seconds']:.1f}s)"
            )
        history.append(row)
        env.barrier()
    return TrainResult(model=model, history=history, out_dir=out)


def _read_history(path: Path, upto_epoch: int, rewrite: bool) -> list[dict[str, Any]]:
    """Metrics of the finished epochs; lines past the checkpoint (a crash between the two writes) are dropped."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("epoch", 0) <= upto_epoch]
    if rewrite:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows
