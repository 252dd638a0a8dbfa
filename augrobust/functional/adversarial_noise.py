"""Adversarial noise (ANT, "Game of Noise", Rusak et al. ECCV 2020): the noise generator and the L2 projection.

ANT replaces GNT's Gaussian noise by the output of a tiny convolutional *noise generator* that is trained to
fool the classifier. The generator never sees the image: it maps a spatially i.i.d. Gaussian latent to a noise
direction, which is then rescaled per image so that the clipped perturbation has a fixed L2 norm ``eps``
(:func:`project_l2`, via the clipping-aware :func:`augrobust.functional.calibrate_l2`).

* :class:`NoiseGenerator`: the reference's generator (conv 1x1 -> conv kxk -> conv 1x1 -> conv 1x1 with ReLUs,
  20 hidden channels, plus the latent as a residual). ``kernel_size=3`` is the "ANT 3x3" variant (locally
  correlated noise), ``kernel_size=1`` "ANT 1x1" (noise i.i.d. across pixels, correlated across channels).
* :func:`project_l2`: ``clip(x + s * direction, 0, 1)`` with ``||result - x||_2 = eps`` per image,
  differentiable w.r.t. the direction (the generator is trained through it, as in the reference).
* :func:`sample_adversarial_noise` / :func:`apply_adversarial_noise`: the sampler (latent, eps, which
  generator of a list) and the deterministic kernel behind :class:`augrobust.AdversarialNoise`.

The generator lives here, in the functional layer, rather than in ``augrobust.train``: both the transform
(frozen generators as an augmentation) and the ``ant`` training method need it, and transforms must not
depend on the trainer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.noise import Strength, calibrate_l2, parse_strength
from augrobust.functional.precision import autocast_exempt

__all__ = [
    "NoiseGenerator",
    "apply_adversarial_noise",
    "generator_directions",
    "project_l2",
    "sample_adversarial_noise",
]

#: Hidden width of the reference generator.
_HIDDEN = 20
#: The reference's "custom init": conv weights N(0, 0.01^2), biases 0, so the first output is ~ the latent.
_INIT_STD = 0.01


class NoiseGenerator(nn.Module):
    """The ANT noise generator: latent ``z ~ N(0, I)`` -> noise direction of shape ``(B, C, H, W)``.

    Layers as in the reference (``Networks/generators.py``): conv 1x1 ``C -> 20``, ReLU, conv ``k x k``
    ``20 -> 20`` without padding, ReLU, conv 1x1 ``20 -> 20``, ReLU, conv 1x1 ``20 -> C``, plus the (centre
    cropped) latent as a residual. The latent is spatially i.i.d. and the receptive field is ``k x k``, so the
    noise is local and the generator works at any image size: the latent has ``margin = k // 2`` extra pixels
    on each side (:meth:`latent_shape`) so that the unpadded ``k x k`` conv returns exactly ``H x W``.

    Initialisation is the reference's: every conv weight ``N(0, init_std^2)`` and bias 0, so a fresh
    generator outputs (almost exactly) its latent, i.e. plain Gaussian noise.

    Args:
        channels: image channels ``C`` (3 for RGB).
        kernel_size: odd size of the middle conv: 3 for "ANT 3x3" (default, the leaderboard entry), 1 for the
            reference's default "ANT 1x1".
        hidden: hidden channels (20 in the reference).
        init_std: standard deviation of the initial conv weights (0.01 in the reference).
        seed: seed for the initial weights (``None``: torch's global RNG).

    Example:
        >>> gen = NoiseGenerator(3, kernel_size=3, seed=0)
        >>> z = gen.sample_latent((2, 3, 10, 12), generator=torch.Generator().manual_seed(0))
        >>> tuple(z.shape), tuple(gen(z).shape)
        ((2, 3, 12, 14), (2, 3, 10, 12))
        >>> sum(p.numel() for p in gen.parameters())  # the reference's ANT 3x3 size
        4183
    """

    def __init__(
        self,
        channels: int = 3,
        *,
        kernel_size: int = 3,
        hidden: int = _HIDDEN,
        init_std: float = _INIT_STD,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("kernel_size", kernel_size), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AugrobustValueError(f"NoiseGenerator {name} must be a positive int, got {value!r}.")
        if kernel_size % 2 == 0:
            raise AugrobustValueError(
                f"NoiseGenerator kernel_size must be odd (1 or 3 in the reference), got {kernel_size}."
            )
        if isinstance(init_std, bool) or not isinstance(init_std, (int, float)) or init_std < 0:
            raise AugrobustValueError(f"NoiseGenerator init_std must be a number >= 0, got {init_std!r}.")
        self.channels, self.kernel_size, self.hidden = channels, kernel_size, hidden
        self.init_std = float(init_std)
        self.margin = kernel_size // 2
        # Built on the meta device (no storage, no draw): torch's default conv init would consume the global
        # RNG, so a generator built only to receive a saved state would shift every later draw of a resumed run.
        self.layers = nn.ModuleList(
            [
                nn.Conv2d(channels, hidden, 1, device="meta"),
                nn.Conv2d(hidden, hidden, kernel_size, device="meta"),
                nn.Conv2d(hidden, hidden, 1, device="meta"),
                nn.Conv2d(hidden, channels, 1, device="meta"),
            ]
        ).to_empty(device="cpu")
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | None = None) -> None:
        """Re-draw the reference initialisation (weights ``N(0, init_std^2)``, biases 0) in place."""
        gen = None if seed is None else torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for conv in self.layers:
                weight = torch.randn(conv.weight.shape, generator=gen, dtype=torch.float32) * self.init_std
                conv.weight.copy_(weight)  # drawn on the CPU: the same weights on every device
                conv.bias.zero_()

    def latent_shape(self, shape: Sequence[int]) -> tuple[int, int, int, int]:
        """Latent shape for an image batch ``(B, C, H, W)``: ``(B, C, H + 2 margin, W + 2 margin)``."""
        b, c, h, w = (int(s) for s in shape)
        if c != self.channels:
            raise AugrobustValueError(
                f"this NoiseGenerator makes {self.channels}-channel noise but the images have {c} channels; "
                f"build NoiseGenerator({c}, ...) for them."
            )
        return (b, c, h + 2 * self.margin, w + 2 * self.margin)

    def sample_latent(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Draw the latent ``z ~ N(0, I)`` for an image batch of ``shape`` (``(B, C, H, W)``)."""
        return torch.randn(self.latent_shape(shape), generator=generator, device=device, dtype=dtype)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """The noise direction for ``latent`` (``(B, C, H + 2m, W + 2m)`` -> ``(B, C, H, W)``)."""
        return _generator_forward(latent, [(c.weight, c.bias) for c in self.layers], self.margin)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}, hidden={self.hidden}"


