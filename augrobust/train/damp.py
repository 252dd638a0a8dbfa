"""DAMP: Data Augmentation via Multiplicative Perturbations (Trinh et al., NeurIPS 2024), in one forward pass.

Per training step the batch is split into ``M`` equal sub-batches; sub-batch ``m`` sees its own weights
``w * xi_m`` with ``xi_m ~ N(1, sigma^2)`` drawn independently per element of every conv / linear weight and
every norm-layer scale (gamma). Biases and norm shifts (beta) are not perturbed. The gradient is taken at
the perturbed weights (no chain-rule factor ``xi``, the convention of the authors' JAX code), summed over
the sub-batches of a loss that averages over the whole batch (= the mean of the sub-batch gradients), and
the base optimiser updates the unperturbed weights.

How (and why this way): the whole batch goes through the model in ONE forward. While :meth:`DAMP.forward`
runs, each selected module's ``forward`` is temporarily replaced by a sub-batch-aware one:

- conv / linear: a custom autograd function computes sub-batch ``m``'s output with ``w * xi_m`` and its
  input gradient with the same weight, while the weight gradient ``sum_m dL/dw_m`` (linear in the
  (input, output-gradient) pairs) is ONE whole-batch weight-gradient computation, like plain SGD's;
- BatchNorm: normalise with the statistics of the WHOLE batch (and update the running statistics once,
  exactly like ``nn.BatchNorm``), then apply the sub-batch's perturbed gamma and the shared beta. This is
  what the reference gets with ``sync_batch_norm`` over its vmap axis; a loop over sub-batches would
  compute ghost-BN statistics over ``B / M`` images instead;
- LayerNorm / GroupNorm: normalise without affine, then the sub-batch's gamma and the shared beta.

The gradient w.r.t. ``w`` is ``sum_m dL / d(w * xi_m)`` (no factor ``xi``): norm scales are written
``w + stop_grad(w) * sigma * z`` (value ``w * xi``, identity derivative), conv / linear return it from
their backward. It lands in ``w.grad`` through autograd, so DDP's gradient hooks, gradient clipping and
any optimiser work unchanged. FLOPs equal plain SGD's; the extra cost is drawing ``M`` normal samples per
perturbed weight element and the per-sub-batch affine of the norm layers.

Difference from the reference: under DDP, BatchNorm statistics are over each process's batch (the JAX
code also all-reduces them across devices); convert the model to ``nn.SyncBatchNorm`` yourself if that
matters (not supported by DAMP's BN path yet). The trainer counts ``M`` over the global batch, like the
reference, so each of ``W`` processes uses ``M / W`` sub-batches.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from augrobust._checks import check_count, check_number
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.host import host_map

__all__ = ["DAMP", "damp_parameter_names", "perturbable_modules", "standard_normal_"]

_NORMS = (_BatchNorm, nn.LayerNorm, nn.GroupNorm)
#: Elements per independently seeded piece of a large CPU noise draw (see ``standard_normal_``).
_DRAW_CHUNK = 1 << 20


def standard_normal_(buffer: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill a contiguous ``buffer`` with N(0, 1) draws, in place; returns it.

    torch's CPU ``normal_`` runs on one thread (0.3 s for resnet18's 8 x 11.2 M weights, most of DAMP's
    overhead). A large CPU buffer is therefore drawn in fixed pieces of ``2**20`` elements, each from its own
    ``torch.Generator`` seeded by one draw of ``generator``, on torch's CPU threads. The pieces depend on the
    size only, so the result is the same for any thread count and replays from ``generator``'s state.
    Elsewhere (small buffers, accelerators, whose ``normal_`` is parallel) it is ``buffer.normal_``.

    Example:
        >>> a = standard_normal_(torch.empty(3_000_000), torch.Generator().manual_seed(0))
        >>> b = standard_normal_(torch.empty(3_000_000), torch.Generator().manual_seed(0))
        >>> torch.equal(a, b), abs(float(a.mean())) < 0.01, abs(float(a.std()) - 1) < 0.01
        (True, True, True)
    """
    if buffer.device.type != "cpu" or buffer.numel() <= _DRAW_CHUNK or not buffer.is_contiguous():
        return buffer.normal_(generator=generator)
    pieces = buffer.view(-1).split(_DRAW_CHUNK)
    seeds = torch.randint(0, 2**62, (len(pieces),), generator=generator).tolist()
    host_map(lambda k: pieces[k].normal_(generator=torch.Generator().manual_seed(seeds[k])), len(pieces))
    return buffer



