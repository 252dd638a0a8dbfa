"""torch.compile(fullgraph=True) of the noise kernels on the CPU agrees with eager mode.

The L2 calibration behind GaussianNoise(eps=...) and ANT's projection must trace without graph breaks: no
``out=`` into strided views and no host syncs while compiling (it then runs the accelerators' fixed Newton
schedule, which lands on the same final linear piece as the CPU's early stop).
"""

from __future__ import annotations

import torch

from augrobust._tensor import GATE_KEY
from augrobust.functional import apply_gaussian_noise, project_l2, sample_gaussian_noise


def test_compiled_gaussian_noise_eps_equals_eager() -> None:
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    # 3 x 48 x 48 > 4096 values: the subsampled Newton start runs too; eps 60 saturates the second image.
    x = torch.rand(2, 3, 48, 48, generator=g)
    params = sample_gaussian_noise(x.shape, eps=[4.0, 60.0], p=0.5, generator=g)
    params["eps"] = torch.tensor([4.0, 60.0], dtype=torch.float64)
    params[GATE_KEY] = torch.tensor([1.0, 1.0])  # both images noised
    compiled = torch.compile(apply_gaussian_noise, fullgraph=True)
    got, want = compiled(x, params), apply_gaussian_noise(x, params)
    assert got.dtype == want.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0.0, atol=1e-6)
    assert not torch.equal(want, x)


def test_compiled_ant_projection_equals_eager() -> None:
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 40, 40, generator=g)
    direction = torch.randn(x.shape, generator=g)
    eps = torch.tensor([2.0, 9.0, 500.0])  # the last cannot be reached: every moved value saturates
    compiled = torch.compile(project_l2, fullgraph=True)
    got, want = compiled(x, direction, eps), project_l2(x, direction, eps)
    torch.testing.assert_close(got, want, rtol=0.0, atol=1e-6)
    norms = (want - x).flatten(1).norm(dim=1)
    torch.testing.assert_close(norms[:2], eps[:2], rtol=1e-4, atol=0.0)


def test_compiled_adversarial_noise_kernel_equals_eager() -> None:
    """AdversarialNoise's whole apply step: the noise generator, then the projection."""
    from augrobust.functional import NoiseGenerator, apply_adversarial_noise, sample_adversarial_noise

    torch._dynamo.reset()
    gen = NoiseGenerator(3, seed=0)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    params = sample_adversarial_noise(x.shape, gen, [3.0, 6.0], generator=torch.Generator().manual_seed(3))
    compiled = torch.compile(lambda image, p: apply_adversarial_noise(image, p, gen), fullgraph=True)
    got, want = compiled(x, params), apply_adversarial_noise(x, params, gen)
    torch.testing.assert_close(got, want, rtol=0.0, atol=1e-6)
    torch.testing.assert_close((want - x).flatten(1).norm(dim=1), params["eps"].float(), rtol=1e-4, atol=0.0)
