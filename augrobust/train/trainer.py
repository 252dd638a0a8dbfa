"""The reference training loop: SGD (Nesterov) + cosine schedule, device-side methods, optional DAMP, DDP.

One step: the uint8 batch is moved to the device, converted to float in [0, 1], given the base augmentation
(``crop_flip`` by default), and the method's :meth:`~augrobust.train.methods.Method.loss` (cross-entropy of
the method's augmented batch unless the method says otherwise) is minimised with SGD, through
:class:`~augrobust.train.damp.DAMP`'s forward when ``damp_sigma`` is set. After every epoch the checkpoint
(model, optimiser, schedule, RNG streams, the method's state and the metrics history) is written atomically,
so an interrupted job resumes (``resume=True``) to exactly the weights and metrics an uninterrupted one
reaches; ``metrics.jsonl`` is rewritten from the checkpoint on resume, so a kill never loses a row.

A non-finite loss stops the run with :class:`NonFiniteLossError` naming the first bad step (or, with
``nonfinite="skip"``, that step's update is skipped). Under ``torchrun`` (``WORLD_SIZE`` set) the same code
runs data-parallel: gloo on CPU, nccl on CUDA, a ``DistributedSampler`` shards the data, ``batch_size`` is
the global batch, rank 0 evaluates and writes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from augrobust._checks import check_bool, check_choice, check_count, check_number, closest
from augrobust._io import remove_stale_temporaries
from augrobust.errors import AugrobustError, AugrobustTypeError, AugrobustValueError
from augrobust.train import metrics_file
from augrobust.train.base_augmentations import BASE_AUGMENTATIONS
from augrobust.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from augrobust.train.damp import DAMP
from augrobust.train.distributed import Distributed
from augrobust.train.methods import METHODS, Method, as_method, get_method
from augrobust.train.models import ARCHITECTURES, build_model
from augrobust.train.sparse import SPARSE_ALGORITHMS, SPARSE_DISTRIBUTIONS, SparseTraining

__all__ = [
    "CHECKPOINT_NAME",
    "METRICS_NAME",
    "NONFINITE_CHECK_STEPS",
    "NONFINITE_CHOICES",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "build_datasets",
    "train",
]

#: The checkpoint file a run writes in its ``out_dir`` (after every epoch).
CHECKPOINT_NAME = "checkpoint.pt"
#: The metrics file a run writes in its ``out_dir``: one JSON line per epoch.
METRICS_NAME = "metrics.jsonl"

#: ``TrainConfig.nonfinite``: stop at a non-finite loss (``"error"``) or skip that step's update (``"skip"``).
NONFINITE_CHOICES = ("error", "skip")

#: Under ``nonfinite="error"`` the loss is checked on the host once per this many steps and at the end of
#: every epoch, not per step: a per-step check is a host-device sync that stalls a GPU's queue every step.
#: The first bad step is tracked on the device meanwhile, so the error still names it.
NONFINITE_CHECK_STEPS = 50

# Keys a resumed run may change without changing the result's meaning.
_RESUMABLE_CHANGES = frozenset({"num_workers", "nonfinite"})


class NonFiniteLossError(AugrobustError, RuntimeError):
    """The training loss became NaN or infinite (the run diverged); ``epoch`` and ``step`` name the first such step.

    ``epoch`` and ``step`` count from 1 (``step`` within the epoch); ``global_step`` counts from 1 over the run.
    """

    def __init__(self, message: str, *, epoch: int, step: int, global_step: int) -> None:
        super().__init__(message)
        self.epoch, self.step, self.global_step = epoch, step, global_step


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
        sparse: dynamic sparse training (:mod:`augrobust.train.sparse`): ``"set"``, ``"rigl"``, ``"mest"`` or
            ``"granet"``; ``None`` trains dense.
        sparsity: DST's target fraction of zero weights over the masked conv / linear layers.
        sparse_distribution: layer densities, ``"erk"`` (Erdos-Renyi-Kernel) or ``"uniform"``.
        sparse_interval: optimiser steps between mask updates (RigL's ``delta_T`` = 100).
        sparse_drop_fraction: initial drop fraction ``zeta`` (RigL's 0.3), annealed as the algorithm does.
        sparse_end: fraction of the run after which the masks stay fixed (``None``: the algorithm's own, 0.75
            for SET / RigL / MEST, 1.0 for GraNet).
        sparse_dense_first: leave the first conv / linear layer dense (RigL's ImageNet setting).
        sparse_mest_lambda: MEST's gradient weight in its drop score ``|w| + lambda |g|``.
        nonfinite: what a NaN / infinite loss does: ``"error"`` stops the run with
            :class:`NonFiniteLossError` naming the first bad step (nothing of that epoch is saved; the last
            checkpoint stays); ``"skip"`` skips that step's update (weights and optimiser state untouched, the
            schedule advances), counts it in the epoch's ``skipped_steps`` and stops only when a whole epoch
            was skipped. ``"skip"`` costs one host-device sync per step (the decision is taken on the host).

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
    nonfinite: str = "error"
    sparse: str | None = None
    sparsity: float = 0.5
    sparse_distribution: str = "erk"
    sparse_interval: int = 100
    sparse_drop_fraction: float = 0.3
    sparse_end: float | None = None
    sparse_dense_first: bool = True
    sparse_mest_lambda: float = 0.0

    def validate(self) -> TrainConfig:
        """Check every field; raise an :class:`~augrobust.errors.AugrobustError` naming the bad one."""
        if self.arch not in ARCHITECTURES:
            raise AugrobustValueError(
                f"Unknown arch {self.arch!r}{closest(self.arch, ARCHITECTURES)}; choose one of {sorted(ARCHITECTURES)}."
            )
        if self.method not in METHODS:
            raise AugrobustValueError(
                f"Unknown method {self.method!r}{closest(self.method, METHODS)}; choose one of {sorted(METHODS)}."
            )
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
            check_count(getattr(self, name), f"TrainConfig.{name}", minimum=low)
        for name in ("lr", "wd", "momentum"):
            check_number(getattr(self, name), f"TrainConfig.{name}", minimum=0.0)
        if self.damp_sigma is not None:
            check_number(self.damp_sigma, "TrainConfig.damp_sigma (None: no DAMP)", minimum=0.0)
            if self.batch_size % self.damp_m:
                raise AugrobustValueError(
                    f"batch_size {self.batch_size} must be a multiple of damp_m {self.damp_m} (equal DAMP sub-batches)."
                )
        if self.num_classes is not None:
            check_count(self.num_classes, "TrainConfig.num_classes (None: from the dataset)", minimum=2)
        check_choice(self.base_augmentation, "TrainConfig.base_augmentation", sorted(BASE_AUGMENTATIONS))
        check_choice(self.nonfinite, "TrainConfig.nonfinite", NONFINITE_CHOICES)
        if self.sparse is not None:
            check_choice(self.sparse, "TrainConfig.sparse (None: dense)", SPARSE_ALGORITHMS)
        check_number(self.sparsity, "TrainConfig.sparsity", minimum=0.0, maximum=1.0, strict=True)
        if self.sparsity >= 1.0:
            raise AugrobustValueError(f"TrainConfig.sparsity must be below 1, got {self.sparsity!r}.")
        check_choice(self.sparse_distribution, "TrainConfig.sparse_distribution", SPARSE_DISTRIBUTIONS)
        check_count(self.sparse_interval, "TrainConfig.sparse_interval", minimum=1)
        check_number(self.sparse_drop_fraction, "TrainConfig.sparse_drop_fraction", minimum=0.0, maximum=1.0)
        if self.sparse_end is not None:
            check_number(self.sparse_end, "TrainConfig.sparse_end (None: the algorithm's)", minimum=0.0, maximum=1.0)
        check_bool(self.sparse_dense_first, "TrainConfig.sparse_dense_first")
        check_number(self.sparse_mest_lambda, "TrainConfig.sparse_mest_lambda", minimum=0.0)
        if not isinstance(self.data, str) or not self.data:
            raise AugrobustValueError(f"TrainConfig.data must be a non-empty string, got {self.data!r}.")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what the checkpoint stores as ``config``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys raise a clear error, missing ones default."""
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
    """``(train, test)`` datasets from a data spec (:func:`augrobust.data.from_spec`): ``synthetic``,
    ``synthetic:N``, ``cifar10:DIR`` or ``cifar100:DIR``.

    ``folder:DIR`` is refused: one folder has no train / test split, and testing on the training images would
    report a clean accuracy that means nothing.

    Example:
        >>> train_set, test_set = build_datasets("synthetic:50")
        >>> len(train_set), len(test_set)
        (50, 10)
    """
    from augrobust.data import from_spec

    if isinstance(data, str) and data.partition(":")[0] == "folder":
        raise AugrobustValueError(
            f"data spec {data!r}: training needs a train and a test split, and a folder has none; use "
            "synthetic[:N], cifar10:DIR or cifar100:DIR."
        )
    return from_spec(data, train=True, seed=seed), from_spec(data, train=False, seed=seed)