def perturbable_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules whose ``weight`` DAMP perturbs: conv, linear and norm layers with a weight.

    Raises:
        AugrobustTypeError: a module owns a trainable tensor that DAMP cannot give per-sub-batch values
            (e.g. ``nn.ConvTranspose2d``, ``nn.MultiheadAttention``): rather than silently skipping it.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
        >>> [name for name, _ in perturbable_modules(net)]
        ['0', '1', '3']
    """
    selected = []
    for name, module in model.named_modules():
        own = [n for n, p in module.named_parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if isinstance(module, nn.SyncBatchNorm):
            raise AugrobustTypeError(
                f"DAMP does not support SyncBatchNorm ({name!r}): it would silently use per-process statistics."
            )
        supported = (
            (isinstance(module, _ConvNd) and not module.transposed) or isinstance(module, (nn.Linear, *_NORMS))
        )
        if not supported:
            raise AugrobustTypeError(
                f"DAMP cannot perturb module {name!r} ({type(module).__name__}, parameters {own}); supported are "
                "Conv1d/2d/3d, Linear, BatchNorm*, LayerNorm and GroupNorm."
            )
        if getattr(module, "weight", None) is not None and module.weight.requires_grad:
            selected.append((name, module))
    return selected


def damp_parameter_names(model: nn.Module) -> list[str]:
    """Names (as in ``model.named_parameters()``) of the tensors DAMP perturbs.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
        >>> damp_parameter_names(net)
        ['0.weight', '1.weight', '3.weight']
    """
    return [f"{name}.weight" if name else "weight" for name, _ in perturbable_modules(model)]


# -- sub-batch-aware forwards -------------------------------------------------------------------------------
# Conv and linear use a custom autograd Function: the input gradient needs each sub-batch's own weight, but
# the weight gradient sum_m dL/dw_m is linear in (input, output-gradient) pairs, so it equals ONE whole-batch
# weight-gradient computation. That avoids M small weight-gradient GEMMs and summing M weight-sized tensors
# (measured on CPU: 2x cost on 512-channel 4x4 layers otherwise).


def _split(x: torch.Tensor, m: int) -> int:
    if x.shape[0] % m:
        raise AugrobustValueError(f"DAMP needs a batch divisible by num_subbatches={m}, got batch {x.shape[0]}.")
    return x.shape[0] // m


def _perturb(weight: torch.Tensor, noise: torch.Tensor, sigma: float, in_place: bool) -> torch.Tensor:
    """``w * (1 + sigma z_m)`` stacked over the sub-batches m, without autograd (one fused op).

    ``in_place``: ``noise`` is DAMP's own workspace and is overwritten with the result (no fresh
    ``M x weight`` allocation per layer and step: on CPU, first-touch page faults of those buffers cost
    about as much as drawing the noise).
    """
    w = weight.detach()
    out = noise if in_place else None
    return torch.addcmul(w.expand_as(noise), noise, w * sigma, out=out)


class _SubBatchConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, noise, sigma, release, stride, padding, dilation, groups):  # type: ignore[override]
        weights = _perturb(weight, noise, sigma, in_place=release is not None)
        conv = (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 3]
        per = _split(x, len(weights))
        y = torch.cat([conv(c, w, bias, stride, padding, dilation, groups) for c, w in zip(x.split(per), weights)])
        ctx.save_for_backward(x, weight, weights)
        ctx.conf = (stride, padding, dilation, groups, None if bias is None else list(bias.shape))
        ctx.release = release
        return y

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, weight, weights = ctx.saved_tensors
        stride, padding, dilation, groups, bias_sizes = ctx.conf
        zeros = [0] * (x.dim() - 2)

        def conv_backward(g, inp, w, mask):
            return torch.ops.aten.convolution_backward(
                g, inp, w, bias_sizes, stride, padding, dilation, False, zeros, groups, mask
            )

        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            per = x.shape[0] // len(weights)
            grad_x = torch.cat(
                [
                    conv_backward(g.contiguous(), c, w, [True, False, False])[0]
                    for g, c, w in zip(grad.split(per), x.split(per), weights)
                ]
            )
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            mask = [False, ctx.needs_input_grad[1], bias_sizes is not None and ctx.needs_input_grad[2]]
            _, grad_w, grad_b = conv_backward(grad.contiguous(), x, weight, mask)
        _release(ctx)
        return grad_x, grad_w, grad_b, None, None, None, None, None, None, None


class _SubBatchLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, noise, sigma, release):  # type: ignore[override]
        weights = _perturb(weight, noise, sigma, in_place=release is not None)  # (M, out, in)
        m = weights.shape[0]
        _split(x, m)
        xs = x.reshape(m, -1, x.shape[-1])
        y = torch.bmm(xs, weights.transpose(1, 2)) if bias is None else torch.baddbmm(bias, xs, weights.transpose(1, 2))
        ctx.save_for_backward(x, weights)
        ctx.has_bias = bias is not None
        ctx.release = release
        return y.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, weights = ctx.saved_tensors
        m = weights.shape[0]
        g = grad.reshape(m, -1, grad.shape[-1])
        grad_x = torch.bmm(g, weights).reshape(x.shape) if ctx.needs_input_grad[0] else None
        g2 = grad.reshape(-1, grad.shape[-1])
        grad_w = g2.t().mm(x.reshape(-1, x.shape[-1])) if ctx.needs_input_grad[1] else None
        grad_b = g2.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        _release(ctx)
        return grad_x, grad_w, grad_b, None, None, None


def _release(ctx) -> None:  # noqa: ANN001 - an autograd context
    """Hand the workspace buffer back to DAMP once the backward no longer needs it."""
    if ctx.release is not None:
        ctx.release()
        ctx.release = None


def _apply_releasing(function: type[torch.autograd.Function], release, *args) -> torch.Tensor:  # noqa: ANN001
    """``function.apply(*args)``; when no backward will run (no autograd graph), release the workspace now."""
    y = function.apply(*args)
    if release is not None and y.grad_fn is None:
        release()
    return y


def _conv_forward(module: _ConvNd, noise: torch.Tensor, sigma: float, release, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    padding = module.padding
    if module.padding_mode != "zeros" or isinstance(padding, str):
        # Pad explicitly (autograd handles it), then convolve unpadded: same as nn.ConvNd's own path.
        mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
        x = F.pad(x, module._reversed_padding_repeated_twice, mode=mode)
        padding = (0,) * (x.dim() - 2)
    return _apply_releasing(
        _SubBatchConv, release,
        x, module.weight, module.bias, noise, sigma, release, module.stride, padding, module.dilation, module.groups,
    )  # fmt: skip


def _linear_forward(module: nn.Linear, noise: torch.Tensor, sigma: float, release, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    return _apply_releasing(_SubBatchLinear, release, x, module.weight, module.bias, noise, sigma, release)


def _gamma(module: nn.Module, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    # Value w * (1 + sigma z); derivative w.r.t. w is the identity (gradient at the perturbed point).
    w = module.weight
    return torch.addcmul(w, noise, w.detach() * sigma)


def _affine_per_subbatch(
    x_hat: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, channel_dim: int
) -> torch.Tensor:
    """``x_hat * gamma_m + beta`` with gamma per sub-batch along ``channel_dim`` of the un-split tensor."""
    m = weight.shape[0]
    per = _split(x_hat, m)
    xs = x_hat.reshape(m, per, *x_hat.shape[1:])
    # gamma_m has the shape of the normalised dims: place it at channel_dim (shifted by the new M axis).
    trailing = x_hat.dim() - channel_dim - weight.dim() + 1
    shape = (m, 1, *([1] * (channel_dim - 1)), *weight.shape[1:], *([1] * trailing))
    y = xs * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape[2:])
    return y.reshape(x_hat.shape)


class _SubBatchBatchNorm(torch.autograd.Function):
    """Training-mode BatchNorm with whole-batch statistics and a perturbed gamma per sub-batch.

    Fused kernels throughout: ``native_batch_norm`` without affine for the whole batch, one ``addcmul`` for
    the sub-batch affine; backward reduces ``grad`` and ``grad * x_hat`` per sub-batch in one pass (the gamma and
    beta gradients, and everything the input gradient needs) and forms the input gradient in two fused passes.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, noise, sigma, running_mean, running_var, momentum, eps):  # type: ignore[override]
        m = noise.shape[0]
        per = _split(x, m)
        x_hat, mean, invstd = torch.ops.aten.native_batch_norm(
            x, None, None, running_mean, running_var, True, momentum, eps
        )
        gamma = torch.addcmul(weight, noise, weight * sigma)  # (M, C)
        shape = (m, 1, x.shape[1]) + (1,) * (x.dim() - 2)
        # The affine overwrites x_hat through a (M, B/M, ...) view (the backward recomputes x_hat from x):
        # no second activation-sized allocation. x_hat itself is returned, not the view (a returned view
        # would break a following in-place ReLU).
        xs = x_hat.view(m, per, *x.shape[1:])
        if bias is None:
            xs.mul_(gamma.reshape(shape))
        else:
            torch.addcmul(bias.reshape(shape[2:]), xs, gamma.reshape(shape), out=xs)
        ctx.save_for_backward(x, gamma, mean, invstd)
        ctx.eps, ctx.has_bias = eps, bias is not None
        return x_hat

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, gamma, mean, invstd = ctx.saved_tensors
        m = gamma.shape[0]
        per = x.shape[0] // m
        grad = grad.contiguous()
        # One reduction pass: per sub-batch, sum(grad) and sum(grad * x_hat) per channel (x_hat from x and the
        # whole-batch statistics). They are the gamma / beta gradients, and they give the two whole-batch means
        # that BN's input gradient needs, since grad_x_hat = grad * gamma_m is linear in grad per sub-batch.
        parts = [
            torch.ops.aten.native_batch_norm_backward(
                g, c, None, None, None, mean, invstd, True, ctx.eps, [False, True, True]
            )
            for g, c in zip(grad.split(per), x.split(per))
        ]
        sum_gx = torch.stack([p[1] for p in parts])  # (M, C): sum over sub-batch m of grad * x_hat
        sum_g = torch.stack([p[2] for p in parts])  # (M, C): sum over sub-batch m of grad
        grad_w = sum_gx.sum(0) if ctx.needs_input_grad[1] else None
        grad_b = sum_g.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            # grad_x = invstd * (gamma_m grad - mean(grad_x_hat) - x_hat mean(grad_x_hat x_hat)), written as
            # a_m * grad + b * x + c: two fused passes instead of materialising grad_x_hat.
            n = x.numel() // x.shape[1]
            mean_gxh = (gamma * sum_g).sum(0) / n
            mean_gxh_xh = (gamma * sum_gx).sum(0) / n
            b = -mean_gxh_xh * invstd * invstd
            c = -invstd * mean_gxh - b * mean
            spatial = (1,) * (x.dim() - 2)
            grad_x = torch.addcmul(c.reshape(-1, *spatial), x, b.reshape(-1, *spatial))
            a = (gamma * invstd).reshape(m, 1, x.shape[1], *spatial)
            grad_x.view(m, per, *x.shape[1:]).addcmul_(grad.view(m, per, *x.shape[1:]), a)
        return grad_x, grad_w, grad_b, None, None, None, None, None, None


