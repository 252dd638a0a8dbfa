"""Dynamic sparse training (DST): SET, RigL, MEST and GraNet with binary masks on dense weights.

Every conv (not transposed) and linear ``weight`` is masked, except the first such layer when
``dense_first`` (RigL's ImageNet setting, ``first_layer_sparsity=0``: that layer is neither masked nor counted
in the layer densities); biases and norm layers stay dense. Masked weights are exactly zero after every
optimiser step: :meth:`SparseTraining.apply_masks` multiplies the weights and SGD's momentum buffers by the
masks (the gradient itself stays dense, which is RigL's "dense gradient" for free; zeroing the momentum
makes the step equal to a step with masked gradients, weight decay included). A grown connection therefore
starts at weight 0 with momentum 0. Every ``interval`` optimiser steps, until ``end`` of the run, each layer
drops ``n_drop`` of its active weights and grows as many at inactive positions (just-dropped ones included,
as every reference does; a dropped-and-regrown weight keeps its value, as RigL's ``reinit_when_same=False``):

============  =====================================  ====================================  =====================
algorithm     drop (lowest score, active weights)    grow (highest score, inactive ones)   drop count, schedule
============  =====================================  ====================================  =====================
``set``       ``|w|``                                uniform random                        ``int(zeta_t * n)``, cosine to 0 at end
``rigl``      ``|w|``                                ``|dL/dw|`` (dense gradient)          ``int(zeta_t * n)``, cosine to 0 at end
``mest``      ``|w| + lambda * |dL/dw|``             uniform random                        ``int(zeta_t * n)``, zeta, zeta/2, 0
``granet``    ``|w|``                                ``|dL/dw|``                           ``ceil(zeta_t * n)``, cosine to 0.005
============  =====================================  ====================================  =====================

(``n``: the layer's active weights). GraNet also prunes gradually: it starts dense (density 1, its ImageNet
setting) and, at each update step of the first half of the run, keeps the ``int(N * d_t)`` largest ``|w|``
over all masked layers together, ``d_t`` following Zhu & Gupta's cubic schedule down to the target density;
its drop / grow then runs on the pruned masks.

Where this differs from the references (all read in their code, see ``docs/design-notes.md``): RigL's
TensorFlow code replaces the weight update of a mask-update step by the mask update and adds ``N(0, 1e-5)``
noise to the drop score; here (as in the PyTorch references) the optimiser step is taken, then the masks are
updated, and ties are broken by position (stable sort), which makes the choice a deterministic function of
weights and gradients. GraNet's code stops pruning one step short of the target; here the last pruning step
reaches it. MEST's mutation ratio is a fraction of the layer size stepped down at fixed epochs; here it is
``zeta`` of the active weights, halved after 3/4 of the update period and 0 after it (its 90/120/160 epochs).

Under DDP every rank computes the same decision (same weights, all-reduced gradients, the random draws from a
generator seeded identically on every rank) and rank 0's masks are then broadcast, so the masks are the same
even if a backend's reduction were not bit-identical across ranks.

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    >>> dst = SparseTraining(net, opt, "rigl", sparsity=0.5, total_steps=100, dense_first=False)
    >>> round(dst.density(), 3)
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.conv import _ConvNd

from augrobust._checks import check_bool, check_choice, check_count, check_number
from augrobust.errors import AugrobustValueError

__all__ = [
    "GRANET_FINAL_ZETA",
    "GRANET_INITIAL_DENSITY",
    "GRANET_PRUNE_END",
    "SPARSE_ALGORITHMS",
    "SPARSE_DEFAULT_END",
    "SPARSE_DISTRIBUTIONS",
    "SparseTraining",
    "drop_fraction",
    "erk_densities",
    "layer_counts",
    "layer_sparsity",
    "sparsifiable_weights",
]

#: The DST algorithms.
SPARSE_ALGORITHMS = ("granet", "mest", "rigl", "set")

#: How the target density is spread over the layers.
SPARSE_DISTRIBUTIONS = ("erk", "uniform")

#: Fraction of the run after which the masks stop changing, per algorithm (RigL: 75 %, its paper and
#: ``maskupdate_end_step``; MEST: epoch 120 of 160; GraNet: updates until the end).
SPARSE_DEFAULT_END = {"set": 0.75, "rigl": 0.75, "mest": 0.75, "granet": 1.0}

#: GraNet's density when pruning starts (its ImageNet default ``--init-density 1.0``).
GRANET_INITIAL_DENSITY = 1.0
#: GraNet's gradual pruning ends at this fraction of the run (its CIFAR script: epoch 80 of 160).
GRANET_PRUNE_END = 0.5
#: GraNet's drop fraction anneals (cosine, over the whole run) down to this (``CosineDecay(eta_min=0.005)``).
GRANET_FINAL_ZETA = 0.005


def sparsifiable_weights(model: nn.Module, dense_first: bool = True) -> list[tuple[str, nn.Parameter]]:
    """``(name, weight)`` of the conv and linear layers DST masks, in module order.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
        >>> [n for n, _ in sparsifiable_weights(net, dense_first=False)], [n for n, _ in sparsifiable_weights(net)]
        (['0.weight', '3.weight'], ['3.weight'])
    """
    out = []
    for name, module in model.named_modules():
        if (isinstance(module, _ConvNd) and not module.transposed) or isinstance(module, nn.Linear):
            if isinstance(module.weight, nn.Parameter) and module.weight.requires_grad:
                out.append((f"{name}.weight" if name else "weight", module.weight))
    return out[1:] if dense_first else out


def erk_densities(shapes: Mapping[str, tuple[int, ...]], density: float, power: float = 1.0) -> dict[str, float]:
    """Erdos-Renyi-Kernel layer densities for a global ``density`` (RigL's ``get_sparsities_erdos_renyi``).

    Layer ``l`` gets ``eps * (sum(shape_l) / prod(shape_l)) ** power``; ``eps`` is chosen so that the layers'
    kept weights add up to the uniform count, and a layer whose density would exceed 1 is made dense (the
    largest first) and ``eps`` solved again for the rest.

    Example:
        >>> d = erk_densities({"a": (16, 3, 3, 3), "b": (64, 16, 3, 3), "c": (10, 64)}, 0.5)
        >>> {k: round(v, 4) for k, v in d.items()}
        {'a': 1.0, 'b': 0.4418, 'c': 1.0}
    """
    check_number(density, "density", minimum=0.0, maximum=1.0)
    dense: set[str] = set()
    while True:
        rhs, divisor, raw = 0.0, 0.0, {}
        for name, shape in shapes.items():
            n = math.prod(shape)
            n_zeros = math.floor((1.0 - density) * n)
            if name in dense:
                rhs -= n_zeros
            else:
                rhs += n - n_zeros
                raw[name] = (sum(shape) / n) ** power
                divisor += raw[name] * n
        if not raw:
            return dict.fromkeys(shapes, 1.0)
        eps = rhs / divisor
        top = max(raw.values())
        if top * eps <= 1.0:
            return {name: 1.0 if name in dense else eps * raw[name] for name in shapes}
        dense.update(name for name, p in raw.items() if p == top)


def layer_counts(shapes: Mapping[str, tuple[int, ...]], sparsity: float, distribution: str) -> dict[str, int]:
    """Active weights per layer: ``n - floor((1 - density_l) * n)`` (RigL's ``get_n_zeros``).

    Example:
        >>> layer_counts({"a": (4, 3), "b": (5, 5)}, 0.5, "uniform")
        {'a': 6, 'b': 13}
    """
    check_choice(distribution, "distribution", SPARSE_DISTRIBUTIONS)
    density = 1.0 - sparsity
    if distribution == "uniform":
        densities = dict.fromkeys(shapes, density)
    else:
        densities = erk_densities(shapes, density)
    counts = {}
    for name, shape in shapes.items():
        n = math.prod(shape)
        counts[name] = n - math.floor(max(0.0, 1.0 - densities[name]) * n)
    return counts


def drop_fraction(algorithm: str, zeta: float, step: int, end_step: int, total_steps: int) -> float:
    """The drop fraction ``zeta_t`` at optimiser step ``step`` (counted from 1), as each algorithm anneals it.

    ``set`` / ``rigl``: ``zeta * (1 + cos(pi * min(t, end) / end)) / 2`` (RigL's ``cosine_decay``);
    ``mest``: ``zeta`` up to 3/4 of ``end``, ``zeta / 2`` up to ``end``, then 0;
    ``granet``: ``0.005 + (zeta - 0.005) * (1 + cos(pi * t / T)) / 2`` over the whole run (``T = total_steps``).

    Example:
        >>> drop_fraction("rigl", 0.3, 0, 100, 200), drop_fraction("rigl", 0.3, 50, 100, 200)
        (0.3, 0.15)
    """
    check_choice(algorithm, "algorithm", SPARSE_ALGORITHMS)
    if algorithm == "granet":
        t = min(step, total_steps)
        return GRANET_FINAL_ZETA + (zeta - GRANET_FINAL_ZETA) * (1 + math.cos(math.pi * t / total_steps)) / 2
    if algorithm == "mest":
        return zeta if step <= 0.75 * end_step else zeta / 2 if step <= end_step else 0.0
    return zeta * 0.5 * (1 + math.cos(math.pi * min(step, end_step) / max(end_step, 1)))


def layer_sparsity(model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The fraction of exactly-zero weights of every conv / linear layer, and over all of them (``"global"``).

    Takes a model or its state dict (conv / linear weights are recognised as the 2-D and 4-D ``*.weight``
    tensors of a state dict). For ``augrobust eval``'s report header.

    Example:
        >>> net = nn.Linear(4, 2)
        >>> with torch.no_grad():
        ...     _ = net.weight[0].zero_()
        >>> layer_sparsity(net)
        {'global': 0.5, 'layers': {'weight': 0.5}}
    """
    if isinstance(model_or_state, nn.Module):
        weights = {name: w.detach() for name, w in sparsifiable_weights(model_or_state, dense_first=False)}
    else:
        weights = {
            k: v for k, v in model_or_state.items() if k.endswith("weight") and v.dim() in (2, 4, 5)
            and v.is_floating_point()
        }  # fmt: skip
    layers = {name: round(float((w == 0).sum()) / w.numel(), 6) for name, w in weights.items()}
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    total = sum(w.numel() for w in weights.values())
    return {"global": round(zeros / max(total, 1), 6), "layers": layers}


def _ranked(score: torch.Tensor, k: int) -> torch.Tensor:
    """Flat indices of the ``k`` largest entries; ties go to the lower index (stable, device-independent)."""
    order = torch.sort(score.flatten(), descending=True, stable=True).indices
    return order[:k]


class SparseTraining:
    """Masks, their schedule and their updates for one model and its optimiser (see the module docstring).

    Args:
        model: the (unwrapped) model; its conv / linear weights are masked in place.
        optimizer: the optimiser over the model's parameters (its ``momentum_buffer`` entries are masked too).
        algorithm: ``"set"``, ``"rigl"``, ``"mest"`` or ``"granet"``.
        sparsity: target fraction of zero weights over the masked layers, in ``(0, 1)``.
        total_steps: optimiser steps of the whole run (the schedules are fractions of it).
        distribution: ``"erk"`` or ``"uniform"`` layer densities.
        interval: optimiser steps between mask updates (``delta_T``).
        zeta: initial drop fraction.
        end: fraction of the run after which masks stay fixed (``None``: :data:`SPARSE_DEFAULT_END`).
        mest_lambda: MEST's gradient weight in the drop score (its code's default ``--sp-lmd`` is 0).
        dense_first: leave the first conv / linear layer dense and unmasked.
        seed: seed of the random masks and random growth (the same on every DDP rank).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 2))
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        >>> dst = SparseTraining(net, opt, "set", sparsity=0.5, total_steps=10, interval=2, distribution="uniform")
        >>> dst.counts()
        {'3.weight': 6}
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        algorithm: str,
        *,
        sparsity: float,
        total_steps: int,
        distribution: str = "erk",
        interval: int = 100,
        zeta: float = 0.3,
        end: float | None = None,
        mest_lambda: float = 0.0,
        dense_first: bool = True,
        seed: int = 0,
    ) -> None:
        self.algorithm = check_choice(algorithm, "sparse algorithm", SPARSE_ALGORITHMS)
        self.sparsity = check_number(sparsity, "sparsity", minimum=0.0, maximum=1.0, strict=True)
        if self.sparsity >= 1.0:
            raise AugrobustValueError(f"sparsity must be below 1 (1 removes every weight), got {sparsity!r}.")
        self.distribution = check_choice(distribution, "sparse distribution", SPARSE_DISTRIBUTIONS)
        self.interval = check_count(interval, "sparse interval", minimum=1)
        self.zeta = check_number(zeta, "sparse drop fraction", minimum=0.0, maximum=1.0)
        end = SPARSE_DEFAULT_END[self.algorithm] if end is None else end
        self.end = check_number(end, "sparse end (fraction of the run)", minimum=0.0, maximum=1.0)
        self.mest_lambda = check_number(mest_lambda, "MEST lambda", minimum=0.0)
        self.total_steps = check_count(total_steps, "total_steps", minimum=1)
        check_bool(dense_first, "dense_first")
        self.optimizer = optimizer
        self.weights = dict(sparsifiable_weights(model, dense_first))
        if not self.weights:
            raise AugrobustValueError(
                "The model has no conv / linear weight to sparsify"
                + (" besides its first layer (dense_first)." if dense_first else ".")
            )
        self.end_step = int(self.end * self.total_steps)
        self.step_count = 0
        self._grads: dict[str, torch.Tensor | None] = {}
        self._multipliers: list[torch.Tensor] | None = None
        first = next(iter(self.weights.values()))
        self.generator = torch.Generator(device=first.device)
        self.generator.manual_seed(int(seed) * 1_000_003 + 104_729)
        shapes = {name: tuple(w.shape) for name, w in self.weights.items()}
        self.targets = layer_counts(shapes, self.sparsity, self.distribution)
        start = {name: math.prod(s) for name, s in shapes.items()} if algorithm == "granet" else self.targets
        if algorithm == "granet" and GRANET_INITIAL_DENSITY < 1.0:  # pragma: no cover - a constant of 1.0
            start = layer_counts(shapes, 1.0 - GRANET_INITIAL_DENSITY, self.distribution)
        self.masks = {name: self._random_mask(w, start[name]) for name, w in self.weights.items()}
        self._active = dict(start)  # active weights per layer, kept on the host: no device sync per update
        self._broadcast_masks()
        self.apply_masks()

    # -- the masks -------------------------------------------------------------------------------------------

    def _random_mask(self, weight: torch.Tensor, ones: int) -> torch.Tensor:
        score = torch.rand(weight.shape, generator=self.generator, device=weight.device)
        mask = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
        mask[_ranked(score, ones)] = True
        return mask.view_as(weight)

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero the masked weights and their momentum (after every optimiser step, and after a mask change)."""
        weights = list(self.weights.values())
        if self._multipliers is None:  # the masks as 0 / 1 in the weights' dtype, rebuilt only when they change
            self._multipliers = [m.to(w.dtype) for m, w in zip(self.masks.values(), weights)]
        masks = self._multipliers
        torch._foreach_mul_(weights, masks)
        buffers, buffer_masks = [], []
        for w, m in zip(weights, masks):
            buf = self.optimizer.state.get(w, {}).get("momentum_buffer")
            if buf is not None:
                buffers.append(buf)
                buffer_masks.append(m)
        if buffers:
            torch._foreach_mul_(buffers, buffer_masks)

    def counts(self) -> dict[str, int]:
        """Active weights per masked layer, counted on the masks (a host sync: for reports and tests)."""
        return {name: int(m.sum()) for name, m in self.masks.items()}

    def density(self) -> float:
        """Active fraction over all masked weights (a host sync)."""
        return sum(self.counts().values()) / sum(m.numel() for m in self.masks.values())

    # -- the schedule ----------------------------------------------------------------------------------------

    def is_update_step(self, step: int) -> bool:
        """Whether the masks change after optimiser step ``step`` (counted from 1)."""
        return step % self.interval == 0 and step <= self.end_step

    def optimizer_step(self) -> None:
        """In place of ``optimizer.step()``: the step, the masks re-applied, then the mask update on schedule.

        On an update step the gradients are copied first: an optimiser may change ``.grad`` in place (SGD's
        multi-tensor Nesterov path does when weight decay is 0), and the drop / grow scores need the gradient
        of this step's loss at the pre-step weights.
        """
        self.step_count += 1
        update = self.is_update_step(self.step_count)
        if update:
            self._grads = {n: None if w.grad is None else w.grad.detach().clone() for n, w in self.weights.items()}
        self.optimizer.step()
        self.apply_masks()
        if update:
            self.update(self.step_count)
            self._grads = {}

    def skip_step(self) -> None:
        """A step whose update was skipped (non-finite loss): the schedule advances, the masks stay."""
        self.step_count += 1

    @torch.no_grad()
    def update(self, step: int) -> None:
        """One mask update at optimiser step ``step``: GraNet's pruning, then drop and grow, on every layer."""
        if self.algorithm == "granet":
            self._granet_prune(step)
        zeta = drop_fraction(self.algorithm, self.zeta, step, self.end_step, self.total_steps)
        rounding: Callable[[float], int] = math.ceil if self.algorithm == "granet" else int
        for name, weight in self.weights.items():
            mask = self.masks[name]
            active = self._active[name]
            n_drop = min(rounding(zeta * active), active)
            if n_drop == 0:
                continue
            self.masks[name] = self._drop_and_grow(weight, mask, active - n_drop, n_drop)
        self._broadcast_masks()
        self._multipliers = None
        self.apply_masks()

    def drop_score(self, weight: torch.Tensor) -> torch.Tensor:
        """The score whose lowest active entries are dropped."""
        score = weight.abs()
        grad = self._grad(weight)
        if self.algorithm == "mest" and self.mest_lambda and grad is not None:
            score = score + self.mest_lambda * grad.abs()
        return score

    def _grad(self, weight: torch.Tensor) -> torch.Tensor | None:
        for name, w in self.weights.items():
            if w is weight:
                return self._grads.get(name, weight.grad)
        return weight.grad

    def grow_score(self, weight: torch.Tensor) -> torch.Tensor:
        """The score whose highest inactive entries are grown."""
        if self.algorithm in ("rigl", "granet"):
            grad = self._grad(weight)
            if grad is None:
                raise AugrobustValueError(f"{self.algorithm} grows by the gradient, but a masked weight has none.")
            return grad.abs()
        return torch.rand(weight.shape, generator=self.generator, device=weight.device)

    def _drop_and_grow(self, weight: torch.Tensor, mask: torch.Tensor, n_keep: int, n_grow: int) -> torch.Tensor:
        drop = self.drop_score(weight).float().masked_fill(~mask, -math.inf)
        kept = torch.zeros(mask.numel(), dtype=torch.bool, device=mask.device)
        kept[_ranked(drop, n_keep)] = True
        grow = self.grow_score(weight).float().flatten().masked_fill(kept, -math.inf)
        new = kept.clone()
        new[_ranked(grow, n_grow)] = True
        return new.view_as(mask)

    def _granet_prune(self, step: int) -> None:
        """Zhu & Gupta's cubic schedule from GraNet's initial density to the target, global magnitude."""
        it, last = step // self.interval, int(GRANET_PRUNE_END * self.total_steps) // self.interval
        if it > last or last == 0:
            return
        d0, d1 = GRANET_INITIAL_DENSITY, 1.0 - self.sparsity
        density = d1 + (d0 - d1) * (1.0 - it / last) ** 3
        total = sum(m.numel() for m in self.masks.values())
        keep = total - math.floor((1.0 - density) * total)  # at it == last: exactly the target density
        names = list(self.weights)
        scores = torch.cat([(self.weights[n].abs().float() * self.masks[n]).flatten() for n in names])
        scores = scores.masked_fill(~torch.cat([self.masks[n].flatten() for n in names]), -math.inf)
        flat = torch.zeros(total, dtype=torch.bool, device=scores.device)
        flat[_ranked(scores, keep)] = True
        for name, piece in zip(names, torch.split(flat, [self.masks[n].numel() for n in names])):
            self.masks[name] = piece.view_as(self.masks[name]) & self.masks[name]
        self._count_active()
        self._multipliers = None
        self.apply_masks()

    def _count_active(self) -> None:
        sums = torch.stack([m.sum() for m in self.masks.values()]).tolist()  # one sync, not one per layer
        self._active = dict(zip(self.masks, (int(n) for n in sums)))

    def _broadcast_masks(self) -> None:
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            for name, mask in self.masks.items():
                as_bytes = mask.to(torch.uint8)
                dist.broadcast(as_bytes, src=0)
                self.masks[name] = as_bytes.bool()

    # -- checkpoint ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Masks (bool, on the CPU), step count and the random generator: everything an exact resume needs."""
        return {
            "algorithm": self.algorithm,
            "step": self.step_count,
            "masks": {name: m.cpu() for name, m in self.masks.items()},
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (same model and settings); re-masks the weights."""
        if not isinstance(state, Mapping) or set(state) != {"algorithm", "step", "masks", "generator"}:
            raise AugrobustValueError(f"Malformed sparse-training state: expected masks, step, generator; got {state!r:.200}")
        if state["algorithm"] != self.algorithm or set(state["masks"]) != set(self.masks):
            raise AugrobustValueError(
                f"The sparse-training state is for {state['algorithm']!r} over {sorted(state['masks'])}, "
                f"not {self.algorithm!r} over {sorted(self.masks)}."
            )
        for name, mask in state["masks"].items():
            if mask.shape != self.masks[name].shape or mask.dtype != torch.bool:
                raise AugrobustValueError(f"Sparse mask {name!r} has shape {tuple(mask.shape)} / {mask.dtype}.")
            self.masks[name] = mask.to(self.masks[name].device)
        self.step_count = int(state["step"])
        self.generator.set_state(state["generator"])
        self._count_active()
        self._multipliers = None
        self.apply_masks()

    def __repr__(self) -> str:
        return (
            f"SparseTraining({self.algorithm}, sparsity={self.sparsity}, {self.distribution}, "
            f"interval={self.interval}, zeta={self.zeta}, end={self.end}, {len(self.masks)} masked layers)"
        )
