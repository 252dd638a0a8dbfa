"""kornia's own test pattern (``BaseTester`` and tests/augmentation), in this project's words, over every entry.

For every entry of the transform registry (the kornia form, and the v2 form where the clause applies):
cardinality, ``p=0`` is the identity and ``p=1`` always applies, ``same_on_batch`` gives identical samples
(the coin included), replay with ``params=`` gives the identical output, ``AugmentationSequential`` with
``input`` / ``mask`` / ``bbox_xyxy`` / ``keypoints`` and ``.inverse``, a float64 batch draws the same inside
a container as in a direct call, ``VideoSequential`` with ``same_on_frame`` True and False, CPU autocast
(bfloat16; the input's dtype comes back), gradcheck in float64 with the draw held fixed (for transforms
that declare ``differentiable``; the others still run on a ``requires_grad`` input), half-precision inputs,
and a clear error for replayed parameters of another batch size. Any warning fails a check.
"""

from __future__ import annotations

import kornia.augmentation as K
import pytest
import torch

from augrobust.errors import AugrobustValueError
from tests.registry_cases import LABELS, REGISTRY, SIZE, images
from tests.test_kernels_autograd import FLOAT32_INTERNALS

pytestmark = pytest.mark.filterwarnings("error")  # a warning from any check is a failure

@pytest.fixture(params=LABELS)
def entry(request):
    return REGISTRY[request.param]


def test_cardinality(entry):
    aug = entry.build(seed=0)
    for shape in [(2, 3, SIZE, SIZE), (3, SIZE, SIZE), (0, 3, SIZE, SIZE)]:
        x = torch.rand(shape)
        assert aug(x).shape == x.shape
    kornia_default = entry.build(seed=0, keepdim=False)
    assert kornia_default(torch.rand(3, SIZE, SIZE)).shape == (1, 3, SIZE, SIZE)


def test_p0_is_identity_and_p1_always_applies(entry):
    x = images(3)
    for form in (entry.build, entry.v2):
        assert torch.equal(form(seed=0, p=0.0)(x), x)
        for seed in range(3):
            y = form(seed=seed, p=1.0)(x)
            assert (y != x).flatten(1).any(1).all(), f"p=1 left a sample unchanged (seed {seed})"


@pytest.mark.parametrize("form", ["kornia", "v2"])
def test_same_on_batch_gives_identical_samples_coin_included(entry, form):
    x = images(1).expand(4, -1, -1, -1).contiguous()
    applied = set()
    for seed in range(6):
        build = entry.build if form == "kornia" else entry.v2
        y = build(seed=seed, same_on_batch=True, p=0.5)(x)
        assert (y == y[:1]).all(), f"same_on_batch drew per sample (seed {seed})"
        applied.add(bool((y[0] != x[0]).any()))
    assert applied == {True, False}, "six coins at p=0.5 all came out the same way"


def test_replay_with_params_gives_the_identical_output(entry):
    x = images(4)
    aug = entry.build(seed=1, p=0.5)
    y = aug(x)
    assert torch.equal(aug(x, params=aug._params), y)
    params = aug.draw(x)
    assert torch.equal(aug(x, params=params), aug.apply_drawn(x, params))


@pytest.mark.parametrize("other", [1, 3, 5])
def test_replayed_params_of_another_batch_size_raise(entry, other):
    aug = entry.build(seed=1, p=0.5)
    aug(images(4))
    params = aug._params
    with pytest.raises(AugrobustValueError, match="rows but the input batch has"):
        aug(images(other), params=params)
    with pytest.raises(AugrobustValueError, match="rows but the input batch has"):
        aug.apply_drawn(images(other), aug.draw(images(4)))
    v2_form = entry.v2(seed=1)  # the v2 form replays through the same route
    with pytest.raises(AugrobustValueError, match="rows but the input batch has"):
        v2_form.op.apply_drawn(images(other), v2_form.op.draw(images(4)))