# -- the run --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Run:
    """Everything one training run holds, built by :func:`_setup` and advanced epoch by epoch."""

    config: TrainConfig
    env: Distributed
    out: Path
    say: Callable[[str], None]
    model: nn.Module
    method: Method
    damp: DAMP | None
    sampler: DistributedSampler[Any]
    loader: DataLoader[Any]
    test_set: Dataset[Any] | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    stored_config: dict[str, Any]
    sparse: SparseTraining | None = None  # dynamic sparse training's masks, when config.sparse is set
    net: nn.Module = dataclasses.field(init=False)  # the model, in its DDP wrapper when distributed
    forward: Callable[[torch.Tensor], torch.Tensor] = dataclasses.field(init=False)  # the training forward
    start_epoch: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.net = self.forward = self.model

    @property
    def device(self) -> torch.device:
        return self.env.device

    @property
    def damp_generator(self) -> torch.Generator | None:
        return self.damp.generator if self.damp is not None else None


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    resume: bool = False,
    datasets: tuple[Dataset[Any], Dataset[Any] | None] | None = None,
    method: Method | Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
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
        method: a :class:`~augrobust.train.methods.Method` (or a plain callable ``(model, x, y) -> x_aug``)
            instead of ``get_method(config.method, **config.method_options)``; ``config.method`` still labels it.
        stop_after_epoch: stop once this many epochs are done (time-sliced jobs; the schedule still spans
            ``config.epochs``), to be continued with ``resume=True``.
        log: where progress lines go (``None``: silent); only rank 0 logs.

    Returns:
        :class:`TrainResult` with the trained model (unwrapped, on ``device``) and the metrics history.

    Raises:
        AugrobustValueError: bad config, unusable ``out_dir``, missing / malformed / mismatching checkpoint.
        NonFiniteLossError: the loss became NaN or infinite (with ``config.nonfinite="error"``).

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
    out = _check_out_dir(Path(out_dir), resume)
    env = Distributed(device)
    try:
        run = _setup(config, out, env, datasets, method, log)
        if resume:
            _resume(run)
        else:
            _start_fresh(run)
        env.barrier()
        _wrap_for_training(run)
        last = config.epochs if stop_after_epoch is None else min(config.epochs, stop_after_epoch)
        for epoch in range(run.start_epoch, last):
            row = _train_epoch(run, epoch)
            _finish_epoch(run, epoch, row)
        return TrainResult(model=run.model, history=run.history, out_dir=out)
    finally:
        env.close()