def _check_latent(latent: torch.Tensor, margin: int) -> None:
    if latent.ndim != 4:
        raise AugrobustValueError(f"the latent must be (B, C, H, W), got shape {tuple(latent.shape)}.")
    if latent.shape[-1] <= 2 * margin or latent.shape[-2] <= 2 * margin:
        raise AugrobustValueError(
            f"the latent {tuple(latent.shape)} is too small for margin {margin}; draw it with "
            "NoiseGenerator.sample_latent(image_shape)."
        )


def _generator_forward(
    latent: torch.Tensor, layers: Sequence[tuple[torch.Tensor, torch.Tensor]], margin: int
) -> torch.Tensor:
    """The generator's computation on explicit weights (so the transform can run it on detached copies)."""
    _check_latent(latent, margin)
    # channels_last: the 20-channel 1x1 convs become plain matrix products over pixels (2.6x faster on the CPU
    # than NCHW at 224 px; cuDNN has NHWC kernels too).
    h = latent.contiguous(memory_format=torch.channels_last)
    for i, (weight, bias) in enumerate(layers):
        h = F.conv2d(h, weight.to(latent.dtype), bias.to(latent.dtype))
        if i < len(layers) - 1:
            h = F.relu_(h) if not torch.is_grad_enabled() else F.relu(h)
    residual = latent[..., margin : latent.shape[-2] - margin, margin : latent.shape[-1] - margin]
    return (h + residual).contiguous()


