"""DFM-X: frequency masking, the DFMX transform, the DFM sweep and its files, and the ``dfmx`` method.

Specification proven here:
- ``frequency_mask`` equals a float64 NumPy transcription of ``real(ifft2(ifftshift(fftshift(fft2(x)) * M)))``
  (even / odd / non-square sizes, shared and per-image masks); all-ones is the identity, DC-only gives the
  channel mean, it is linear, and with DC kept it commutes with a per-channel Normalize (``center=`` gives
  normalised-space filtering when DC is dropped);
- ``removal_order`` is the reference's spiral (a hand-derived 4x4 table, and the facts of the reference's
  32x32 file: row 0, DC and its neighbours, 544 levels, 15 always-removed positions, 934 paired positions);
- ``DFMX`` with ``clip=False`` on float input is the reference's per-sample rule on normalised tensors (under
  shared randomness); with labels an image is never filtered with its own class's DFM and the rate is
  ``p (K-1) / K``, without labels ``p``; the v2 form reads the label from ``(image, label)`` / dict samples;
- ``compute_dfms`` equals a float64 NumPy transcription of the reference sweep, and on a model that only sees
  one frequency it keeps exactly that frequency and its conjugate;
- DFM files round-trip; malformed and hostile files raise clear errors; the ``dfmx`` method trains.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2

import augrobust
from augrobust.dfm import compute_dfms, load_dfms, load_reference_dfms, removal_order, save_dfms
from augrobust.errors import AugrobustTypeError, AugrobustValueError
from augrobust.functional.frequency_mask import frequency_mask
from augrobust.train.models import Normalize
from augrobust.transforms.dfmx import DFMX, example_dfms

# -- independent float64 transcriptions of the reference --------------------------------------------------


def np_filter(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The reference formula per channel, literally: real(ifft2(ifftshift(fftshift(fft2(x)) * M)))."""
    spectrum = np.fft.fftshift(np.fft.fft2(x), axes=(-2, -1))
    return np.real(np.fft.ifft2(np.fft.ifftshift(spectrum * mask, axes=(-2, -1))))


def np_reference_sweep(
    predict, images: np.ndarray, labels: np.ndarray, order: np.ndarray, t: float, k: int
) -> np.ndarray:
    """Compute_DFM_CIFAR.py's loop for every class, as written there (one class at a time, float64)."""
    dfms = []
    for c in range(k):
        importance = order.astype(np.float64).copy()
        kept = importance.copy()
        current = np.sum((predict(images) == labels) & (labels == c))
        while np.sum(importance) != 0:
            mask = kept.copy()
            level = np.max(importance)
            mask[mask == level] = 0
            mask[mask != 0] = 1
            filtered = np.stack([np_filter(img, mask) for img in images])
            correct = np.sum((predict(filtered) == labels) & (labels == c))
            if correct >= current - t:
                current = correct
                kept[kept == level] = 0
            importance[importance == level] = 0
        kept[kept > 0] = 1
        dfms.append(kept)
    return np.stack(dfms)


# -- frequency_mask ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w"), [(8, 8), (7, 9), (32, 32), (6, 5)])
@pytest.mark.parametrize("per_image", [False, True])
def test_frequency_mask_matches_the_reference_formula(h, w, per_image):
    rng = np.random.default_rng(h * 100 + w)
    x = rng.random((3, 2, h, w))
    masks = rng.random((3, h, w)) if per_image else (rng.random((h, w)) > 0.5).astype(np.float64)
    expected = np.stack([np_filter(x[i], masks[i] if per_image else masks) for i in range(3)])
    out64 = frequency_mask(torch.from_numpy(x), torch.from_numpy(masks))
    assert out64.dtype == torch.float64
    np.testing.assert_allclose(out64.numpy(), expected, rtol=0, atol=1e-12)
    out32 = frequency_mask(torch.from_numpy(x).float(), torch.from_numpy(masks).float())
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.numpy(), expected, rtol=0, atol=2e-6)