def _batch_norm_forward(module: _BatchNorm, noise: torch.Tensor, sigma: float, x: torch.Tensor) -> torch.Tensor:
    module._check_input_dim(x)
    # Same bookkeeping as nn.BatchNorm's forward: momentum / cumulative average, num_batches_tracked.
    momentum = 0.0 if module.momentum is None else module.momentum
    if module.training and module.track_running_stats and module.num_batches_tracked is not None:
        module.num_batches_tracked.add_(1)
        momentum = 1.0 / float(module.num_batches_tracked) if module.momentum is None else module.momentum
    use_batch_stats = module.training or (module.running_mean is None and module.running_var is None)
    tracked = not module.training or module.track_running_stats
    running_mean = module.running_mean if tracked else None
    running_var = module.running_var if tracked else None
    if use_batch_stats:
        return _SubBatchBatchNorm.apply(
            x, module.weight, module.bias, noise, sigma, running_mean, running_var, momentum, module.eps
        )
    # Eval mode: fixed running statistics, so a plain composition is exact and cheap enough.
    x_hat = F.batch_norm(x, running_mean, running_var, None, None, False, momentum, module.eps)
    return _affine_per_subbatch(x_hat, _gamma(module, noise, sigma), module.bias, channel_dim=1)


def _layer_norm_forward(module: nn.LayerNorm, noise: torch.Tensor, sigma: float, x: torch.Tensor) -> torch.Tensor:
    x_hat = F.layer_norm(x, module.normalized_shape, None, None, module.eps)
    gamma = _gamma(module, noise, sigma)
    return _affine_per_subbatch(x_hat, gamma, module.bias, channel_dim=x.dim() - len(module.normalized_shape))


