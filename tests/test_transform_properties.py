"""Properties of every registered noise / frequency transform on any image hypothesis draws.

GaussianNoise, SpeckleNoise, AdversarialNoise (ANT), FourierNoise (AFA) and DFMX (DFM-X), over batch sizes,
channel counts, odd and non-square sizes, uint8 / float32 / float64 and both gate extremes: the output keeps
the input's shape, dtype and valid range, the input is never modified, a replay with the stored parameters
gives the same output, ``p=0`` is the identity, and the per-sample draw differs between samples. (The
corruptions have their own properties in ``test_properties.py``; the contract suite fixes one 32x32 size.)
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from augrobust.transforms.registry import transform_registry

ENTRIES = {
    label: entry
    for label, entry in transform_registry().items()
    if not label.startswith("Corruption[") and label != "RandomCorruption"
}


def _images(batch: int, channels: int, height: int, width: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, channels, height, width, generator=gen, dtype=torch.float64)
    return (x * 255).floor().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)


@pytest.mark.parametrize("label", sorted(ENTRIES))
@settings(max_examples=15, deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.sampled_from([1, 3]),
    height=st.integers(8, 40),
    width=st.integers(8, 40),
    dtype=st.sampled_from([torch.uint8, torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_any_image_keeps_shape_dtype_range_and_replays(label, batch, channels, height, width, dtype, seed):
    entry = ENTRIES[label]
    x = _images(batch, channels, height, width, dtype, seed)
    before = x.clone()
    aug = entry.build(x.shape, seed=seed)
    y = aug(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(x, before)
    if dtype != torch.uint8:
        assert bool(((y >= 0) & (y <= 1)).all()) and bool(torch.isfinite(y).all())
    assert torch.equal(aug(x, params=aug._params), y)
    assert torch.equal(entry.build(x.shape, seed=seed, p=0.0)(x), x)


@pytest.mark.parametrize("label", sorted(ENTRIES))
def test_each_sample_gets_its_own_draw(label):
    """The same image repeated over a batch comes out different per sample (at p = 1)."""
    entry = ENTRIES[label]
    x = _images(1, 3, 24, 20, torch.float32, 0).expand(8, -1, -1, -1).contiguous()
    y = entry.build(x.shape, seed=1, p=1.0)(x)
    distinct = {tuple(row.flatten().tolist()) for row in y}
    assert len(distinct) > 1
