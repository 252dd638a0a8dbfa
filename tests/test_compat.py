"""augrobust.compat is a drop-in for imagecorruptions: same contract, same output where deterministic."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from augrobust import AugrobustError, compat
from augrobust.compat import CompatInputError, corrupt, get_corruption_names
from tests.oracle import ic_corruptions, imagecorruptions, oracle_corrupt, photo

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
        ours = corrupt(image, severity, "defocus_blur").astype(int)
        diff = np.abs(ours - oracle_corrupt(image, "defocus_blur", severity))
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


# ------------------------------------------------------------------------------------- the public surface
# What scripts written for imagecorruptions import: corrupt, get_corruption_names, corruption_dict,
# corruption_tuple and the nineteen per-corruption functions ``f(x, severity=1)``.

# Per-corruption functions whose reference output is deterministic, and the grayscale ones that match it.
DETERMINISTIC_RGB = ["gaussian_blur", "zoom_blur", "brightness", "contrast", "saturate", "pixelate", "jpeg_compression"]
DETERMINISTIC_GRAY = ["zoom_blur", "brightness", "contrast", "saturate", "pixelate", "jpeg_compression"]


def test_the_public_names_of_the_reference_exist_with_its_signatures():
    assert list(compat.corruption_dict) == list(imagecorruptions.corruption_dict)
    assert [f.__name__ for f in compat.corruption_tuple] == [f.__name__ for f in imagecorruptions.corruption_tuple]
    for name, ref in imagecorruptions.corruption_dict.items():
        ours = getattr(compat, name)
        assert compat.corruption_dict[name] is ours and name in compat.__all__
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(ref).parameters)
        assert inspect.signature(ours).parameters["severity"].default == 1
    for name in ("corrupt", "get_corruption_names"):
        ref, ours = inspect.signature(getattr(imagecorruptions, name)), inspect.signature(getattr(compat, name))
        assert list(ours.parameters)[: len(ref.parameters)] == list(ref.parameters)
        assert [p.default for p in ours.parameters.values()][: len(ref.parameters)] == [
            p.default for p in ref.parameters.values()
        ]


def _same_kind(ours, ref) -> None:
    """Same return type family (PIL image of the same mode, or an array of the same shape)."""
    if isinstance(ref, Image.Image):
        assert isinstance(ours, Image.Image) and ours.mode == ref.mode and ours.size == ref.size
    else:
        assert isinstance(ours, np.ndarray) and ours.shape == ref.shape and ours.dtype.kind == "f"


@pytest.mark.parametrize("name, size", [(n, s) for n in DETERMINISTIC_RGB for s in [(32, 32), (41, 67), (90, 33)]])
def test_per_corruption_functions_on_pil_rgb_equal_the_reference(name, size):
    image = Image.fromarray(photo("chelsea", size))
    for severity in np.arange(1, 6):  # NumPy integers, as NumPy loops give them
        ours, ref = getattr(compat, name)(image, severity), getattr(ic_corruptions, name)(image, int(severity))
        _same_kind(ours, ref)
        assert np.array_equal(np.uint8(ours), np.uint8(ref)), (name, severity)


@pytest.mark.parametrize("name", DETERMINISTIC_GRAY)
def test_per_corruption_functions_on_pil_grayscale_equal_the_reference(name):
    image = Image.fromarray(photo("coffee", (40, 52))).convert("L")
    for severity in range(1, 6):
        ours, ref = getattr(compat, name)(image, severity), getattr(ic_corruptions, name)(image, severity)
        _same_kind(ours, ref)
        assert np.array_equal(np.uint8(ours), np.uint8(ref)), (name, severity)


# gaussian_blur of a 2-D array is left out: the reference blurs it along one axis only (documented).
@pytest.mark.parametrize(
    "name, shape",
    [("gaussian_blur", (36, 40, 3))]
    + [(n, s) for n in ["brightness", "contrast", "saturate", "zoom_blur"] for s in [(36, 40, 3), (36, 40)]],
)
def test_per_corruption_functions_on_arrays_equal_the_reference(name, shape):
    image = photo("rocket", (36, 40))
    image = image if len(shape) == 3 else np.asarray(Image.fromarray(image).convert("L"))
    for severity in (1, 3, 5):
        ours, ref = getattr(compat, name)(image, severity), getattr(ic_corruptions, name)(image, severity)
        _same_kind(ours, ref)
        assert np.array_equal(np.uint8(ours), np.uint8(ref)), (name, severity)


@pytest.mark.parametrize("name", get_corruption_names("all"))
def test_every_per_corruption_function_returns_what_the_reference_returns(name):
    torch.manual_seed(0)
    image = Image.fromarray(photo("astronaut", (40, 48)))
    ours, ref = getattr(compat, name)(image, 4), getattr(ic_corruptions, name)(image, 4)
    _same_kind(ours, ref)
    values = np.asarray(ours, dtype=np.float64)
    assert values.min() >= 0 and values.max() <= 255
    if name not in DETERMINISTIC_RGB:  # another random draw: a change of the same size as the reference's
        ours_change = np.abs(values - np.asarray(image)).mean()
        ref_change = np.abs(np.asarray(ref, dtype=np.float64) - np.asarray(image)).mean()
        assert ref_change / 3 <= ours_change <= ref_change * 3, (ours_change, ref_change)


def test_numpy_integer_severities_and_numbers_are_accepted():
    image = photo("astronaut", (32, 32))
    for severity in (np.int64(2), np.int32(2), np.uint8(2)):
        assert np.array_equal(corrupt(image, severity, "contrast"), oracle_corrupt(image, "contrast", 2))
    assert np.array_equal(corrupt(image, 3, corruption_number=np.int64(11)), oracle_corrupt(image, "contrast", 3))


@pytest.mark.parametrize("severity", [2.0, True, np.float64(2), "2", None, 0])
def test_severities_the_reference_would_crash_on_get_a_clear_error(severity):
    image = photo("astronaut", (32, 32))
    with pytest.raises(CompatInputError, match=r"severity must be an integer in \[1, 5\]"):
        corrupt(image, severity, "contrast")
    with pytest.raises(CompatInputError, match=r"severity must be an integer in \[1, 5\]"):
        compat.contrast(Image.fromarray(image), severity)


@pytest.mark.parametrize("number", [19, -2, 2.0])
def test_corruption_numbers_out_of_range_get_a_clear_error(number):
    with pytest.raises(AugrobustError, match="corruption_number"):
        corrupt(photo("astronaut", (32, 32)), 1, corruption_number=number)


def test_read_only_arrays_work_without_a_warning_and_inputs_are_not_modified():
    pil = Image.fromarray(photo("coffee", (40, 40)))
    image = np.asarray(pil)
    assert not image.flags.writeable
    before = image.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = corrupt(image, 2, "jpeg_compression")
        compat.gaussian_noise(image, 2)
        compat.glass_blur(pil, 1)
    assert np.array_equal(out, oracle_corrupt(image, "jpeg_compression", 2))
    assert np.array_equal(image, before) and np.array_equal(np.asarray(pil), before)


@pytest.mark.parametrize(
    "x, message",
    [
        (Image.new("RGBA", (32, 32)), r"mode 'RGB' or 'L' are supported, got mode 'RGBA'.*convert\('RGB'\)"),
        (Image.new("P", (32, 32)), "got mode 'P'"),
        (torch.zeros(3, 32, 32), "got Tensor.*augrobust.corrupt"),
        (np.zeros((32, 32, 3), np.int32), "expecting dtype uint8 .*got int32"),
        (np.zeros((32, 32, 4), np.uint8), r"\(H, W\), \(H, W, 1\) or \(H, W, 3\), got \(32, 32, 4\)"),
    ],
)
def test_per_corruption_functions_refuse_what_the_reference_mishandles(x, message):
    with pytest.raises(CompatInputError, match=message):
        compat.contrast(x, 1)


def test_corrupt_takes_arrays_like_the_reference_and_says_how_to_convert_a_pil_image():
    with pytest.raises(CompatInputError, match=r"got Image\. Convert a PIL image with np.asarray\(image\)"):
        corrupt(Image.new("RGB", (32, 32)), 1, "contrast")


def _corrupt_images_script(module, image: np.ndarray, out_dir) -> dict[str, np.ndarray]:
    """A transcription of the usage in the reference's corrupt_images.py and README: import the names,
    loop over subsets, names and NumPy severities, call corrupt, the dict's functions and the tuple's."""
    corrupt_, get_names, corruption_dict, corruption_tuple = (
        module.corrupt, module.get_corruption_names, module.corruption_dict, module.corruption_tuple,
    )  # fmt: skip
    results = {}
    corruptions = sorted(set(get_names("digital")) | {"gaussian_blur"})
    assert set(corruptions) <= set(corruption_dict.keys())  # argparse choices=corruption_dict.keys()
    for corruption in corruptions:
        for severity in np.arange(1, 6):
            corrupted = corrupt_(image, corruption_name=corruption, severity=severity)
            Image.fromarray(corrupted).save(out_dir / f"{corruption}_{severity}.png")
            results[f"{corruption}/{severity}"] = corrupted
            direct = np.uint8(corruption_dict[corruption](Image.fromarray(image), severity))
            results[f"{corruption}/{severity}/dict"] = direct
    for number in range(15):
        results[f"number{number}"] = corrupt_(image, corruption_number=number, severity=1)
        results[f"tuple{number}"] = np.uint8(corruption_tuple[number](Image.fromarray(image), 1))
    return results


def test_a_script_written_for_the_reference_runs_unchanged(tmp_path):
    image = photo("chelsea", (48, 64))
    (tmp_path / "ours").mkdir()
    (tmp_path / "ref").mkdir()
    ours = _corrupt_images_script(compat, image, tmp_path / "ours")
    ref = _corrupt_images_script(imagecorruptions, image, tmp_path / "ref")
    assert ours.keys() == ref.keys()
    for key in ours:
        assert ours[key].shape == ref[key].shape and ours[key].dtype == ref[key].dtype == np.uint8, key
        name = key.split("/")[0]
        number = int(key[6:]) if key.startswith("number") else int(key[5:]) if key.startswith("tuple") else None
        if number is not None:
            name = get_corruption_names("all")[number]
        if name in DETERMINISTIC_RGB:
            assert np.array_equal(ours[key], ref[key]), key
    written = sorted(p.name for p in (tmp_path / "ours").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "ref").iterdir()) and len(written) == 25


def test_an_unknown_subset_is_a_value_error_as_in_the_reference():
    with pytest.raises(ValueError):
        imagecorruptions.get_corruption_names("colour")
    with pytest.raises(ValueError, match="unknown subset 'colour'"):
        get_corruption_names("colour")