def _group_norm_forward(module: nn.GroupNorm, noise: torch.Tensor, sigma: float, x: torch.Tensor) -> torch.Tensor:
    x_hat = F.group_norm(x, module.num_groups, None, None, module.eps)
    return _affine_per_subbatch(x_hat, _gamma(module, noise, sigma), module.bias, channel_dim=1)


def _subbatch_forward(module: nn.Module):  # noqa: ANN202 - returns one of the forwards above
    if isinstance(module, _ConvNd):
        return _conv_forward
    if isinstance(module, nn.Linear):
        return _linear_forward
    if isinstance(module, _BatchNorm):
        return _batch_norm_forward
    if isinstance(module, nn.LayerNorm):
        return _layer_norm_forward
    return _group_norm_forward


class DAMP:
    """Random multiplicative weight perturbations per sub-batch, as a drop-in for ``model(x)`` in training.

    Args:
        sigma: standard deviation of ``xi ~ N(1, sigma^2)`` (>= 0; 0.1-0.25 in the paper's settings).
        num_subbatches: ``M``, the number of sub-batches per (per-process) batch; the batch size must be a
            multiple of it.
        generator: optional ``torch.Generator`` on the model's device for the noise (its state is what a
            checkpoint saves to make a resumed run identical); ``None`` uses torch's global RNG.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> damp = DAMP(sigma=0.2, num_subbatches=4)
        >>> x, y = torch.rand(8, 3, 2, 2), torch.randint(0, 3, (8,))
        >>> F.cross_entropy(damp.forward(model, x), y).backward()  # grads at the perturbed weights
        >>> model[1].weight.grad.shape
        torch.Size([3, 12])
    """

    def __init__(self, sigma: float = 0.2, num_subbatches: int = 8, generator: torch.Generator | None = None):
        self.sigma = check_number(sigma, "DAMP sigma", minimum=0.0)
        self.num_subbatches = check_count(num_subbatches, "DAMP num_subbatches", minimum=1)
        self.generator = generator
        # Per-weight (M, *weight.shape) buffers reused from step to step for conv / linear noise. A buffer
        # is taken out while a forward's autograd graph holds it and put back by that graph's backward, so
        # a second forward before the first backward gets a fresh buffer (never a shared one).
        self._workspace: dict[str, torch.Tensor] = {}

    def _draw_into_workspace(self, key: str, weight: torch.Tensor) -> tuple[torch.Tensor, Callable[[], None]]:
        shape = (self.num_subbatches, *weight.shape)
        buffer = self._workspace.pop(key, None)
        if buffer is None or buffer.shape != shape or buffer.dtype != weight.dtype or buffer.device != weight.device:
            buffer = torch.empty(shape, dtype=weight.dtype, device=weight.device)
        standard_normal_(buffer, self.generator)  # the same stream as sample_noise

        def release() -> None:
            self._workspace[key] = buffer

        return buffer, release

    def release_workspace(self) -> None:
        """Free the reused noise buffers (``M`` x the perturbed weights' size); they come back on the next step."""
        self._workspace.clear()

    def sample_noise(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Draw ``z ~ N(0, I)`` of shape ``(M, *weight.shape)`` for every perturbed weight, keyed by name.

        ``xi = 1 + sigma * z``. Exposed so that tests (and users) can inspect or replay the draw.
        """
        noise = {}
        for name in damp_parameter_names(model):
            weight = model.get_parameter(name)
            z = torch.empty((self.num_subbatches, *weight.shape), device=weight.device, dtype=weight.dtype)
            noise[name] = standard_normal_(z, self.generator)
        return noise

    @contextlib.contextmanager
    def perturbed(self, model: nn.Module, noise: dict[str, torch.Tensor] | None = None) -> Iterator[None]:
        """Context in which ``model(x)`` runs sub-batch ``m`` of ``x`` with weights ``w * (1 + sigma z_m)``.

        Args:
            model: the model (or a ``DistributedDataParallel`` wrapper of it).
            noise: ``z`` per weight name as from :meth:`sample_noise` (names relative to ``model``); drawn
                fresh when ``None``.
        """
        patched = []
        try:
            # Draw in the order of damp_parameter_names: the same stream as sample_noise.
            for name, module in perturbable_modules(model):
                key = f"{name}.weight" if name else "weight"
                forward = _subbatch_forward(module)
                reusable = isinstance(module, (_ConvNd, nn.Linear))
                if noise is not None:
                    z, release = noise[key], None  # the caller's tensors are never overwritten
                elif reusable:
                    z, release = self._draw_into_workspace(key, module.weight)
                else:  # norm scales: small, and their noise is not kept by the backward
                    z = torch.empty(
                        (self.num_subbatches, *module.weight.shape), device=module.weight.device,
                        dtype=module.weight.dtype,
                    )  # fmt: skip
                    standard_normal_(z, self.generator)
                if reusable:
                    module.forward = functools.partial(forward, module, z, self.sigma, release)
                else:
                    module.forward = functools.partial(forward, module, z, self.sigma)
                patched.append(module)
            yield
        finally:
            for module in patched:
                del module.forward  # back to the class's forward

    def forward(self, model: nn.Module, x: torch.Tensor, noise: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``model(x)`` with fresh per-sub-batch perturbed weights (one pass; whole-batch BN statistics)."""
        with self.perturbed(model, noise):
            return model(x)

    def __repr__(self) -> str:
        return f"DAMP(sigma={self.sigma}, num_subbatches={self.num_subbatches})"