def test_augmentation_sequential_with_every_data_key_and_inverse(entry):
    x = images(2)
    mask = (torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    boxes = torch.tensor([[[2.0, 3.0, 20.0, 25.0]], [[0.0, 0.0, 31.0, 31.0]]])
    points = torch.tensor([[[4.0, 5.0], [10.0, 30.0]], [[1.0, 1.0], [16.0, 8.0]]])
    seq = K.AugmentationSequential(entry.build(seed=0, p=1.0), data_keys=["input", "mask", "bbox_xyxy", "keypoints"])
    y, m, b, k = seq(x, mask, boxes, points)
    assert y.shape == x.shape and not torch.equal(y, x)
    assert torch.equal(m, mask) and torch.equal(b, boxes) and torch.equal(k, points)
    y2, *_ = seq(x, mask, boxes, points, params=seq._params)
    assert torch.equal(y2, y)
    _, mi, bi, ki = seq.inverse(y, m, b, k)
    assert torch.equal(mi, mask) and torch.equal(bi, boxes) and torch.equal(ki, points)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_container_draws_what_a_direct_call_draws(entry, dtype):
    """kornia containers draw before they see the input: the draw must not depend on the dtype."""
    x = images(3, dtype)
    direct = entry.build(seed=4, p=0.5)(x)
    contained = K.AugmentationSequential(entry.build(seed=4, p=0.5))(x)
    torch.testing.assert_close(contained, direct, rtol=0, atol=0)


@pytest.mark.parametrize("same_on_frame", [True, False])
def test_video_sequential(entry, same_on_frame):
    frames = 3
    clip = images(2).unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()  # (B, C, T, H, W), frames alike
    video = K.VideoSequential(entry.build(seed=0, p=1.0), data_format="BCTHW", same_on_frame=same_on_frame)
    out = video(clip)
    assert out.shape == clip.shape
    changed = (out != clip).flatten(3).any(-1).any(1)  # (B, T)
    assert changed.all(), f"frames left untouched at p=1: {(~changed).sum().item()} of {changed.numel()}"
    if same_on_frame:  # one draw per clip, repeated per frame: identical frames stay identical
        assert (out == out[:, :, :1]).all()
    else:
        assert not (out == out[:, :, :1]).all()
    assert torch.equal(video(clip, params=video._params), out)


def test_video_sequential_same_on_frame_and_same_on_batch(entry):
    """kornia draws one sample's parameters and tiles them over every frame of every clip."""
    clip = images(1).unsqueeze(2).expand(2, -1, 3, -1, -1).contiguous()  # two identical clips of identical frames
    aug = entry.build(seed=0, p=1.0, same_on_batch=True)
    out = K.VideoSequential(aug, data_format="BCTHW", same_on_frame=True)(clip)
    assert (out == out[:1, :, :1]).all() and not torch.equal(out, clip)


@pytest.mark.parametrize("form", ["kornia", "v2"])
def test_autocast_cpu_bfloat16_returns_the_input_dtype(entry, form):
    build = entry.build if form == "kornia" else entry.v2
    x = images(2)
    expected = build(seed=0)(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = build(seed=0)(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    assert (y - expected).abs().mean() < 0.05  # the same draw, computed at lower precision


@pytest.mark.parametrize("form", ["kornia", "v2"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(entry, dtype, form):
    build = entry.build if form == "kornia" else entry.v2
    x = images(2, dtype)
    y = build(seed=0)(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.isfinite(y.float()).all() and y.min() >= 0 and y.max() <= 1
    reference = build(seed=0)(x.float())
    assert (y.float() - reference).abs().mean() < 0.05


def test_gradcheck_with_the_draw_fixed(entry):
    size = max(16, entry.build().min_size)  # small: gradcheck's cost grows with the number of pixels
    aug = entry.build((3, size, size), seed=0, p=1.0)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = (0.1 + 0.8 * x).requires_grad_(True)
    params = aug.draw(x.detach())
    if not aug.differentiable:  # documented as not differentiable: it must still run on a requires_grad input
        y = aug.apply_drawn(x, params)
        assert y.shape == x.shape and torch.isfinite(y).all()
        return
    # gradcheck skips outputs that do not require grad, so a graph dropped silently must be caught first.
    assert aug.apply_drawn(x, params).requires_grad, "the output dropped the autograd graph"
    # Kernels that follow the reference's float32 arithmetic need a float32-sized step (see FLOAT32_INTERNALS).
    float32_inside = getattr(aug, "name", None) in FLOAT32_INTERNALS
    tol = dict(eps=1e-3, atol=1e-3, rtol=1e-2) if float32_inside else dict(atol=1e-5, rtol=1e-3)
    torch.autograd.gradcheck(lambda t: aug.apply_drawn(t, params), (x,), fast_mode=True, **tol)