def test_frequency_mask_algebra():
    g = torch.Generator().manual_seed(0)
    x1 = torch.rand(4, 3, 16, 12, generator=g, dtype=torch.float64)
    x2 = torch.rand(4, 3, 16, 12, generator=g, dtype=torch.float64)
    torch.testing.assert_close(frequency_mask(x1, torch.ones(16, 12)), x1, rtol=0, atol=1e-12)
    dc_only = torch.zeros(16, 12)
    dc_only[8, 6] = 1
    channel_mean = x1.mean((-2, -1), keepdim=True).expand_as(x1)
    torch.testing.assert_close(frequency_mask(x1, dc_only), channel_mean, rtol=0, atol=1e-12)
    m = (torch.rand(4, 16, 12, generator=g) > 0.5).double()
    combined = 2.0 * frequency_mask(x1, m) - 3.0 * frequency_mask(x2, m)
    torch.testing.assert_close(frequency_mask(2.0 * x1 - 3.0 * x2, m), combined)
    # (C, H, W) input with one mask equals the batched call.
    torch.testing.assert_close(frequency_mask(x1[1], m[1]), frequency_mask(x1, m)[1])


def test_filtering_commutes_with_normalize_when_dc_is_kept():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 3, 16, 16, generator=g, dtype=torch.float64)
    norm = Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)).double()
    m = (torch.rand(5, 16, 16, generator=g) > 0.6).double()
    m[:, 8, 8] = 1.0
    torch.testing.assert_close(frequency_mask(norm(x), m), norm(frequency_mask(x, m)))
    # Without DC the spaces differ; center= filters around the normaliser's mean and agrees again.
    m[:, 8, 8] = 0.0
    assert not torch.allclose(frequency_mask(norm(x), m), norm(frequency_mask(x, m)))
    torch.testing.assert_close(frequency_mask(norm(x), m), norm(frequency_mask(x, m, center=(0.49, 0.48, 0.45))))


def test_frequency_mask_errors():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(AugrobustValueError, match="does not match the image size"):
        frequency_mask(x, torch.ones(8, 9))
    with pytest.raises(AugrobustValueError, match="batch"):
        frequency_mask(x, torch.ones(3, 8, 8))
    with pytest.raises(AugrobustTypeError, match="floating"):
        frequency_mask(x.to(torch.uint8), torch.ones(8, 8))
    with pytest.raises(AugrobustTypeError, match="Tensor"):
        frequency_mask(x, np.ones((8, 8)))


