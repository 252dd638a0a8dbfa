"""torch.compile(fullgraph=True) over every registered transform and every corruption kernel.

Each case draws its parameters eagerly, then compiles the deterministic apply step
(``RobustAugmentation.apply_drawn`` for a registry entry, ``CorruptionSpec.apply`` for a kernel) as one graph
and compares it with eager mode: within 1e-6 in float, exactly where the kernel quantises (uint8 levels).
The exceptions live in one place, ``augrobust.functional.sync.COMPILE_EXCEPTIONS``, with their reasons; a test
checks each one still fails to compile, so the list can only shrink.

The capture test uses the ``aot_eager`` backend (dynamo's one-graph capture and AOT functionalisation, run
eagerly: seconds per case); a slow test runs the default Inductor backend on a subset of every family.
"""

from __future__ import annotations

import pytest
import torch

from augrobust.corruptions import get_spec, registered_names
from augrobust.functional.sync import COMPILE_EXCEPTIONS
from augrobust.transforms.registry import transform_registry

REGISTRY = transform_registry()
KERNELS = [f"kernel:{name}" for name in registered_names()]
CASES = [*REGISTRY, *KERNELS]
SIDE = 32


def _registry_case(label: str, dtype: torch.dtype):
    entry = REGISTRY[label]
    x = torch.rand(3, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(0), dtype=dtype)
    overrides = {"p": 0.5} if "p" in entry.cls._valid_kwargs() else {}
    aug = entry.build(x.shape, **overrides)
    params = aug.draw(x, generator=torch.Generator().manual_seed(1))
    exact = not aug.differentiable
    return aug.apply_drawn, (x, params), exact


def _kernel_case(label: str, dtype: torch.dtype):
    spec = get_spec(label.split(":", 1)[1])
    side = max(SIDE, spec.min_size)
    x = torch.rand(3, 3, side, side, generator=torch.Generator().manual_seed(0), dtype=dtype)
    severity = torch.tensor([1, 3, 5])  # mixed severities: the grouped eager paths and the sync-free ones
    params = spec.sample(
        x.shape, severity, preset="imagenet", reference="imagecorruptions", generator=torch.Generator().manual_seed(1)
    )

    def apply(image: torch.Tensor, sev: torch.Tensor, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        return spec.apply(image, sev, fields, preset="imagenet", reference="imagecorruptions")

    return apply, (x, severity, params), not spec.differentiable


def _case(label: str, dtype: torch.dtype = torch.float32):
    return _kernel_case(label, dtype) if label.startswith("kernel:") else _registry_case(label, dtype)


def _compare(label: str, backend: str, dtype: torch.dtype = torch.float32) -> None:
    torch._dynamo.reset()
    fn, args, exact = _case(label, dtype)
    want = fn(*args)
    got = torch.compile(fn, fullgraph=True, backend=backend)(*args)
    assert got.shape == want.shape and got.dtype == want.dtype, label
    if exact:  # quantised kernels: the same uint8 levels
        assert torch.equal(got, want), f"{label}: max diff {(got - want).abs().max().item()}"
    else:
        torch.testing.assert_close(got, want, rtol=0.0, atol=1e-6, msg=lambda m: f"{label}: {m}")


def test_registry_and_kernels_are_all_covered() -> None:
    assert len(REGISTRY) == 28 and len(KERNELS) == 19
    assert set(COMPILE_EXCEPTIONS) <= set(CASES), set(COMPILE_EXCEPTIONS) - set(CASES)
    assert sum(label in COMPILE_EXCEPTIONS for label in REGISTRY) <= 4  # the goal
    assert all(len(reason) > 40 for reason in COMPILE_EXCEPTIONS.values())  # a reason, not a placeholder


@pytest.mark.parametrize("label", [c for c in CASES if c not in COMPILE_EXCEPTIONS])
def test_compiles_as_one_graph_and_equals_eager(label: str) -> None:
    _compare(label, "aot_eager")


@pytest.mark.parametrize("label", [c for c in KERNELS if c not in COMPILE_EXCEPTIONS])
def test_float64_kernels_compile_and_equal_eager(label: str) -> None:
    """float64 is the bit-exact fidelity path: compiled, it must still give the eager values."""
    _compare(label, "aot_eager", torch.float64)


@pytest.mark.parametrize("label", sorted(COMPILE_EXCEPTIONS))
def test_listed_exceptions_still_fail(label: str) -> None:
    """An exception that compiles now must leave the list (it may only shrink)."""
    torch._dynamo.reset()
    fn, args, _ = _case(label)
    with pytest.raises(Exception) as info:  # dynamo's Unsupported / UserError / data-dependent guard errors
        torch.compile(fn, fullgraph=True, backend="aot_eager")(*args)
    assert type(info.value).__module__.startswith("torch"), repr(info.value)


INDUCTOR = ["GaussianNoise[eps]", "AdversarialNoise", "FourierNoise", "DFMX", "Corruption[glass_blur]",
            "kernel:zoom_blur", "kernel:shot_noise", "kernel:pixelate", "kernel:fog"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("label", INDUCTOR)
def test_inductor_equals_eager(label: str) -> None:
    """Inductor's generated C++ on the CPU (the default backend), one representative per family."""
    _compare(label, "inductor")


@pytest.mark.parametrize("name", ["zoom_blur", "pixelate", "snow", "spatter", "shot_noise", "glass_blur"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sync_free_eager_paths_equal_the_grouped_ones(name: str, dtype: torch.dtype, monkeypatch) -> None:
    """What an accelerator runs in eager mode (host_reads_ok false, not compiling), here on the CPU: the same values."""
    import importlib

    fn, args, _ = _kernel_case(f"kernel:{name}", dtype)
    want = fn(*args)
    module = importlib.import_module(f"augrobust.corruptions.{name}")
    monkeypatch.setattr(module, "host_reads_ok", lambda device: False)
    got = fn(*args)
    assert torch.equal(got, want), f"{name}: max diff {(got - want).abs().max().item()}"