def _check_out_dir(out: Path, resume: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise AugrobustValueError(f"Output path {str(out)!r} exists and is not a directory.")
    ckpt_path = out / CHECKPOINT_NAME
    if resume and not ckpt_path.is_file():
        raise AugrobustValueError(f"Cannot resume: no checkpoint at {str(ckpt_path)!r}. Run without resume to start.")
    if not resume and ckpt_path.exists():
        raise AugrobustValueError(
            f"{str(ckpt_path)!r} already exists: pass resume=True (--resume) to continue it, or choose another out dir."
        )
    return out


# -- setup ----------------------------------------------------------------------------------------------------


def _setup(
    config: TrainConfig,
    out: Path,
    env: Distributed,
    datasets: tuple[Dataset[Any], Dataset[Any] | None] | None,
    method: Method | Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None,
    log: Callable[[str], None] | None,
) -> _Run:
    """Model, method, data and optimiser, in the order that fixes every RNG stream (resume relies on it)."""
    local_batch = _local_batch_size(config, env)
    damp = _build_damp(config, env)
    train_set, test_set = datasets if datasets is not None else build_datasets(config.data, seed=config.seed)
    num_classes = _num_classes(config, train_set)
    model, method = _build_model_and_method(config, num_classes, method, env)
    sampler, loader = _build_loader(config, train_set, local_batch, env)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0, weight_decay=config.wd
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * len(loader))
    sparse = _build_sparse(config, model, optimizer, config.epochs * len(loader))
    return _Run(
        config=config, env=env, out=out, say=log if (log is not None and env.rank == 0) else _silent,
        model=model, method=method, damp=damp, sampler=sampler, loader=loader, test_set=test_set,
        optimizer=optimizer, scheduler=scheduler, stored_config={**config.to_dict(), "num_classes": num_classes},
        sparse=sparse,
    )  # fmt: skip


