"""Properties every corruption must have, for arbitrary shapes, channels, dtypes and severities."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import augrobust
from augrobust.corruptions import PRESETS, REFERENCES, get_spec, registered_names

NAMES = list(registered_names())


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.integers(1, 3),
    channels=st.sampled_from([1, 3, 4]),
    height=st.integers(0, 40),
    width=st.integers(0, 40),
    severity=st.lists(st.integers(1, 5), min_size=3, max_size=3),
    uint8=st.booleans(),
    preset=st.sampled_from(PRESETS),
    reference=st.sampled_from(REFERENCES),
    seed=st.integers(0, 2**31),
)
def test_any_shape_channels_dtype_severity_keeps_shape_dtype_and_range(
    name, batch, channels, height, width, severity, uint8, preset, reference, seed
):
    spec = get_spec(name)
    height, width = max(height, spec.min_size), max(width, spec.min_size)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, channels, height, width, generator=g)
    if uint8:
        x = (x * 255).to(torch.uint8)
    sev = torch.tensor(severity[:batch])
    try:
        y = augrobust.corrupt(x, name, sev, preset=preset, reference=reference, generator=g)
    except augrobust.AugrobustError as exc:
        # The one documented limit: the original scripts' fixed-size maps (hendrycks fog, frost crops).
        assert reference == "hendrycks" and name in ("fog", "frost"), f"unexpected error: {exc}"
        assert "larger" in str(exc) or "too large" in str(exc) or "at most" in str(exc), str(exc)
        return
    assert y.shape == x.shape and y.dtype == x.dtype
    if not uint8:
        assert torch.isfinite(y).all()
        assert y.min() >= 0 and y.max() <= 1
    if channels == 4:
        assert torch.equal(y[:, 3], x[:, 3]), "alpha is kept"


@pytest.mark.parametrize("name", NAMES)
def test_images_smaller_than_the_minimum_size_get_a_clear_error(name):
    spec = get_spec(name)
    assert spec.min_size > 1, "every corruption declares a smallest size it supports"
    with pytest.raises(augrobust.AugrobustValueError, match=rf"needs at least {spec.min_size}x{spec.min_size}"):
        augrobust.corrupt(torch.rand(3, spec.min_size - 1, 20), name, 1)


@pytest.mark.parametrize("name", NAMES)
def test_severity_outside_1_to_5_is_rejected(name):
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(augrobust.AugrobustValueError, match="severity must be in 1..5, got 0"):
        augrobust.corrupt(x, name, 0)
    with pytest.raises(augrobust.AugrobustValueError, match=r"severities must be in 1..5, got \[1, 6\]"):
        augrobust.corrupt(x, name, torch.tensor([1, 6]))


def test_unknown_name_lists_every_valid_name():
    with pytest.raises(augrobust.AugrobustValueError) as info:
        augrobust.corrupt(torch.rand(3, 32, 32), "gausian_noise", 1)
    for name in NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_severity_increases_the_damage_on_average(name):
    """A monotonicity sanity check: severity 5 changes a photo-like image more than severity 1."""
    from augrobust.testimage import test_image

    x = test_image(64).float().div(255).expand(4, -1, -1, -1).contiguous()
    change = []
    for severity in (1, 5):
        y = augrobust.corrupt(x, name, severity, generator=torch.Generator().manual_seed(0))
        change.append((y - x).abs().mean().item())
    if name == "saturate":  # severity 1 desaturates (x0.3), severity 5 oversaturates (x20): not ordered
        assert change[0] > 0 and change[1] > 0
    else:
        assert change[1] > change[0]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("other", [1, 3])
def test_replayed_params_of_another_batch_size_raise(name, other):
    params = augrobust.sample_corruption_params(name, (4, 3, 32, 32), 3, generator=torch.Generator().manual_seed(0))
    if not params:
        return  # a deterministic corruption has nothing to replay
    with pytest.raises(augrobust.AugrobustValueError, match=rf"has 4 rows but the batch has {other} images"):
        augrobust.corrupt(torch.rand(other, 3, 32, 32), name, 3, params=params)