def _grouped_forward(latent: torch.Tensor, index: torch.Tensor, generators: Sequence[NoiseGenerator]) -> torch.Tensor:
    """Each sample through its own generator (``index``) in one pass: the generators' weights are stacked,
    gathered per sample and run as one grouped convolution over the batch (groups = B), so the cost is one
    generator per sample, whatever the number of generators, and no sample-dependent host-side split."""
    b = latent.shape[0]
    margin = generators[0].margin
    out_h, out_w = latent.shape[-2] - 2 * margin, latent.shape[-1] - 2 * margin
    h = latent.reshape(1, b * latent.shape[1], *latent.shape[-2:]).contiguous(memory_format=torch.channels_last)
    depth = len(generators[0].layers)
    for i in range(depth):
        weight = torch.stack([g.layers[i].weight.detach() for g in generators]).to(latent)[index]
        bias = torch.stack([g.layers[i].bias.detach() for g in generators]).to(latent)[index]
        h = F.conv2d(h, weight.reshape(-1, *weight.shape[2:]), bias.reshape(-1), groups=b)
        if i < depth - 1:
            h = F.relu(h)
    residual = latent[..., margin : margin + out_h, margin : margin + out_w]
    return (h.reshape(b, -1, out_h, out_w) + residual).contiguous()


def _check_generators(generators: Sequence[NoiseGenerator]) -> None:
    if not generators:
        raise AugrobustValueError("at least one NoiseGenerator is needed.")
    first = generators[0]
    for g in generators:
        if not isinstance(g, NoiseGenerator):
            raise AugrobustTypeError(f"expected NoiseGenerator instances, got {type(g).__name__}.")
        if (g.channels, g.kernel_size, g.hidden) != (first.channels, first.kernel_size, first.hidden):
            raise AugrobustValueError(
                "all generators of a list must share channels, kernel_size and hidden; got "
                f"{[(x.channels, x.kernel_size, x.hidden) for x in generators]}."
            )


def generator_directions(
    latent: torch.Tensor,
    generators: NoiseGenerator | Sequence[NoiseGenerator],
    index: torch.Tensor | None = None,
    *,
    detach: bool = True,
) -> torch.Tensor:
    """Noise directions from one generator, or from a list with generator ``index[i]`` for sample ``i``.

    Args:
        latent: ``(B, C, H + 2m, W + 2m)`` from :meth:`NoiseGenerator.sample_latent`.
        generators: one generator or a list sharing one architecture.
        index: ``(B,)`` int64, which generator each sample uses (needed for a list of more than one).
        detach: run on detached weights (default), so no gradient reaches the generators; ``False`` (one
            generator only) keeps them in the graph, e.g. to train a generator.

    Returns:
        ``(B, C, H, W)`` directions in the latent's dtype (float32 for a half-precision latent).

    Example:
        >>> gens = [NoiseGenerator(3, seed=s) for s in range(2)]
        >>> z = gens[0].sample_latent((4, 3, 8, 8))
        >>> generator_directions(z, gens, torch.tensor([0, 1, 1, 0])).shape
        torch.Size([4, 3, 8, 8])
    """
    gens = [generators] if isinstance(generators, NoiseGenerator) else list(generators)
    _check_generators(gens)
    work = torch.promote_types(latent.dtype, torch.float32)
    latent = latent.to(work)
    if len(gens) == 1:
        layers = [(c.weight, c.bias) for c in gens[0].layers]
        if detach:
            layers = [(w.detach(), b.detach()) for w, b in layers]
        return _generator_forward(latent, layers, gens[0].margin)
    if not detach:
        raise AugrobustValueError("detach=False is supported for a single generator only.")
    if index is None:
        raise AugrobustValueError(f"with {len(gens)} generators, pass index (which generator each sample uses).")
    _check_latent(latent, gens[0].margin)
    if latent.shape[0] == 0:
        return _generator_forward(latent, [(c.weight.detach(), c.bias.detach()) for c in gens[0].layers], gens[0].margin)
    return _grouped_forward(latent, index.to(device=latent.device, dtype=torch.long), gens)