def test_half_precision_and_empty_batches():
    x = torch.rand(3, 3, 8, 8)
    m = (torch.rand(8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    for dtype in (torch.float16, torch.bfloat16):
        out = frequency_mask(x.to(dtype), m)
        assert out.dtype == dtype
        torch.testing.assert_close(out.float(), frequency_mask(x.to(dtype).float(), m), rtol=0, atol=1e-2)
    assert frequency_mask(torch.rand(0, 3, 8, 8), m).shape == (0, 3, 8, 8)


# -- removal order ----------------------------------------------------------------------------------------


def test_removal_order_small_table_derived_by_hand():
    # Spiral 1..16 from the top-left; right half (cols 2, 3) takes the level of its conjugate partner
    # ((4 - r) % 4, (4 - c) % 4); the Nyquist row right of DC is 0 in the reference layout.
    expected = [[1, 2, 3, 0], [12, 13, 8, 9], [11, 16, 15, 16], [10, 9, 14, 13]]
    assert removal_order(4).tolist() == expected
    expected[0][3] = 2
    assert removal_order(4, reference_layout=False).tolist() == expected


def test_removal_order_32_has_the_reference_files_structure():
    order = removal_order(32)
    assert order.shape == (32, 32) and order.dtype == torch.int64
    assert order[0].tolist() == list(range(1, 18)) + [0] * 15
    assert order[16, 16] == 1023 and order[16, 15] == order[16, 17] == 1024  # DC second, its row neighbours first
    assert len(torch.unique(order[order > 0])) == 544
    assert int((order == 0).sum()) == 15
    conj = (32 - torch.arange(32)) % 32
    assert int((order == order[conj][:, conj]).sum()) == 934  # 91% of positions share their partner's level
    assert order[:, 0].tolist() == [1, *range(124, 93, -1)]
    free = removal_order(32, reference_layout=False)
    assert int((free == 0).sum()) == 0 and torch.equal(free[1:], order[1:])


def test_removal_order_errors():
    with pytest.raises(AugrobustValueError, match="2x2"):
        removal_order(1)
    with pytest.raises(AugrobustTypeError, match="size"):
        removal_order("32")


# -- the DFMX transform -----------------------------------------------------------------------------------


def test_dfmx_without_clip_is_the_reference_on_normalised_tensors():
    """Shared randomness: the reference's per-sample rule applied to Normalize(x) with our draws."""
    k, size = 10, 16
    dfms = example_dfms(k, size, seed=3)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, size, size, generator=g, dtype=torch.float64)
    y = torch.randint(k, (64,), generator=g)
    aug = DFMX(dfms, p=0.5, clip=False, seed=4)
    out = aug(x, labels=y)
    other, gate = aug._params["other"].numpy(), aug._params["batch_prob"].numpy() > 0.5
    norm = Normalize(mean, std).double()
    xn = norm(x).numpy()
    expected = xn.copy()
    for i in range(64):
        if other[i] == int(y[i]):
            continue  # the reference returns the image unchanged
        if gate[i]:
            mask = dfms[other[i]].numpy().astype(np.float64).copy()
            mask[size // 2, size // 2] = 1.0
            expected[i] = np_filter(xn[i], mask)
    np.testing.assert_allclose(norm(out).numpy(), expected, rtol=0, atol=1e-12)
    assert 0 < (other == y.numpy()).sum() and 0 < (gate & (other != y.numpy())).sum() < 64


def test_dfmx_uint8_is_clipped_and_floored():
    dfms = example_dfms(4, 8, seed=1)
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    aug = DFMX(dfms, p=1.0, seed=0)
    out = aug(x)
    other = aug._params["other"].numpy()
    xf = x.double().numpy() / 255.0
    expected = np.empty_like(xf)
    for i in range(16):
        mask = dfms[other[i]].numpy().astype(np.float64).copy()
        mask[4, 4] = 1.0
        expected[i] = np_filter(xf[i], mask)
    expected = np.floor(np.clip(expected, 0, 1) * 255)
    assert out.dtype == torch.uint8
    assert np.abs(out.numpy().astype(int) - expected).max() <= 1  # float32 vs float64 at the floor boundary
    assert np.mean(out.numpy() == expected) > 0.99


def _dc_only_dfms(k: int, size: int) -> torch.Tensor:
    """DFMs that remove everything but DC: a filtered image is flat, so 'filtered' is visible in the output."""
    return torch.zeros(k, size, size)


def test_labels_exclude_the_own_class_and_set_the_rate():
    k, n = 10, 20000
    x = torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.arange(n) % k
    aug = DFMX(_dc_only_dfms(k, 4), p=1.0, seed=1)
    out = aug(x, labels=y)
    filtered = ~(out == x).flatten(1).all(1)
    own = aug._params["other"] == y
    assert torch.equal(filtered, ~own)  # filtered exactly when the drawn class is not the own class
    torch.testing.assert_close(out[filtered], x[filtered].mean((-2, -1), keepdim=True).expand_as(x[filtered]))
    rate_with = (~(DFMX(_dc_only_dfms(k, 4), p=0.3, seed=2)(x, labels=y) == x).flatten(1).all(1)).float().mean()
    rate_without = (~(DFMX(_dc_only_dfms(k, 4), p=0.3, seed=2)(x) == x).flatten(1).all(1)).float().mean()
    assert abs(float(rate_with) - 0.3 * (k - 1) / k) < 0.012  # 0.27: the reference's effective rate
    assert abs(float(rate_without) - 0.3) < 0.012


def test_labels_accept_scalars_for_single_images_and_replay_ignores_them():
    aug = DFMX(_dc_only_dfms(3, 8), p=1.0, seed=0)
    img = torch.rand(3, 8, 8)
    for _ in range(20):
        out = aug(img, labels=1)
        assert torch.equal(out, img) == bool(aug._params["other"][0] == 1)
    x = torch.rand(4, 3, 8, 8)
    first = aug(x, labels=torch.tensor([0, 1, 2, 0]))
    assert torch.equal(aug(x, params=aug._params, labels=torch.tensor([1, 1, 1, 1])), first)


def test_keep_dc_false_removes_the_mean():
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    out = DFMX(_dc_only_dfms(5, 8), p=1.0, keep_dc=False, clip=False, seed=0)(x)
    torch.testing.assert_close(out, torch.zeros_like(x), rtol=0, atol=1e-12)


def test_dfmx_errors():
    aug = DFMX(example_dfms(10, 32))
    with pytest.raises(AugrobustValueError, match="32x32 DFMs but the image is 16x16"):
        aug(torch.rand(2, 3, 16, 16))
    with pytest.raises(AugrobustTypeError, match="integer"):
        aug(torch.rand(2, 3, 32, 32), labels=torch.tensor([0.0, 1.0]))
    with pytest.raises(AugrobustValueError, match="shape"):
        aug(torch.rand(2, 3, 32, 32), labels=torch.tensor([0, 1, 2]))
    with pytest.raises(AugrobustValueError, match="0..9"):
        aug(torch.rand(2, 3, 32, 32), labels=torch.tensor([0, 10]))
    with pytest.raises(AugrobustValueError, match=r"\(K, H, W\)"):
        DFMX(torch.ones(32, 32))
    with pytest.raises(AugrobustTypeError, match="dfms"):
        DFMX([[1.0]])
    with pytest.raises(AugrobustTypeError, match="clip"):
        DFMX(example_dfms(2, 8), clip="yes")
    with pytest.raises(TypeError, match="keep_cd"):
        DFMX(example_dfms(2, 8), keep_cd=True)


def _identify(out: torch.Tensor, img: torch.Tensor, masks: torch.Tensor) -> int:
    """Which class's mask produced ``out`` (-1: unchanged)."""
    if torch.equal(out, img):
        return -1
    hits = [c for c in range(masks.shape[0]) if torch.allclose(out, frequency_mask(img, masks[c]), atol=1e-5)]
    assert len(hits) == 1
    return hits[0]


def test_v2_form_takes_the_label_from_the_sample():
    k, size = 3, 8
    dfms = example_dfms(k, size, keep=0.5, seed=5)
    masks = DFMX(dfms).masks()
    aug = augrobust.v2.DFMX(dfms, p=1.0, clip=False, seed=0)
    pipeline = v2.Compose([aug])
    img = tv_tensors.Image(torch.rand(3, size, size, generator=torch.Generator().manual_seed(0)))
    seen_with, seen_without = set(), set()
    for _ in range(30):
        out, label = pipeline(img, 1)
        assert label == 1
        seen_with.add(_identify(out.as_subclass(torch.Tensor), img.as_subclass(torch.Tensor), masks))
        seen_without.add(_identify(aug(img).as_subclass(torch.Tensor), img.as_subclass(torch.Tensor), masks))
    assert seen_with == {-1, 0, 2}  # never class 1's own DFM; unchanged when class 1 was drawn
    assert seen_without == {0, 1, 2}  # no label: every class, always filtered
    plain = img.as_subclass(torch.Tensor)
    seen_dict = {
        _identify(aug({"image": img, "label": torch.tensor(2)})["image"].as_subclass(torch.Tensor), plain, masks)
        for _ in range(20)
    }
    assert seen_dict == {-1, 0, 1}
    with pytest.raises(AugrobustValueError, match="cannot tell which is the label"):
        aug(img, 1, 2)
    with pytest.raises(AugrobustValueError, match="0..2"):
        aug(img, 5)


# -- compute_dfms -----------------------------------------------------------------------------------------


class _FrequencyDetector(nn.Module):
    """Class 1 iff the DFT coefficient at one frequency k0 is large: a model that only looks at +-k0."""

    def __init__(self, size: int, ky: int, kx: int, threshold: float) -> None:
        super().__init__()
        axis = torch.arange(size, dtype=torch.float64)
        r, c = torch.meshgrid(axis, axis, indexing="ij")
        phase = 2 * torch.pi * (ky * r + kx * c) / size
        self.register_buffer("cos", torch.cos(phase))
        self.register_buffer("sin", torch.sin(phase))
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double().sum(1)
        magnitude = torch.hypot((x * self.cos).sum((-2, -1)), (x * self.sin).sum((-2, -1)))
        return torch.stack([torch.zeros_like(magnitude), magnitude - self.threshold], dim=1)


def _detector_data(size: int = 8, ky: int = 1, kx: int = 2, n: int = 40):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    axis = torch.arange(size, dtype=torch.float64)
    r, c = torch.meshgrid(axis, axis, indexing="ij")
    phase = torch.rand(n, 1, 1, generator=g, dtype=torch.float64) * 2 * torch.pi
    wave = torch.cos(2 * torch.pi * (ky * r + kx * c) / size + phase)
    x = 0.5 + 0.02 * torch.randn(n, 1, size, size, generator=g, dtype=torch.float64)
    x = x + 0.3 * labels.view(n, 1, 1, 1) * wave.unsqueeze(1)
    amplitude = 0.3 * size * size / 2  # |DFT coefficient| of the wave
    return x, labels, _FrequencyDetector(size, ky, kx, threshold=0.75 * amplitude)


def test_sweep_keeps_exactly_the_frequency_the_model_uses():
    size, ky, kx = 8, 1, 2
    x, y, model = _detector_data(size, ky, kx)
    assert torch.equal(model(x).argmax(1), y)  # the detector is right on clean data
    dfms = compute_dfms(model, x, y, tolerance=0)
    expected = torch.zeros(2, size, size)
    expected[1, size // 2 + ky, size // 2 + kx] = 1  # k0 ...
    expected[1, size // 2 - ky, size // 2 - kx] = 1  # ... and its conjugate: dropping it halves the coefficient
    assert torch.equal(dfms, expected)
    # A tolerance of every class-1 image lets the sweep remove everything.
    assert torch.equal(compute_dfms(model, x, y, tolerance=20), torch.zeros(2, size, size))


def test_sweep_equals_the_reference_loop_on_a_random_model():
    torch.manual_seed(0)
    k, size = 3, 8
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, k)
    ).double()
    mean, std = (0.5, 0.4, 0.45), (0.25, 0.2, 0.3)
    model = nn.Sequential(Normalize(mean, std), net).double()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(45, 3, size, size, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
        y[::4] = (y[::4] + 1) % k  # some wrong predictions
    assert torch.bincount(y, minlength=k).min() > 5
    order = removal_order(size)
    calls = []
    ours = compute_dfms(
        model, x, y, tolerance=1, batch_size=16, center=mean, progress=lambda i, n: calls.append((i, n))
    )

    def predict(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(images)).argmax(1).numpy()

    xn = Normalize(mean, std).double()(x).numpy()  # the reference filters normalised images
    expected = np_reference_sweep(predict, xn, y.numpy(), order.numpy(), 1, k)
    np.testing.assert_array_equal(ours.numpy(), expected)
    levels = len(torch.unique(order[order > 0]))
    assert calls == [(i, levels) for i in range(1, levels + 1)]
    assert 0 < expected.sum() < expected.size  # the sweep kept some and removed some
    # Any integer order works (here: random levels with ties and always-removed zeros).
    random_order = torch.randint(0, 12, (size, size), generator=g)
    ours = compute_dfms(model, x, y, tolerance=0, order=random_order, center=mean)
    np.testing.assert_array_equal(ours.numpy(), np_reference_sweep(predict, xn, y.numpy(), random_order.numpy(), 0, k))


def test_sweep_restores_the_model_mode_and_checks_its_input():
    x, y, model = _detector_data()
    model.train()
    compute_dfms(model, x, y, tolerance=0)
    assert model.training
    with pytest.raises(AugrobustValueError, match=r"classes \[2\] have no evaluation image"):
        compute_dfms(model, x, y, num_classes=3)
    with pytest.raises(AugrobustValueError, match="labels"):
        compute_dfms(model, x, y[:-1])
    with pytest.raises(AugrobustTypeError, match="integer"):
        compute_dfms(model, x, y.float())
    with pytest.raises(AugrobustValueError, match="order"):
        compute_dfms(model, x, y, order=torch.zeros(4, 4, dtype=torch.int64))
    with pytest.raises(AugrobustValueError, match="tolerance"):
        compute_dfms(model, x, y, tolerance=-1)


# -- files ------------------------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    dfms = example_dfms(10, 16, seed=7)
    path = save_dfms(tmp_path / "dfms.pt", dfms, {"arch": "resnet8_cifar", "tolerance": 6, "classes": [0, 1]})
    raw = torch.load(path, weights_only=True)  # safe to load without arbitrary unpickling
    assert raw["format"] == "augrobust.dfm"
    loaded, meta = load_dfms(path, return_meta=True)
    assert torch.equal(loaded, dfms) and meta == {"arch": "resnet8_cifar", "tolerance": 6, "classes": [0, 1]}
    save_dfms(tmp_path / "dfms.npy", dfms)
    assert torch.equal(load_dfms(tmp_path / "dfms.npy"), dfms)
    assert torch.equal(DFMX(str(path)).dfms, dfms)  # the transform takes a path


def test_reference_pickles_load_safely(tmp_path):
    ref = {c: (np.arange(16).reshape(4, 4) % (c + 2) == 0).astype(float).tolist() for c in range(3)}
    ref[1] = np.asarray(ref[1])  # lists or arrays
    with open(tmp_path / "resnet18.pkl", "wb") as f:
        pickle.dump(ref, f)
    loaded = load_dfms(tmp_path / "resnet18.pkl")
    np.testing.assert_array_equal(loaded.numpy(), np.stack([np.asarray(ref[c]) for c in range(3)]))

    class Hostile:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({0: Hostile()}, f)
    with pytest.raises(AugrobustValueError, match="refusing to load"):
        load_reference_dfms(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()
    with open(tmp_path / "keys.pkl", "wb") as f:
        pickle.dump({"cat": [[1.0]], "dog": [[0.0]]}, f)
    with pytest.raises(AugrobustValueError, match="0..K-1"):
        load_reference_dfms(tmp_path / "keys.pkl")
    with open(tmp_path / "ragged.pkl", "wb") as f:
        pickle.dump({0: [[1.0, 0.0]], 1: [[1.0]]}, f)
    with pytest.raises(AugrobustValueError, match="equal-sized"):
        load_reference_dfms(tmp_path / "ragged.pkl")


def test_malformed_files_give_clear_errors(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"not a dfm file")
    with pytest.raises(AugrobustValueError, match="Cannot read"):
        load_dfms(tmp_path / "garbage.pt")
    torch.save({"model": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(AugrobustValueError, match="not an augrobust DFM file"):
        load_dfms(tmp_path / "checkpoint.pt")
    torch.save({"format": "augrobust.dfm", "version": 1, "dfms": torch.ones(32, 32), "meta": {}}, tmp_path / "flat.pt")
    with pytest.raises(AugrobustValueError, match=r"\(K, H, W\)"):
        load_dfms(tmp_path / "flat.pt")
    torch.save({"format": "augrobust.dfm", "version": 9, "dfms": torch.ones(1, 2, 2)}, tmp_path / "future.pt")
    with pytest.raises(AugrobustValueError, match="version"):
        load_dfms(tmp_path / "future.pt")
    with pytest.raises(AugrobustValueError, match="No DFM file"):
        load_dfms(tmp_path / "missing.pt")
    with pytest.raises(AugrobustValueError, match="No DFM file"):
        DFMX(tmp_path / "missing.pt")
    with pytest.raises(AugrobustTypeError, match="weights_only-safe"):
        save_dfms(tmp_path / "x.pt", torch.ones(1, 2, 2), {"model": nn.Linear(1, 1)})
    with pytest.raises(AugrobustValueError, match="does not exist"):
        save_dfms(tmp_path / "no" / "x.pt", torch.ones(1, 2, 2))


# -- the training method ----------------------------------------------------------------------------------


def test_method_uses_the_labels_and_needs_dfms():
    from augrobust.train import METHODS, DFMXMethod

    assert METHODS["dfmx"] is DFMXMethod
    method = DFMXMethod(_dc_only_dfms(4, 8), p=1.0)
    x, y = torch.rand(64, 3, 8, 8), torch.arange(64) % 4
    out = method(None, x, y)
    own = method.augmentation._params["other"] == y
    assert torch.equal((out == x).flatten(1).all(1), own)
    with pytest.raises(AugrobustValueError, match="method option dfms"):
        DFMXMethod()


@pytest.mark.slow
def test_train_with_dfms_computed_from_a_trained_model(tmp_path):
    from augrobust.data import SyntheticShapes
    from augrobust.train import TrainConfig, train

    data = SyntheticShapes(64, seed=1, train=True, size=16), SyntheticShapes(40, seed=1, train=False, size=16)
    config = dict(arch="resnet8_cifar", data="synthetic16", epochs=1, batch_size=16, lr=0.05)
    base = train(TrainConfig(**config), tmp_path / "erm", datasets=data, log=None)
    images = torch.stack([data[1][i][0] for i in range(len(data[1]))])
    labels = torch.tensor([data[1][i][1] for i in range(len(data[1]))])
    dfms = compute_dfms(base.model, images, labels, tolerance=1, num_classes=10)
    assert dfms.shape == (10, 16, 16)
    path = save_dfms(tmp_path / "dfms.pt", dfms, {"arch": "resnet8_cifar", "tolerance": 1})
    config = {**config, "method": "dfmx", "method_options": {"dfms": str(path)}}
    result = train(TrainConfig(**config), tmp_path / "dfmx", datasets=data, log=None)
    assert [row["epoch"] for row in result.history] == [1]
    assert np.isfinite(result.history[0]["train_loss"])


@pytest.mark.slow
def test_dfm_command_computes_maps_of_a_checkpoint_that_train_dfmx_reads(tmp_path, capsys):
    """``augrobust dfm`` -> a DFM file -> ``augrobust train --method dfmx --method-option dfms=FILE``."""
    from augrobust.cli import main
    from augrobust.dfm import load_dfms

    run = tmp_path / "erm"
    assert main(["train", "--arch", "resnet8_cifar", "--data", "synthetic:64", "--epochs", "1", "--batch-size", "16",
                 "--out", str(run)]) == 0  # fmt: skip
    out = tmp_path / "dfms.pt"
    argv = ["dfm", "--checkpoint", str(run / "checkpoint.pt"), "--num-images", "40", "--tolerance", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    dfms, meta = load_dfms(out, return_meta=True)
    assert dfms.shape == (10, 32, 32) and set(dfms.unique().tolist()) <= {0.0, 1.0}
    assert meta["num_images"] == 40 and meta["tolerance"] == 1 and meta["arch"] == "resnet8_cifar"
    assert "fraction kept per class" in capsys.readouterr().out
    assert main(["train", "--arch", "resnet8_cifar", "--data", "synthetic:32", "--epochs", "1", "--batch-size", "16",
                 "--method", "dfmx", "--method-option", f"dfms={out}", "--out", str(tmp_path / "dfmx")]) == 0  # fmt: skip
    assert main(["dfm", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
