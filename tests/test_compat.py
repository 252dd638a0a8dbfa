"""augrobust.compat is a drop-in for imagecorruptions: same contract, same output where deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augrobust import AugrobustError
from augrobust.compat import CompatInputError, corrupt, get_corruption_names
from tests.oracle import imagecorruptions, oracle_corrupt, photo

DETERMINISTIC = ["gaussian_blur", "zoom_blur", "brightness", "contrast", "saturate", "pixelate", "jpeg_compression"]


@pytest.mark.parametrize("subset", ["common", "validation", "all", "noise", "blur", "weather", "digital"])
def test_names_and_subsets_match_the_reference(subset):
    assert get_corruption_names(subset) == imagecorruptions.get_corruption_names(subset)


def test_corruption_numbers_index_the_reference_order():
    names = imagecorruptions.get_corruption_names("all")
    image = photo("coffee", (32, 32))
    for number in (0, 10, 16):
        out = corrupt(image, severity=1, corruption_number=number)
        if names[number] in DETERMINISTIC:
            assert np.array_equal(out, oracle_corrupt(image, names[number], 1))
        assert out.shape == (32, 32, 3)


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("size", [(32, 32), (48, 80)])
def test_deterministic_corruptions_equal_the_reference_bit_for_bit(name, size):
    image = photo("astronaut", size)
    for severity in range(1, 6):
        assert np.array_equal(corrupt(image, severity, name), oracle_corrupt(image, name, severity)), severity


def test_defocus_is_within_its_stated_bound():
    image = photo("chelsea", (64, 64))
    for severity in range(1, 6):
        diff = np.abs(corrupt(image, severity, "defocus_blur").astype(int) - oracle_corrupt(image, "defocus_blur", severity))
        assert diff.max() <= 1 and (diff > 0).mean() <= 1e-3


@pytest.mark.parametrize("name", get_corruption_names("all"))
def test_every_corruption_keeps_the_reference_contract(name):
    torch.manual_seed(0)
    image = photo("rocket", (40, 36))
    out = corrupt(image, severity=5, corruption_name=name)
    ref = oracle_corrupt(image, name, 5, seed=0)
    assert out.dtype == np.uint8 and out.shape == ref.shape == (40, 36, 3)
    if name in DETERMINISTIC:
        assert np.array_equal(out, ref)
    else:  # other random draws, same corruption: a change of the same size as the reference's
        ours = np.abs(out.astype(float) - image).mean()
        theirs = np.abs(ref.astype(float) - image).mean()
        assert theirs / 3 <= ours <= theirs * 3, (ours, theirs)


@pytest.mark.parametrize("shape", [(40, 40), (40, 40, 1)])
def test_grayscale_is_stacked_to_three_channels_like_the_reference(shape):
    gray = photo("astronaut", (40, 40))[..., 0].reshape(shape)
    out = corrupt(gray, 3, "contrast")
    assert out.shape == (40, 40, 3)
    assert np.array_equal(out, oracle_corrupt(gray, "contrast", 3))


@pytest.mark.parametrize(
    "image, kwargs, message",
    [
        (np.zeros((32, 32, 3), np.float32), {}, "expecting dtype uint8, got float32"),
        (np.zeros((31, 64, 3), np.uint8), {}, "at least 32 pixels, got 31x64"),
        (np.zeros((32, 32, 4), np.uint8), {}, "1 or 3 channels"),
        (np.zeros((32, 32, 3, 1), np.uint8), {}, r"shape \(H, W\) or \(H, W, C\)"),
        (np.zeros((32, 32, 3), np.uint8), {"severity": 6}, r"severity must be an integer in \[1, 5\], got 6"),
    ],
)
def test_bad_input_raises_like_the_reference_with_a_clear_message(image, kwargs, message):
    with pytest.raises(CompatInputError, match=message) as info:
        corrupt(image, corruption_name="contrast", **kwargs)
    assert isinstance(info.value, AttributeError) and isinstance(info.value, AugrobustError)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(AugrobustError, match="unknown corruption 'fogg'; valid names: gaussian_noise, .*saturate"):
        corrupt(np.zeros((32, 32, 3), np.uint8), 1, "fogg")


def test_a_name_or_a_number_is_required():
    with pytest.raises(AugrobustError, match="corruption_name or corruption_number"):
        corrupt(np.zeros((32, 32, 3), np.uint8), 1)