@autocast_exempt
def project_l2(x: torch.Tensor, direction: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """``clip(x + s * direction, 0, 1)`` with ``s`` per image such that ``||result - x||_2 = eps``.

    The clipping-aware rescaling of the reference's ``fix_perturbation_size`` (Rauber & Bethge 2020), done by
    :func:`augrobust.functional.calibrate_l2`. Like the reference, the scale is a function of the direction
    and gradients flow through it (the exact derivative of the closed form on the final linear piece), so a
    generator can be trained through the projection. Where ``eps`` cannot be reached inside ``[0, 1]`` every
    moved coordinate is pushed to its bound (the reference's rule too).

    Args:
        x: float images in ``[0, 1]``, ``(B, C, H, W)``.
        direction: same shape, e.g. a generator's output.
        eps: L2 budget, a float or ``(B,)`` tensor, > 0 (135 at 3x224x224 in the reference; in general
            ``augrobust.functional.eps_for_sigma(0.5, (C, H, W))``).

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> y = project_l2(x, torch.randn_like(x), 4.0)
        >>> torch.allclose((y - x).flatten(1).norm(dim=1), torch.tensor(4.0), rtol=1e-4)
        True
    """
    return calibrate_l2(x, direction, eps).image


def sample_adversarial_noise(
    shape: Sequence[int],
    generators: NoiseGenerator | Sequence[NoiseGenerator],
    eps: float | Sequence[float] | Strength,
    *,
    same_on_batch: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Draw the parameters of :func:`apply_adversarial_noise` for a batch of ``shape = (B, C, H, W)``.

    Args:
        shape: batch shape.
        generators: the generator(s) that will be applied (only their latent shape and count are used).
        eps: the L2 budget: a float, a list (one drawn per image) or a ``(min, max)`` range.
        same_on_batch: one draw for the whole batch.
        generator: optional ``torch.Generator`` on ``device`` (the random stream, not a noise generator).
        device: where to draw.
        dtype: dtype of the latent.

    Returns:
        ``{"latent": (B, C, H + 2m, W + 2m), "eps": (B,) float64, "index": (B,) int64}`` (``index``: which
        generator of the list each sample uses, uniform; all zeros for a single generator).

    Example:
        >>> params = sample_adversarial_noise((2, 3, 8, 8), NoiseGenerator(3, seed=0), 5.0)
        >>> sorted(params), tuple(params["latent"].shape)
        (['eps', 'index', 'latent'], (2, 3, 10, 10))
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise AugrobustValueError(f"shape must be (B, C, H, W), got {shape}.")
    gens = [generators] if isinstance(generators, NoiseGenerator) else list(generators)
    _check_generators(gens)
    device = torch.device("cpu") if device is None else torch.device(device)
    batch = shape[0]
    draw = 1 if same_on_batch else batch
    latent_dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    latent = gens[0].sample_latent((draw, *shape[1:]), generator=generator, device=device, dtype=latent_dtype)
    strength = eps if isinstance(eps, Strength) else parse_strength(eps, "eps", positive=True)
    eps_t = strength.sample(draw, generator=generator, device=device)
    if len(gens) > 1:
        index = torch.randint(len(gens), (draw,), generator=generator, device=device)
    else:
        index = torch.zeros(draw, dtype=torch.long, device=device)
    params = {"latent": latent, "eps": eps_t, "index": index}
    if same_on_batch:
        params = {k: v.expand(batch, *v.shape[1:]) for k, v in params.items()}
    return params


@autocast_exempt
def apply_adversarial_noise(
    x: torch.Tensor,
    params: dict[str, torch.Tensor],
    generators: NoiseGenerator | Sequence[NoiseGenerator],
    *,
    detach: bool = True,
) -> torch.Tensor:
    """Run the generator(s) on the drawn latent and project onto the L2 budget: deterministic given params.

    Args:
        x: float images in ``[0, 1]``, ``(B, C, H, W)``.
        params: from :func:`sample_adversarial_noise`.
        generators: the generator(s) the params were drawn for.
        detach: keep the generators out of the autograd graph (default; see :func:`generator_directions`).

    Example:
        >>> gen = NoiseGenerator(3, seed=0)
        >>> x = torch.rand(2, 3, 8, 8)
        >>> y = apply_adversarial_noise(x, sample_adversarial_noise(x.shape, gen, 2.0), gen)
        >>> torch.allclose((y - x).flatten(1).norm(dim=1), torch.tensor(2.0), rtol=1e-4)
        True
    """
    missing = [k for k in ("latent", "eps", "index") if k not in params]
    if missing:
        raise AugrobustValueError(f"params is missing {missing}; it has {sorted(params)}.")
    gens = [generators] if isinstance(generators, NoiseGenerator) else list(generators)
    _check_generators(gens)
    expected = gens[0].latent_shape(x.shape)
    latent = params["latent"].to(x.device)
    if tuple(latent.shape) != expected:
        raise AugrobustValueError(
            f"the latent has shape {tuple(latent.shape)} but this batch of {tuple(x.shape)} needs {expected} "
            "(batch, channel or size mismatch); draw params for this batch."
        )
    direction = generator_directions(latent, gens, params["index"], detach=detach)
    eps = params["eps"].to(device=x.device)
    return project_l2(x, direction, eps)