def _build_sparse(
    config: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer, total_steps: int
) -> SparseTraining | None:
    """DST's masks (the same on every rank: seeded by ``config.seed`` only, then broadcast from rank 0)."""
    if config.sparse is None:
        return None
    return SparseTraining(
        model, optimizer, config.sparse, sparsity=config.sparsity, total_steps=total_steps,
        distribution=config.sparse_distribution, interval=config.sparse_interval,
        zeta=config.sparse_drop_fraction, end=config.sparse_end, mest_lambda=config.sparse_mest_lambda,
        dense_first=config.sparse_dense_first, seed=config.seed,
    )  # fmt: skip


def _silent(message: str) -> None:
    pass


def _local_batch_size(config: TrainConfig, env: Distributed) -> int:
    if config.batch_size % env.world_size:
        raise AugrobustValueError(f"batch_size {config.batch_size} must be a multiple of WORLD_SIZE {env.world_size}.")
    if config.damp_sigma is not None and config.damp_m % env.world_size:
        raise AugrobustValueError(
            f"damp_m {config.damp_m} counts sub-batches of the global batch; it must be a multiple of "
            f"WORLD_SIZE {env.world_size}."
        )
    return config.batch_size // env.world_size


def _build_damp(config: TrainConfig, env: Distributed) -> DAMP | None:
    if config.damp_sigma is None:
        return None
    generator = torch.Generator(device=env.device)  # its own stream: checkpointed, per rank
    generator.manual_seed(config.seed * 1_000_003 + 7919 * (env.rank + 1))
    return DAMP(config.damp_sigma, config.damp_m // env.world_size, generator=generator)


def _num_classes(config: TrainConfig, dataset: Dataset[Any]) -> int:
    if config.num_classes is not None:
        return config.num_classes
    classes = getattr(dataset, "classes", None)
    if classes is None:
        raise AugrobustValueError("The dataset has no 'classes' attribute: set TrainConfig.num_classes.")
    return len(classes)


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _build_model_and_method(
    config: TrainConfig,
    num_classes: int,
    method: Method | Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None,
    env: Distributed,
) -> tuple[nn.Module, Method]:
    """The same initial weights on every rank, the method's model change, then rank-specific streams."""
    _seed_everything(config.seed)
    model = build_model(config.arch, num_classes).to(env.device)
    method = get_method(config.method, **config.method_options) if method is None else as_method(method)
    model = method.prepare_model(model).to(env.device)  # e.g. AFA's dual BN: before the optimizer, resume, DDP
    if env.rank:
        _seed_everything(config.seed + 1_000_003 * env.rank)
    return model, method


def _build_loader(
    config: TrainConfig, train_set: Dataset[Any], local_batch: int, env: Distributed
) -> tuple[DistributedSampler[Any], DataLoader[Any]]:
    sampler = DistributedSampler(
        train_set, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=config.seed, drop_last=True
    )
    loader = DataLoader(
        train_set, batch_size=local_batch, sampler=sampler, drop_last=True, num_workers=config.num_workers,
        pin_memory=env.device.type == "cuda",
    )  # fmt: skip
    if len(loader) == 0:
        raise AugrobustValueError(
            f"The training set ({len(train_set)} images) is smaller than one batch per process ({local_batch})."  # type: ignore[arg-type]
        )
    return sampler, loader


# -- start or resume ------------------------------------------------------------------------------------------


def _start_fresh(run: _Run) -> None:
    if run.env.rank == 0:
        run.out.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(run.out)
        (run.out / METRICS_NAME).unlink(missing_ok=True)


def _remove_stale_temporaries(out: Path) -> None:
    """What a kill during an atomic write left behind; only rank 0 writes, and it writes nothing yet."""
    for name in (CHECKPOINT_NAME, METRICS_NAME):
        remove_stale_temporaries(out, name)


def _resume(run: _Run) -> None:
    """Weights, optimiser, schedule, method state, RNG streams and metrics history from the checkpoint."""
    path = run.out / CHECKPOINT_NAME
    ckpt = load_checkpoint(path, map_location=run.device)
    _check_resumable(ckpt["config"], run.stored_config, path)
    try:
        run.model.load_state_dict(ckpt["model"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        run.scheduler.load_state_dict(ckpt["scheduler"])
    except (RuntimeError, KeyError, ValueError) as err:
        raise AugrobustValueError(f"Checkpoint {str(path)!r} does not fit this model/optimizer: {err}") from err
    run.start_epoch = ckpt["epoch"]
    try:  # checkpoints of stateless methods written before every method had a state lack the key
        run.method.load_state_dict(_for_rank(ckpt, "method", run.env) if "method" in ckpt else {})
    except AugrobustError as err:
        raise AugrobustValueError(
            f"Checkpoint {str(path)!r} lacks the state of method {run.config.method!r}: {err}"
        ) from err
    restore_rng(_for_rank(ckpt, "rng", run.env), run.damp_generator)
    if run.sparse is not None:
        if "sparse" not in ckpt:
            raise AugrobustValueError(f"Checkpoint {str(path)!r} lacks the sparse-training masks.")
        run.sparse.load_state_dict(ckpt["sparse"])
    if "history" in ckpt:
        run.history = list(ckpt["history"])
    else:  # written before the history moved into the checkpoint
        run.history = metrics_file.read_rows(run.out / METRICS_NAME, run.start_epoch)
    if run.env.rank == 0:
        _remove_stale_temporaries(run.out)
        metrics_file.rewrite(run.out / METRICS_NAME, run.history)
    run.say(f"resumed from {path} at epoch {run.start_epoch}/{run.config.epochs}")


def _for_rank(ckpt: dict[str, Any], key: str, env: Distributed) -> Any:
    """``ckpt[key]`` (rank 0's), or this rank's entry of ``ckpt[key + "_ranks"]`` when saved by as many ranks."""
    per_rank = ckpt.get(f"{key}_ranks")
    return per_rank[env.rank] if per_rank is not None and len(per_rank) == env.world_size else ckpt[key]


def _check_resumable(stored: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    stored = {**TrainConfig().to_dict(), **stored}  # a key added since the checkpoint was written: its default
    diffs = {
        k: (stored.get(k), current.get(k))
        for k in sorted(set(stored) | set(current))
        if k not in _RESUMABLE_CHANGES and stored.get(k) != current.get(k)
    }
    if diffs:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diffs.items())
        raise AugrobustValueError(f"Cannot resume from {str(path)!r}: the config differs ({detail}).")


def _wrap_for_training(run: _Run) -> None:
    """DDP around the model when distributed, DAMP's forward when on; then the run's banner."""
    if run.env.active:
        device = run.device
        run.net = DistributedDataParallel(run.model, device_ids=[device.index] if device.type == "cuda" else None)
    run.forward = functools.partial(run.damp.forward, run.net) if run.damp is not None else run.net
    config = run.config
    run.say(
        f"training {config.arch} ({sum(p.numel() for p in run.model.parameters())} params) with {config.method}"
        f"{f' + {run.damp!r}' if run.damp is not None else ''}"
        f"{f' + {run.sparse!r}' if run.sparse is not None else ''} on {run.device} x{run.env.world_size}, "
        f"{len(run.loader)} steps/epoch"
    )


# -- one epoch ------------------------------------------------------------------------------------------------


def _train_epoch(run: _Run, epoch: int) -> dict[str, Any]:
    """One pass over the training data; returns the epoch's metrics row."""
    t0 = time.perf_counter()
    run.sampler.set_epoch(epoch)
    run.net.train()
    guard = _NonFiniteGuard(run, epoch)
    loss_sum = torch.zeros((), device=run.device)
    correct = torch.zeros((), device=run.device, dtype=torch.long)
    seen = 0
    for step, (xb, yb) in enumerate(run.loader, 1):
        x = BASE_AUGMENTATIONS[run.config.base_augmentation](_to_float(xb.to(run.device, non_blocking=True)))
        y = yb.to(run.device, non_blocking=True)
        loss, logits = run.method.loss(run.net, run.forward, x, y)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if guard.admit(loss, step):
            if run.sparse is None:
                run.optimizer.step()
            else:  # the step, the masks re-applied, the mask update on schedule
                run.sparse.optimizer_step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
        elif run.sparse is not None:
            run.sparse.skip_step()
        run.scheduler.step()
    guard.finish()
    row: dict[str, Any] = {
        "epoch": epoch + 1,
        "train_loss": float(loss_sum) / seen,
        "train_acc": float(correct) / seen,
        "lr": run.scheduler.get_last_lr()[0],
        "seconds": time.perf_counter() - t0,
    }
    if run.config.nonfinite == "skip":
        row["skipped_steps"] = guard.skipped
    return row


def _to_float(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise AugrobustTypeError(f"Training images must be uint8 or float, got {x.dtype}.")
    return x.float()


class _NonFiniteGuard:
    """Watches one epoch's losses for NaN / inf, as ``config.nonfinite`` says.

    ``"error"``: the first bad step is kept on the device (no sync per step) and looked at every
    :data:`NONFINITE_CHECK_STEPS` steps and at the epoch's end; then the run stops, before anything of the
    epoch is saved. ``"skip"``: each step is decided on the host (one sync per step), the same on every rank.
    """

    _NONE = 2**62  # "no bad step yet"; a minimum over the ranks keeps the first bad one

    def __init__(self, run: _Run, epoch: int) -> None:
        self.run, self.epoch, self.skipped = run, epoch, 0
        self.first_bad = torch.full((), self._NONE, dtype=torch.long, device=run.device)
        self.first_value = torch.zeros((), device=run.device)

    def admit(self, loss: torch.Tensor, step: int) -> bool:
        """Whether step ``step`` (1-based) may update the model."""
        bad = ~torch.isfinite(loss.detach())
        newly_bad = bad & (self.first_bad == self._NONE)
        self.first_bad = torch.where(newly_bad, step, self.first_bad)
        self.first_value = torch.where(newly_bad, loss.detach().float(), self.first_value)
        if self.run.config.nonfinite == "skip":
            skip = bool(self.run.env.all_reduce_max(bad.to(torch.int32)))  # the host sync "skip" costs
            self.skipped += skip
            return not skip
        if step % NONFINITE_CHECK_STEPS == 0:
            self._raise_if_bad()
        return True

    def finish(self) -> None:
        """At the epoch's end: raise if a bad step went unchecked, or (``"skip"``) if every step was bad."""
        if self.run.config.nonfinite == "error":
            self._raise_if_bad()
        elif self.skipped == len(self.run.loader):
            self._raise(self._first_bad_step(), "every step of the epoch had a non-finite loss and was skipped")

    def _first_bad_step(self) -> int:
        return int(self.run.env.all_reduce_min(self.first_bad.clone()))

    def _raise_if_bad(self) -> None:
        step = self._first_bad_step()
        if step != self._NONE:
            value = float(self.first_value) if int(self.first_bad) == step else "non-finite (on another rank)"
            self._raise(step, f"the training loss is {value}: the run diverged")

    def _raise(self, step: int, what: str) -> None:
        epoch, steps = self.epoch + 1, len(self.run.loader)
        saved = f"the checkpoint of epoch {self.epoch} is intact" if self.epoch else "no checkpoint was written"
        raise NonFiniteLossError(
            f"At epoch {epoch}, step {step} of {steps} (global step {self.epoch * steps + step}), {what}. Nothing of "
            f"epoch {epoch} was saved; {saved}. Lower the learning rate (lr={self.run.config.lr}), check the data "
            "and the method's options, or set nonfinite='skip' to skip such steps.",
            epoch=epoch, step=step, global_step=self.epoch * steps + step,
        )  # fmt: skip


# -- after an epoch -------------------------------------------------------------------------------------------


def _finish_epoch(run: _Run, epoch: int, row: dict[str, Any]) -> None:
    """Test accuracy, then the checkpoint (with the history), then the metrics line: rank 0 writes."""
    rngs = run.env.gather(capture_rng(run.damp_generator))
    method_states = run.env.gather(run.method.state_dict())  # per rank, like the RNG streams (ANT's generators)
    if run.env.rank == 0 and run.test_set is not None:
        batch = max(run.config.batch_size // run.env.world_size, 256)
        row["test_acc"] = _accuracy(run.model, run.test_set, run.device, batch)
    run.history.append(row)
    if run.env.rank == 0:
        save_checkpoint(run.out / CHECKPOINT_NAME, _checkpoint(run, epoch + 1, rngs, method_states))
        metrics_file.append_row(run.out / METRICS_NAME, row)  # after the checkpoint, which also holds the row
        run.say(_epoch_line(run.config, row))
    run.env.barrier()


def _checkpoint(run: _Run, epochs_done: int, rngs: list[Any], method_states: list[Any]) -> dict[str, Any]:
    checkpoint = {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "epoch": epochs_done,
        "rng": rngs[0],
        "config": run.stored_config,
        "method": method_states[0],
        "history": run.history,
    }
    if run.sparse is not None:
        checkpoint["sparse"] = run.sparse.state_dict()
    if run.env.active:
        checkpoint.update(rng_ranks=rngs, method_ranks=method_states)
    return checkpoint


def _epoch_line(config: TrainConfig, row: dict[str, Any]) -> str:
    return (
        f"epoch {row['epoch']}/{config.epochs} loss {row['train_loss']:.4f} train_acc {row['train_acc']:.4f}"
        + (f" test_acc {row['test_acc']:.4f}" if "test_acc" in row else "")
        + (f" skipped {row['skipped_steps']} non-finite steps" if row.get("skipped_steps") else "")
        + f" ({row['seconds']:.1f}s)"
    )


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
