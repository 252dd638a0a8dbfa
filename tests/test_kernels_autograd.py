"""Autograd contract of every corruption kernel and every functional kernel.

Each corruption is either differentiable w.r.t. its input with the random draw held fixed (the spec says
``differentiable=True``; ``torch.autograd.gradcheck`` passes in float64, through ``augrobust.corrupt`` with a
freshly seeded generator per call, so every evaluation sees the same draw) or it says ``differentiable=False``
and then still runs on an input that requires grad and returns a result without a graph (a backward pass
fails loudly instead of returning zero gradients). The flag is read from the registry, never hard-coded.
"""

from __future__ import annotations

import pytest
import torch

import augrobust
import augrobust.functional as F
from augrobust.corruptions import CORRUPTION_ORDER, get_spec
from augrobust.functional import color, filters

# These follow the reference's float32 arithmetic even for float64 input (bit-identity with the oracle), so
# a float64 finite difference with gradcheck's default step (1e-6) is float32 rounding noise: they are
# checked with a 1e-3 step and a tolerance of 1e-3 absolute, 1e-2 relative (an error in the gradient,
# e.g. a missing factor or a dropped tap, is far larger).
FLOAT32_INTERNALS = {"zoom_blur", "snow", "elastic_transform", "spatter"}


def _image(name: str, *, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    side = max(12, get_spec(name).min_size)
    g = torch.Generator().manual_seed(seed)
    # Inside (0.1, 0.9): the clips at 0 and 1 are kinks a finite difference must not straddle.
    return (torch.rand(2, 3, side, side, generator=g, dtype=torch.float64) * 0.8 + 0.1).to(dtype)


def _corrupt(name: str, **kw):
    severity = torch.tensor([1, 4])

    def run(x: torch.Tensor) -> torch.Tensor:
        return augrobust.corrupt(x, name, severity, generator=torch.Generator().manual_seed(3), **kw)

    return run


@pytest.mark.parametrize("name", CORRUPTION_ORDER)
def test_corruption_gradcheck_or_honest_no_graph(name: str) -> None:
    spec = get_spec(name)
    run = _corrupt(name)
    x = _image(name).requires_grad_()
    y = run(x)
    if spec.differentiable:
        assert y.requires_grad, f"{name} says differentiable but its output has no graph"
        tol = dict(eps=1e-3, atol=1e-3, rtol=1e-2) if name in FLOAT32_INTERNALS else {}
        assert torch.autograd.gradcheck(run, (x,), fast_mode=True, **tol)
    else:
        assert not y.requires_grad and y.grad_fn is None
        assert torch.equal(y, run(x.detach()))
        with pytest.raises(RuntimeError):
            y.sum().backward()


@pytest.mark.parametrize("name", CORRUPTION_ORDER)
@pytest.mark.parametrize("reference", ["imagecorruptions", "hendrycks"])
def test_float32_requires_grad_runs_and_backward_is_finite(name: str, reference: str) -> None:
    """The float32 fast paths (64 px and up: FFT motion blur, channels_last zoom) on a requires_grad input."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 64, 72, generator=g).requires_grad_()
    run = _corrupt(name, reference=reference)
    y = run(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.detach(), run(x.detach()), rtol=0.0, atol=0.0)  # same values as no-grad
    if y.requires_grad:
        y.square().sum().backward()
        assert x.grad is not None and bool(x.grad.isfinite().all()) and float(x.grad.abs().sum()) > 0
    else:
        # Only the kernels the registry calls non-differentiable, or hendrycks' 8-bit motion blur.
        assert not get_spec(name).differentiable or (name == "motion_blur" and reference == "hendrycks")


def _functional_cases() -> dict[str, object]:
    def seeded() -> torch.Generator:
        return torch.Generator().manual_seed(0)

    gen = F.NoiseGenerator(3, seed=0)
    shape = (2, 3, 10, 10)
    adversarial = F.sample_adversarial_noise(shape, gen, 2.0, generator=seeded())
    adversarial = {k: (v.double() if v.is_floating_point() else v) for k, v in adversarial.items()}
    fourier = F.sample_fourier_noise(shape, generator=seeded())
    direction = torch.randn(shape, generator=seeded(), dtype=torch.float64)
    mask = (torch.rand(10, 10, generator=seeded()) > 0.5).double()
    return {
        "apply_gaussian_noise": lambda x: F.apply_gaussian_noise(x, F.sample_gaussian_noise(
            x.shape, sigma=0.1, generator=seeded(), dtype=x.dtype)),
        "apply_gaussian_noise_eps": lambda x: F.apply_gaussian_noise(x, F.sample_gaussian_noise(
            x.shape, eps=1.5, generator=seeded(), dtype=x.dtype)),
        "apply_speckle_noise": lambda x: F.apply_speckle_noise(x, F.sample_speckle_noise(
            x.shape, generator=seeded(), dtype=x.dtype)),
        "gaussian_noise": lambda x: F.gaussian_noise(x, sigma=0.1, generator=seeded()),
        "gaussian_noise_l2": lambda x: F.gaussian_noise_l2(x, 1.5, generator=seeded()),
        "speckle_noise": lambda x: F.speckle_noise(x, 0.3, generator=seeded()),
        "project_l2": lambda x: F.project_l2(x, direction, 1.5),
        "apply_adversarial_noise": lambda x: F.apply_adversarial_noise(x, adversarial, gen.double()),
        "apply_fourier_noise": lambda x: F.apply_fourier_noise(x, fourier),
        "frequency_mask": lambda x: F.frequency_mask(x, mask),
        "separable_filter_nearest": lambda x: filters.separable_filter_nearest(x, filters.gaussian_kernels([1.0, 2.0])),
        "separable_filter_nearest_matmul": lambda x: filters.separable_filter_nearest(
            x, filters.gaussian_kernels([1.0, 2.0]), method="matmul"),
        "gaussian_blur_nearest": lambda x: filters.gaussian_blur_nearest(x, torch.tensor([0.5, 1.5])),
        "rgb_to_hsv": color.rgb_to_hsv,
        "hsv_to_rgb": color.hsv_to_rgb,
        "adjust_hsv": lambda x: color.adjust_hsv(
            x, saturation_scale=torch.tensor([0.3, 1.5]), value_shift=torch.tensor([0.1, -0.2])),
    }  # fmt: skip


FUNCTIONAL = _functional_cases()


@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_functional_kernel_gradcheck(name: str) -> None:
    fn = FUNCTIONAL[name]
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(2, 3, 10, 10, generator=g, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    y = fn(x)
    assert y.requires_grad
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)


@pytest.mark.parametrize("name", CORRUPTION_ORDER)
@pytest.mark.parametrize("channels", [1, 4])
def test_grayscale_and_rgba_follow_the_flag(name: str, channels: int) -> None:
    """Grayscale (per-channel or via RGB and luma) and RGBA (alpha kept): a graph exactly when differentiable."""
    x = torch.rand(2, channels, 36, 40, generator=torch.Generator().manual_seed(4)).requires_grad_()
    y = _corrupt(name)(x)
    assert y.requires_grad == get_spec(name).differentiable
    if y.requires_grad:
        y.sum().backward()
        assert bool(x.grad[:, : min(channels, 3)].abs().sum() > 0) and bool(x.grad.isfinite().all())
