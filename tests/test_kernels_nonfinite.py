"""NaN and inf never crash a kernel and never leak into the other images of the batch.

Issue 16: one NaN pixel made shot_noise index its alias tables out of range (a crash of the whole batch, a
device-side assert on CUDA). The rule for every corruption: a batch with one NaN and one +inf pixel in one
image runs; the other images are bit-identical to the clean batch's result under the same draw; the image
with the bad pixels comes back with values that are NaN or in [0, 1] (never +-inf). NaN propagates, except
where the reference quantises to uint8 (which cannot hold a NaN): glass_blur maps it to 0 (documented),
jpeg_compression codes the quantised image.
"""

from __future__ import annotations

import pytest
import torch

import augrobust
from augrobust.corruptions import CORRUPTION_ORDER, sample_corruption_params

QUANTISED = {"glass_blur", "jpeg_compression"}


@pytest.mark.parametrize("name", CORRUPTION_ORDER)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nan_and_inf_stay_in_their_image(name: str, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 3, 36, 44, generator=g, dtype=dtype)
    bad = clean.clone()
    bad[1, 0, 5, 7] = float("nan")
    bad[1, 2, 20, 30] = float("inf")
    severity = torch.tensor([1, 3, 5])
    params = sample_corruption_params(name, clean.shape, severity, generator=torch.Generator().manual_seed(1))
    want = augrobust.corrupt(clean, name, severity, params=params)
    got = augrobust.corrupt(bad, name, severity, params=params)
    assert got.dtype == dtype and got.shape == clean.shape
    others = [0, 2]
    assert torch.equal(got[others], want[others]), f"{name}: a NaN/inf pixel changed other images"
    hit = got[1]
    assert bool((hit.isnan() | ((hit >= 0) & (hit <= 1))).all()), f"{name}: +-inf or out-of-range output"
    if name == "impulse_noise" and float(params["u"][1, 0, 5, 7]) < 0.09:  # this draw salts/peppers it
        assert float(hit[0, 5, 7]) in (0.0, 1.0)
    elif name not in QUANTISED:
        assert bool(hit.isnan().any()), f"{name}: the NaN pixel vanished instead of propagating"


@pytest.mark.parametrize("general", [None, True, False])
def test_shot_noise_nan_pixel_on_every_path(general: bool | None) -> None:
    """The fast path (integral levels), the general path (accelerators) and the forced fast path."""
    from augrobust.corruptions.shot_noise import shot_noise

    x = torch.randint(0, 256, (2, 3, 16, 16), generator=torch.Generator().manual_seed(2)).float() / 255
    u = {"u": torch.rand(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))}
    kw = dict(preset="imagenet", reference="imagecorruptions", general=general)
    want = shot_noise(x, torch.tensor([2, 5]), u, **kw)
    x[0, 1, 3, 4] = float("nan")
    x[0, 2, 0, 0] = float("-inf")
    got = shot_noise(x, torch.tensor([2, 5]), u, **kw)
    assert bool(got[0, 1, 3, 4].isnan()) and int(got.isnan().sum()) == 1
    assert float(got[0, 2, 0, 0]) == 0.0  # -inf clamps to level 0: Poisson(0) = 0
    keep = torch.ones_like(x, dtype=torch.bool)
    keep[0, 1, 3, 4] = keep[0, 2, 0, 0] = False
    assert torch.equal(got[keep], want[keep])


def _functional_cases() -> dict[str, object]:
    from test_kernels_autocast import FUNCTIONAL  # the same 18 calls (float32, 2 x 3 x 40 x 48)

    return FUNCTIONAL


@pytest.mark.parametrize("name", list(_functional_cases()))
def test_functional_kernels_keep_nan_and_inf_in_their_image(name: str) -> None:
    fn = _functional_cases()[name]
    clean = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(5))
    bad = clean.clone()
    bad[1, 0, 3, 3] = float("nan")
    bad[1, 1, 4, 4] = float("inf")
    want, got = fn(clean), fn(bad)
    assert torch.equal(got[0], want[0])
    assert bool(got[1].isnan().any())
