"""check_values: the opt-in finiteness and range check, and its use in augrobust.compat (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augrobust import AugrobustTypeError, AugrobustValueError
from augrobust._tensor import check_values
from augrobust.compat import CompatInputError, brightness, gaussian_noise

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", FLOATS)
def test_valid_float_images_pass_unchanged(dtype: torch.dtype) -> None:
    x = torch.rand(2, 3, 8, 8).to(dtype)
    x[0, 0, 0, 0], x[1, 2, 7, 7] = 0.0, 1.0  # the ends of the range are valid
    assert check_values(x) is x


def test_uint8_is_always_in_range() -> None:
    x = torch.full((3, 4, 4), 255, dtype=torch.uint8)
    assert check_values(x) is x


@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_and_inf_are_counted_and_the_tensor_named(dtype: torch.dtype) -> None:
    x = torch.rand(2, 3, 8, 8).to(dtype)
    x[0, 0, 0, :2] = float("nan")
    x[1, 1, 1, 1] = float("inf")
    with pytest.raises(AugrobustValueError, match=r"^batch 7 has 2 NaN and 1 infinite values \(of 384\).*nan_to_num"):
        check_values(x, "batch 7")
    x[0, 0, 0, :2] = 0.5
    x[1, 1, 1, 1] = -float("inf")
    with pytest.raises(AugrobustValueError, match=r"^image has 1 infinite values"):
        check_values(x)


@pytest.mark.parametrize("dtype", FLOATS)
def test_a_0_255_float_image_is_told_to_divide_by_255(dtype: torch.dtype) -> None:
    x = (torch.rand(3, 8, 8) * 255).round().to(dtype)
    above = int((x.double() > 1).sum())
    message = rf"^images\[0\] has {above} of 192 values above 1 \(largest .*\).*divide it by 255.*uint8"
    with pytest.raises(AugrobustValueError, match=message):
        check_values(x, "images[0]")


def test_negative_values_are_refused_with_the_normalisation_hint() -> None:
    x = torch.rand(1, 3, 8, 8)
    x[0, 1, 2, 3] = -0.5
    with pytest.raises(AugrobustValueError, match=r"1 of 192 negative values \(smallest -0.5\).*x \* std \+ mean"):
        check_values(x, "x")


def test_tolerance_and_another_top() -> None:
    x = torch.tensor([-1e-3, 0.5, 1.0 + 1e-3])
    with pytest.raises(AugrobustValueError):
        check_values(x)
    assert check_values(x, atol=1e-2) is x
    y = torch.tensor([0.0, 128.0, 255.0])
    assert check_values(y, high=255.0) is y
    with pytest.raises(AugrobustValueError, match=r"1 of 3 values above 255 \(largest 256\).*\[0, 255\]"):
        check_values(torch.tensor([0.0, 256.0, 3.0]), high=255.0)


def test_not_a_tensor() -> None:
    with pytest.raises(AugrobustTypeError, match="x must be a torch.Tensor, got ndarray"):
        check_values(np.zeros(3), "x")


def test_does_not_modify_or_track_the_input() -> None:
    x = torch.rand(2, 3, 4, 4, requires_grad=True)
    before = x.detach().clone()
    assert check_values(x) is x
    assert torch.equal(x.detach(), before) and x.grad is None


# ---------------------------------------------------------------------------------------------- compat
# imagecorruptions' per-corruption functions accept float arrays on the 0..255 scale; compat checks them.


def test_compat_float_arrays_on_the_0_255_scale_are_accepted() -> None:
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    for dtype in (np.float32, np.float64):
        assert np.array_equal(brightness(img.astype(dtype), 2), brightness(img, 2))


@pytest.mark.parametrize(
    "value, message",
    [
        (np.nan, r"gaussian_noise: x has 1 NaN values \(of 3072\)"),
        (np.inf, r"gaussian_noise: x has 1 infinite values"),
        (300.0, r"gaussian_noise: x has 1 of 3072 values above 255 \(largest 300\)"),
        (-1.0, r"gaussian_noise: x has 1 of 3072 negative values"),
    ],
)
def test_compat_refuses_bad_float_arrays_with_a_clear_error(value: float, message: str) -> None:
    img = np.full((32, 32, 3), 100.0, dtype=np.float32)
    img[3, 4, 1] = value
    with pytest.raises(CompatInputError, match=message) as info:
        gaussian_noise(img, 1)
    assert isinstance(info.value, AttributeError)
