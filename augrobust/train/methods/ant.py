"""The ``ant`` training method: adversarial noise training, the "Game of Noise" (Rusak et al., ECCV 2020).

A small noise generator (:class:`augrobust.functional.NoiseGenerator`) and the classifier play a game on every
batch: the generator takes one Adam step to *maximise* the classifier's cross-entropy on images noised with its
output (projected onto a fixed L2 budget per image), then the classifier takes its step on a batch mixing clean
images, images noised by the updated generator and images noised by earlier generator snapshots ("experience
replay", so the classifier does not forget old noise).

What is mirrored from the reference code (``bethgelab/game-of-noise``: ``main.py``, ``utils.py``):

* one generator step per classifier step, on the same mini-batch (all of it), classifier in eval mode (BN on
  running statistics), Adam with lr 1e-4; objective ``-CE``, no other term; the projection is the
  clipping-aware rescaling, differentiated through (the scale depends on the direction, as in the reference);
* batch layout: the first ``round(B p_current)`` images get the current generator, then chunks of
  ``round(B p_history)`` images each get one snapshot drawn without replacement from the history, the rest
  (``p_clean``) stays clean; in the first cycle, with no history yet, the current generator covers all of
  ``1 - p_clean`` (the reference's epoch-0 rule);
* a periodic restart: at the start of every cycle a fresh generator (reference init) is trained alone against
  the frozen classifier (Adam, lr 5e-4), replaces the joint generator (with a fresh Adam) and is added to the
  history, which keeps every snapshot by default (the reference keeps one per epoch, all of them).

What differs, and why: the reference's cycle is an epoch and its restart trains for 1001 *different* batches;
a method here sees one batch per call and does not know the epoch length, so a cycle is ``cycle_steps``
training steps and the restart trains ``retrain_steps`` steps on the batch at hand (fresh latents each step;
the generator never sees image content, only the classifier's response to its noise). The history is kept in
memory, not re-read from disk. Where ``p_clean`` is not 0.5, the noisy share is ``1 - p_clean`` as the
reference documents (its loop stops at a share of ``p_clean``; the two agree at the default 0.5).

Randomness (latents, fresh generator weights, snapshot choice) comes from torch's global RNG streams, which
the trainer checkpoints; the generator, its optimiser and the history are in :meth:`ANT.state_dict`.

Under DDP (``torchrun``) all ranks play ONE generator, as a single process would: a fresh generator's weights
are broadcast from rank 0 and its gradients are averaged over the ranks before each Adam step. Latents and
the snapshot choice stay per rank (they are per-sample draws).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from augrobust._checks import check_count, check_number, check_probability
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.adversarial_noise import NoiseGenerator, project_l2
from augrobust.functional.noise import eps_for_sigma
from augrobust.train.methods.base import Method

__all__ = ["ANT", "batch_layout"]

#: The reference's Adam learning rates: joint training and re-training a fresh generator.
REFERENCE_LR = 1e-4
REFERENCE_RETRAIN_LR = 5e-4


def batch_layout(
    batch: int, p_clean: float, p_current: float, p_history: float, history_slots: int
) -> tuple[int, list[tuple[int, int]], int]:
    """Where each kind of image sits in a batch of ``batch``: the reference's ``generate_noisy_data`` rule.

    Returns ``(n_current, history_chunks, n_noisy)``: images ``[0, n_current)`` get the current generator,
    each ``(start, end)`` chunk one history snapshot (at most ``history_slots`` chunks), ``[n_noisy, batch)``
    stays clean (as do images of chunks that find no snapshot). Boundaries are ``round(batch * share)``
    (round half to even, as ``np.round``).

    Example:
        >>> batch_layout(70, 0.5, 0.3, 0.1, 2)  # the reference's batch of 70
        (21, [(21, 28), (28, 35)], 35)
    """
    n_noisy = round(batch * (1.0 - p_clean))
    n_current = min(round(batch * p_current), n_noisy)
    chunks: list[tuple[int, int]] = []
    share = p_current
    while len(chunks) < history_slots and p_history > 0 and share < 1.0 - p_clean - 1e-3:
        start, end = round(batch * share), min(round(batch * (share + p_history)), n_noisy)
        chunks.append((start, end))
        share += p_history
    return n_current, chunks, n_noisy


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain classifier under a DistributedDataParallel wrapper (the generator step is local to a rank)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class ANT(Method):
    """Adversarial noise training (the Game of Noise) as a trainer method: ``--method ant``.

    Args:
        eps: L2 budget of every noised image in ``[0, 1]`` units. Default: the clipped norm of Gaussian noise
            with sigma 0.5 for the batch's image shape (:func:`augrobust.functional.eps_for_sigma`; 135 at
            3x224x224, the reference's value, ~19 at 3x32x32).
        kernel_size: the generator's middle conv: 3 ("ANT 3x3", default) or 1 ("ANT 1x1", the reference's
            default).
        p_clean: share of clean images in the classifier's batch (0.5).
        p_current: share noised by the current generator (0.3; ``1 - p_clean`` in the first cycle).
        p_history: share noised by each history snapshot (0.1: two snapshots per batch by default).
        lr: Adam learning rate of the joint generator (the reference's 1e-4).
        cycle_steps: training steps per cycle (the reference's cycle is one epoch); at the start of each
            cycle the generator restarts (``reinit``) and a snapshot joins the history.
        retrain_steps: generator-only Adam steps against the frozen classifier on a fresh generator at each
            restart (the reference does 1001 per epoch over different batches; here on the batch at hand).
        retrain_lr: Adam learning rate of those steps (the reference's argparse default 5e-4).
        reinit: restart from a fresh generator each cycle (reference); ``False`` snapshots the joint generator.
        history_size: most snapshots kept (oldest dropped); ``None`` keeps all, as the reference.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
        >>> ant = ANT(eps=2.0, retrain_steps=1)
        >>> x, y = torch.rand(10, 3, 8, 8), torch.randint(0, 4, (10,))
        >>> loss, logits = ant.loss(model, model, x, y)
        >>> logits.shape, len(ant.history)
        (torch.Size([10, 4]), 1)
    """

    def __init__(
        self,
        eps: float | None = None,
        *,
        kernel_size: int = 3,
        p_clean: float = 0.5,
        p_current: float = 0.3,
        p_history: float = 0.1,
        lr: float = REFERENCE_LR,
        cycle_steps: int = 1000,
        retrain_steps: int = 50,
        retrain_lr: float = REFERENCE_RETRAIN_LR,
        reinit: bool = True,
        history_size: int | None = None,
    ) -> None:
        if eps is not None:
            check_number(eps, "eps (a budget > 0, or None for the sigma-0.5 match)", minimum=0.0, strict=True)
        self.p_clean = check_probability(p_clean, "p_clean")
        self.p_current = check_probability(p_current, "p_current")
        self.p_history = check_probability(p_history, "p_history")
        if self.p_current > 1.0 - self.p_clean + 1e-9:
            raise AugrobustValueError(
                f"p_current ({p_current}) cannot exceed the noisy share 1 - p_clean ({1 - self.p_clean:g})."
            )
        for name, value in (("lr", lr), ("retrain_lr", retrain_lr)):
            check_number(value, name, minimum=0.0, strict=True)
        self.eps = None if eps is None else float(eps)
        self.kernel_size = check_count(kernel_size, "kernel_size", minimum=1)
        if kernel_size % 2 == 0:
            raise AugrobustValueError(f"kernel_size must be odd (1 or 3 in the reference), got {kernel_size}.")
        self.lr, self.retrain_lr = float(lr), float(retrain_lr)
        self.cycle_steps = check_count(cycle_steps, "cycle_steps", minimum=1)
        self.retrain_steps = check_count(retrain_steps, "retrain_steps")
        self.reinit = bool(reinit)
        self.history_size = None if history_size is None else check_count(history_size, "history_size", minimum=1)
        self.generator: NoiseGenerator | None = None
        self.optimizer: torch.optim.Adam | None = None
        self.history: list[NoiseGenerator] = []
        self.step = 0
        self.channels: int | None = None
        self.last_generator_loss: torch.Tensor | None = None  # the classifier's CE the generator reached (detached)
        self._pending_state: dict[str, Any] | None = None
        self._eps_cache: dict[tuple[int, ...], float] = {}

    # -- the trainer hooks -----------------------------------------------------------------------------------
    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One round of the game on a device batch: the generator step, then the classifier's mixed batch.

        Returns the mixed batch, detached from the generators (the classifier's loss sends no gradient to them).
        """
        if x.ndim != 4 or not x.is_floating_point():
            raise AugrobustValueError(f"ANT needs a float (B, C, H, W) batch in [0, 1], got {x.dtype} {tuple(x.shape)}.")
        if y is None or y.shape != x.shape[:1]:
            raise AugrobustValueError(f"ANT needs one label per image; got labels {None if y is None else tuple(y.shape)}.")
        self._setup(x)
        assert self.generator is not None and self.optimizer is not None
        if self.step % self.cycle_steps == 0:
            self._start_cycle(model, x, y)
        self.last_generator_loss = self._generator_step(model, self.generator, self.optimizer, x, y)
        mixed = self.mix(x)
        self.step += 1
        return mixed

    # -- the pieces ------------------------------------------------------------------------------------------
    def resolved_eps(self, shape: torch.Size) -> float:
        """The L2 budget for images of ``shape`` (``(B, C, H, W)``)."""
        if self.eps is not None:
            return self.eps
        key = tuple(int(s) for s in shape[1:])
        if key not in self._eps_cache:
            self._eps_cache[key] = eps_for_sigma(0.5, key)
        return self._eps_cache[key]

    def new_generator(self, device: torch.device, *, placeholder: bool = False) -> NoiseGenerator:
        """A fresh generator with the reference initialisation, drawn from torch's global RNG.

        ``placeholder=True`` builds one from a fixed seed instead, to be overwritten by a saved state: it
        consumes none of the global RNG, so a resumed run draws exactly what an uninterrupted one does.
        """
        assert self.channels is not None
        generator = NoiseGenerator(self.channels, kernel_size=self.kernel_size, seed=0 if placeholder else None)
        generator = generator.to(device)
        if _distributed() and not placeholder:  # one generator for all ranks: rank 0's draw
            for param in generator.parameters():
                dist.broadcast(param.data, src=0)
        return generator

    def _setup(self, x: torch.Tensor) -> None:
        if self.channels is None:
            self.channels = x.shape[1]
        elif x.shape[1] != self.channels:
            raise AugrobustValueError(f"ANT was set up for {self.channels}-channel images, got {x.shape[1]} channels.")
        if self.generator is None:
            restoring = self._pending_state is not None
            self.generator = self.new_generator(x.device, placeholder=restoring)
            self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.lr)
            if self._pending_state is not None:
                self._restore(self._pending_state, x.device)
                self._pending_state = None
        if self.generator.layers[0].weight.device != x.device:
            self.generator.to(x.device)
            self.history = [h.to(x.device) for h in self.history]
            assert self.optimizer is not None
            for state in self.optimizer.state.values():
                for key, value in state.items():
                    if isinstance(value, torch.Tensor) and value.device != x.device and key != "step":
                        state[key] = value.to(x.device)

    def _start_cycle(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        """The reference's epoch start: re-train a fresh generator, make it the joint one, snapshot it."""
        if self.reinit:
            fresh = self.new_generator(x.device)
            retrain_optimizer = torch.optim.Adam(fresh.parameters(), lr=self.retrain_lr)
            for _ in range(self.retrain_steps):
                self._generator_step(model, fresh, retrain_optimizer, x, y)
            self.generator = fresh
            self.optimizer = torch.optim.Adam(fresh.parameters(), lr=self.lr)
        assert self.generator is not None
        snapshot = copy.deepcopy(self.generator).requires_grad_(False).eval()
        self.history.append(snapshot)
        if self.history_size is not None and len(self.history) > self.history_size:
            del self.history[: len(self.history) - self.history_size]

    def _generator_step(
        self, model: nn.Module, generator: NoiseGenerator, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """One Adam step of ``generator`` maximising the classifier's CE; the classifier gets no gradient.

        The classifier runs in eval mode (the reference's ``model.eval()``: BN on running statistics, which the
        step therefore does not update) and without DAMP's weight noise; gradients are taken with
        ``torch.autograd.grad`` w.r.t. the generator only, so no ``.grad`` is written on the classifier.
        """
        classifier = _unwrap(model)
        was_training = classifier.training
        params = list(generator.parameters())
        classifier.eval()
        try:
            latent = generator.sample_latent(x.shape, device=x.device, dtype=torch.promote_types(x.dtype, torch.float32))
            noisy = project_l2(x.detach(), generator(latent), self.resolved_eps(x.shape))
            ce = F.cross_entropy(classifier(noisy), y)
            grads = torch.autograd.grad(-ce, params)
        finally:
            classifier.train(was_training)
        if _distributed():  # one generator for all ranks: average its gradient like DDP does the classifier's
            for grad in grads:
                dist.all_reduce(grad)
                grad.div_(dist.get_world_size())
        for param, grad in zip(params, grads):
            param.grad = grad
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return ce.detach()

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's batch: current-generator, history and clean images (see :func:`batch_layout`).

        In the first cycle the current generator covers the whole noisy share (no history yet).
        """
        assert self.generator is not None
        batch = x.shape[0]
        first_cycle = self.step < self.cycle_steps
        p_current = 1.0 - self.p_clean if first_cycle else self.p_current
        slots = 0 if first_cycle else len(self.history)
        n_current, chunks, n_noisy = batch_layout(batch, self.p_clean, p_current, self.p_history, slots)
        eps = self.resolved_eps(x.shape)
        work = torch.promote_types(x.dtype, torch.float32)
        with torch.no_grad():
            parts = [project_l2(x[:n_current], self.generator(self.generator.sample_latent(x[:n_current].shape, device=x.device, dtype=work)), eps)]
            order = torch.randperm(len(self.history))[: len(chunks)].tolist() if chunks else []  # CPU draw: no sync
            end = n_current
            for (start, end), which in zip(chunks, order):
                snapshot = self.history[which]
                part = x[start:end]
                parts.append(project_l2(part, snapshot(snapshot.sample_latent(part.shape, device=x.device, dtype=work)), eps))
            parts.append(x[end:])  # chunks without a snapshot stay clean, as in the reference
            return torch.cat(parts).to(x.dtype)

    # -- checkpointing ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Generator, its Adam state, history and step count: plain tensors (``torch.load(weights_only=True)``)."""
        if self.generator is None:
            return {"step": self.step, "channels": self.channels, "kernel_size": self.kernel_size}
        assert self.optimizer is not None
        return {
            "step": self.step,
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "generator": self.generator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": [h.state_dict() for h in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; tensors move to the training device on the next batch."""
        if not isinstance(state, dict) or "step" not in state or "kernel_size" not in state:
            raise AugrobustTypeError(f"not an ANT state dict: {type(state).__name__} with keys {sorted(state) if isinstance(state, dict) else '-'}.")
        if state["kernel_size"] != self.kernel_size:
            raise AugrobustValueError(
                f"the saved ANT state has kernel_size {state['kernel_size']}, this method {self.kernel_size}; "
                f"build ANT(kernel_size={state['kernel_size']})."
            )
        self.step = int(state["step"])
        self.channels = state["channels"]
        self.generator, self.optimizer, self.history = None, None, []
        self._pending_state = state if "generator" in state else None

    def _restore(self, state: dict[str, Any], device: torch.device) -> None:
        assert self.generator is not None and self.optimizer is not None
        self.generator.load_state_dict(state["generator"])
        self.optimizer.load_state_dict(state["optimizer"])  # Adam moves its state to the parameters' device
        self.history = []
        for saved in state["history"]:
            snapshot = self.new_generator(device, placeholder=True)
            snapshot.load_state_dict(saved)
            self.history.append(snapshot.requires_grad_(False).eval())

    def __repr__(self) -> str:
        return (
            f"ANT(eps={self.eps}, kernel_size={self.kernel_size}, p_clean={self.p_clean}, p_current={self.p_current}, "
            f"p_history={self.p_history}, lr={self.lr}, cycle_steps={self.cycle_steps}, "
            f"retrain_steps={self.retrain_steps}, history={len(self.history)})"
        )

