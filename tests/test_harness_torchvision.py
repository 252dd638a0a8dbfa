"""torchvision's own test pattern (``check_transform`` / ``check_kernel``), in this project's words, over every entry.

For the torchvision-v2 form of every entry of the transform registry: pickle and deepcopy round trips keep the
behaviour, the batched kernel equals the per-sample kernel when the draw is replayed, an empty batch works,
``tv_tensors`` Image / Video come back as their own type and Mask / BoundingBoxes / KeyPoints / labels pass
through untouched, PIL input gives PIL output, uint8 and the four float dtypes keep their dtype, the input is
never changed in place, the transform works inside ``v2.Compose`` and ``v2.RandomApply``. Any warning fails a
check. (Real DataLoader workers: tests/test_workers.py, for every entry and both forms.)
"""

from __future__ import annotations

import copy
import pickle

import PIL.Image
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from tests.registry_cases import LABELS, REGISTRY, SIZE, images

pytestmark = pytest.mark.filterwarnings("error")  # a warning from any check is a failure

@pytest.fixture(params=LABELS)
def entry(request):
    return REGISTRY[request.param]


@pytest.mark.parametrize("copier", [copy.deepcopy, lambda t: pickle.loads(pickle.dumps(t))], ids=["deepcopy", "pickle"])
def test_copies_keep_the_behaviour(entry, copier):
    x = images(2)
    original = entry.v2(seed=5)
    clone = copier(original)
    assert torch.equal(clone(x), original(x))
    used = entry.v2(seed=5)
    used(x)  # a copy of a used transform continues its stream
    assert torch.equal(copier(used)(x), used(x))


def test_batched_kernel_equals_per_sample_kernel_with_the_draw_replayed(entry):
    op = entry.v2(seed=2, p=0.5).op
    x = images(4)
    params = op.draw(x)
    batched = op.apply_drawn(x, params)
    for i in range(x.shape[0]):
        single = op.apply_drawn(x[i : i + 1], op.select_params(params, i))
        torch.testing.assert_close(single, batched[i : i + 1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("lead", [(0,), (5, 0), (0, 5), (2, 1)])
def test_empty_and_multi_dimensional_batches(entry, lead):
    x = torch.rand(*lead, 3, SIZE, SIZE)
    y = entry.v2(seed=0)(x)
    assert y.shape == x.shape and y.dtype == x.dtype


def test_a_repeated_image_with_a_shared_draw_equals_the_repeated_output(entry):
    """check_kernel's batched-vs-unbatched: kernel(x.repeat(n)) == kernel(x).repeat(n), here with one shared draw."""
    x = images(1)
    single = entry.v2(seed=3, same_on_batch=True, p=1.0)(x)
    repeated = entry.v2(seed=3, same_on_batch=True, p=1.0)(x.repeat(2, 1, 1, 1))
    torch.testing.assert_close(repeated, single.repeat(2, 1, 1, 1), rtol=0, atol=1e-6)


def test_tv_tensors_keep_their_type_and_the_others_pass_through(entry):
    image = tv_tensors.Image(images(1)[0])
    video = tv_tensors.Video(images(2))  # (T, C, H, W)
    mask = tv_tensors.Mask(torch.ones(SIZE, SIZE, dtype=torch.uint8))
    boxes = tv_tensors.BoundingBoxes([[1, 2, 10, 12]], format="XYXY", canvas_size=(SIZE, SIZE))
    points = tv_tensors.KeyPoints([[3.0, 4.0], [20.0, 5.0]], canvas_size=(SIZE, SIZE))
    sample = {"image": image, "video": video, "mask": mask, "boxes": boxes, "points": points, "label": 3}
    out = entry.v2(seed=0, p=1.0)(sample)
    assert type(out["image"]) is tv_tensors.Image and out["image"].shape == image.shape
    assert type(out["video"]) is tv_tensors.Video and out["video"].shape == video.shape
    assert not torch.equal(out["image"], image) and not torch.equal(out["video"], video)
    for key in ("mask", "boxes", "points", "label"):
        assert out[key] is sample[key]
    only_video = entry.v2(seed=0, p=1.0)(video)
    assert type(only_video) is tv_tensors.Video and not torch.equal(only_video, video)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_pil_in_pil_out(entry, mode):
    array = images(1, torch.uint8)[0].permute(1, 2, 0).numpy()
    pil = PIL.Image.fromarray(array).convert(mode)
    channels = 3 if mode == "RGB" else 1
    op = entry.v2(seed=0).op
    if op.channels is not None and channels not in op.channels:
        return  # the transform's channel count is fixed (its generators); the error is tested in the contract
    out = entry.v2(seed=0, p=1.0)(pil)
    assert isinstance(out, PIL.Image.Image) and out.mode == mode and out.size == pil.size


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_every_dtype_is_kept_and_the_input_is_not_changed(entry, dtype):
    x = images(2, dtype)
    before, version = x.clone(), x._version
    y = entry.v2(seed=0)(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.equal(x, before) and x._version == version
    if dtype != torch.uint8:
        assert torch.isfinite(y.float()).all() and y.min() >= 0 and y.max() <= 1


def test_inside_compose_and_random_apply(entry):
    image = tv_tensors.Image(images(1, torch.uint8)[0])
    composed = v2.Compose([v2.ToDtype(torch.float32, scale=True), entry.v2(seed=0, p=1.0), v2.Identity()])
    out, label = composed(image, 4)
    assert type(out) is tv_tensors.Image and out.dtype == torch.float32 and label == 4
    float_image = v2.ToDtype(torch.float32, scale=True)(image)
    assert torch.equal(out, entry.v2(seed=0, p=1.0)(float_image, 4)[0])  # the same sample (DFMX reads the label)
    assert torch.equal(v2.RandomApply([entry.v2(seed=0)], p=0.0)(float_image), float_image)
    applied = v2.RandomApply([entry.v2(seed=0, p=1.0)], p=1.0)(float_image)
    assert type(applied) is tv_tensors.Image and not torch.equal(applied, float_image)
