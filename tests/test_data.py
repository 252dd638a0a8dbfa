"""Dataset readers: the synthetic set's determinism and splits, CIFAR pickles, image folders, CIFAR-10-C .npy.

All files are fakes written to tmp_path in the real on-disk formats; nothing is downloaded.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from augrobust.data import (
    CIFAR10,
    CIFAR100,
    SYNTHETIC_CLASSES,
    CorruptedNpyDataset,
    DatasetFileNotFoundError,
    ImageFolderDataset,
    SyntheticShapes,
    available_npy_corruptions,
)
from augrobust.errors import AugrobustError, AugrobustTypeError, AugrobustValueError

# ------------------------------------------------------------------------------------------- SyntheticShapes


def test_synthetic_items_are_uint8_chw_with_cycling_labels():
    ds = SyntheticShapes(25, seed=3, train=True)
    assert len(ds) == 25 and len(SYNTHETIC_CLASSES) == 10
    for i in (0, 9, 17, 24):
        image, label = ds[i]
        assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
        assert isinstance(label, int) and label == i % 10
    assert ds.targets == [i % 10 for i in range(25)]
    assert SyntheticShapes(3, size=64)[0][0].shape == (3, 64, 64)


def test_synthetic_item_depends_only_on_seed_split_and_index():
    a = SyntheticShapes(30, seed=5)
    forward = [a[i][0] for i in range(30)]
    backward = [SyntheticShapes(30, seed=5)[i][0] for reversed_i in range(30) for i in [29 - reversed_i]][::-1]
    assert all(torch.equal(f, b) for f, b in zip(forward, backward))
    # Growing the dataset does not change earlier items.
    assert torch.equal(SyntheticShapes(1000, seed=5)[7][0], forward[7])
    # Other seeds give other images.
    assert not torch.equal(SyntheticShapes(30, seed=6)[7][0], forward[7])
    assert torch.equal(a[-1][0], forward[29])


def test_synthetic_is_identical_with_dataloader_workers():
    ds = SyntheticShapes(24, seed=1, train=False)
    serial = torch.stack([ds[i][0] for i in range(24)])
    loaded = torch.cat([x for x, _ in DataLoader(ds, batch_size=5, num_workers=2)])
    assert torch.equal(serial, loaded)


def test_synthetic_train_and_test_splits_share_no_image():
    train = {SyntheticShapes(300, seed=0, train=True)[i][0].numpy().tobytes() for i in range(300)}
    test = {SyntheticShapes(300, seed=0, train=False)[i][0].numpy().tobytes() for i in range(300)}
    assert len(train) == 300 and len(test) == 300  # no duplicates inside a split either
    assert not train & test


def test_synthetic_textured_classes_carry_fine_detail_that_blur_removes():
    """stripes / checker / dots have 3.5-5 px periods: more high-frequency energy than any plain shape."""
    ds = SyntheticShapes(200, seed=0, train=False)

    def detail(label: int) -> float:
        xs = torch.stack([ds[i][0] for i in range(label, 200, 10)]).float()
        return float((xs[..., 1:] - xs[..., :-1]).abs().mean() + (xs[..., 1:, :] - xs[..., :-1, :]).abs().mean())

    plain = max(detail(c) for c in range(7))
    assert min(detail(c) for c in (7, 8, 9)) > 1.3 * plain  # measured: 1.49x


def test_synthetic_images_vary_in_colour_and_position():
    ds = SyntheticShapes(100, seed=0)
    xs = torch.stack([ds[i][0] for i in range(0, 100, 10)]).float()  # ten disks
    assert xs.mean(dim=(2, 3)).std(dim=0).min() > 20  # colours vary per channel
    assert xs.float().std() > 40


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (dict(n=-1), AugrobustValueError),
        (dict(n=5, size=4), AugrobustValueError),
        (dict(n=5, seed=-2), AugrobustValueError),
        (dict(n=2.5), AugrobustTypeError),
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs, error):
    n = kwargs.pop("n")
    with pytest.raises(error):
        SyntheticShapes(n, **kwargs)


def test_synthetic_index_out_of_range():
    with pytest.raises(IndexError):
        SyntheticShapes(3)[3]


# ------------------------------------------------------------------------------------------------- CIFAR


def _cifar_rows(n: int, offset: int) -> np.ndarray:
    rng = np.random.default_rng(offset)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _write_cifar10(folder, n_per_batch=3, str_keys=False):
    folder.mkdir(parents=True, exist_ok=True)
    k = (lambda s: s) if str_keys else (lambda s: s.encode())
    batches = {}
    for i, name in enumerate([*(f"data_batch_{j}" for j in range(1, 6)), "test_batch"]):
        rows = _cifar_rows(n_per_batch, i)
        labels = [(i + j) % 10 for j in range(n_per_batch)]
        batches[name] = (rows, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({k("data"): rows, k("labels"): labels, k("batch_label"): name}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({k("label_names"): [f"class{c}".encode() for c in range(10)]}, f)
    return batches


def test_cifar10_reads_channel_major_rows_and_labels(tmp_path):
    batches = _write_cifar10(tmp_path / "cifar-10-batches-py")
    train = CIFAR10(tmp_path)  # the parent folder is accepted
    assert len(train) == 15
    rows, labels = batches["data_batch_2"]
    image, label = train[3 + 1]  # second image of the second batch
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
    assert label == labels[1]
    # Row layout: 1024 red values, then green, then blue; each plane row-major.
    c, y, x = 2, 5, 7
    assert int(image[c, y, x]) == rows[1][c * 1024 + y * 32 + x]
    assert train.classes[3] == "class3"
    test = CIFAR10(tmp_path / "cifar-10-batches-py", train=False)
    assert len(test) == 3 and test[0][1] == batches["test_batch"][1][0]


def test_cifar100_reads_fine_labels_with_str_keys(tmp_path):
    rows = _cifar_rows(4, 9)
    with open(tmp_path / "test", "wb") as f:
        pickle.dump({"data": rows, "fine_labels": [99, 0, 42, 7], "coarse_labels": [1, 2, 3, 4]}, f)
    ds = CIFAR100(tmp_path, train=False)
    assert [ds[i][1] for i in range(4)] == [99, 0, 42, 7]
    assert torch.equal(ds[2][0], torch.from_numpy(rows[2].reshape(3, 32, 32)))


def test_cifar_missing_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1") as info:
        CIFAR10(tmp_path)
    assert isinstance(info.value, AugrobustError) and str(tmp_path) in str(info.value)
    with pytest.raises(DatasetFileNotFoundError, match="not found"):
        CIFAR10(tmp_path / "nowhere")


def test_cifar_malformed_batches_are_value_errors(tmp_path):
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(AugrobustValueError, match="3072"):
        CIFAR10(tmp_path, train=False)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, f)
    with pytest.raises(AugrobustValueError, match="2 images but 3 labels"):
        CIFAR10(tmp_path, train=False)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(AugrobustValueError):
        CIFAR10(tmp_path, train=False)


# -------------------------------------------------------------------------------------------- image folder


def test_image_folder_sorted_classes_rgb_uint8(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for cls in ("zebra", "ant"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            a = rng.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)
            arrays[(cls, i)] = a
            Image.fromarray(a).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    Image.fromarray(arrays[("ant", 0)][..., 0]).save(tmp_path / "ant" / "2_gray.png")  # grayscale -> RGB
    ds = ImageFolderDataset(tmp_path)
    assert ds.classes == ["ant", "zebra"] and len(ds) == 5
    image, label = ds[0]
    assert label == 0 and image.dtype == torch.uint8 and image.shape == (3, 12, 20)
    assert torch.equal(image, torch.from_numpy(arrays[("ant", 0)]).permute(2, 0, 1))
    gray, _ = ds[2]
    assert torch.equal(gray[0], gray[2]) and torch.equal(gray[1], torch.from_numpy(arrays[("ant", 0)][..., 0]))
    assert ds[4][1] == 1
    assert ImageFolderDataset(tmp_path, size=16)[0][0].shape == (3, 16, 16)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        ImageFolderDataset(tmp_path / "nope")
    with pytest.raises(AugrobustValueError, match="no class subfolders"):
        ImageFolderDataset(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(AugrobustValueError, match="no images"):
        ImageFolderDataset(tmp_path)
    (tmp_path / "a" / "broken.png").write_bytes(b"garbage")
    with pytest.raises(AugrobustValueError, match="cannot decode"):
        ImageFolderDataset(tmp_path)[0]


# ------------------------------------------------------------------------------------------ CIFAR-10-C .npy


def _write_npy(root, name="fog", n=4, h=32, w=32, labels=None):
    # Pixel value = 10 * severity + image index: easy to check which block was read.
    sev = np.repeat(np.arange(1, 6), n)
    idx = np.tile(np.arange(n), 5)
    arr = np.broadcast_to((10 * sev + idx).astype(np.uint8)[:, None, None, None], (5 * n, h, w, 3)).copy()
    np.save(root / f"{name}.npy", arr)
    np.save(root / "labels.npy", np.tile(np.arange(n) % 10, 5) if labels is None else labels)
    return arr


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_npy_reads_the_severity_block(tmp_path, severity):
    _write_npy(tmp_path, n=4)
    ds = CorruptedNpyDataset(tmp_path, "fog", severity)
    assert len(ds) == 4
    for i in range(4):
        image, label = ds[i]
        assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
        assert int(image[1, 4, 5]) == 10 * severity + i and label == i


def test_npy_accepts_n_labels_as_well_as_5n(tmp_path):
    _write_npy(tmp_path, n=3, labels=np.array([4, 5, 6]))
    assert [CorruptedNpyDataset(tmp_path, "fog", 2)[i][1] for i in range(3)] == [4, 5, 6]


def test_npy_unknown_corruption_lists_available_files(tmp_path):
    _write_npy(tmp_path, "fog")
    _write_npy(tmp_path, "snow")
    assert available_npy_corruptions(tmp_path) == ["fog", "snow"]
    with pytest.raises(FileNotFoundError, match=r"frost.*available: fog, snow") as info:
        CorruptedNpyDataset(tmp_path, "frost", 1)
    assert isinstance(info.value, AugrobustError)


@pytest.mark.parametrize("severity", [0, 6, -1])
def test_npy_rejects_severity_outside_1_to_5(tmp_path, severity):
    _write_npy(tmp_path)
    with pytest.raises(AugrobustValueError, match="1..5"):
        CorruptedNpyDataset(tmp_path, "fog", severity)


def test_npy_malformed_files(tmp_path):
    np.save(tmp_path / "labels.npy", np.zeros(10, np.int64))
    np.save(tmp_path / "gray.npy", np.zeros((10, 32, 32), np.uint8))
    with pytest.raises(AugrobustValueError, match=r"\(5\*N, H, W, 3\) uint8"):
        CorruptedNpyDataset(tmp_path, "gray", 1)
    np.save(tmp_path / "float.npy", np.zeros((10, 32, 32, 3), np.float32))
    with pytest.raises(AugrobustValueError, match="uint8"):
        CorruptedNpyDataset(tmp_path, "float", 1)
    np.save(tmp_path / "seven.npy", np.zeros((7, 32, 32, 3), np.uint8))
    with pytest.raises(AugrobustValueError, match="multiple of 5"):
        CorruptedNpyDataset(tmp_path, "seven", 1)
    np.save(tmp_path / "fog.npy", np.zeros((15, 32, 32, 3), np.uint8))  # N = 3, labels hold 10
    with pytest.raises(AugrobustValueError, match="expected 3 or 15"):
        CorruptedNpyDataset(tmp_path, "fog", 1)
    (tmp_path / "labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match="labels.npy"):
        CorruptedNpyDataset(tmp_path, "fog", 1)
    with pytest.raises(FileNotFoundError):
        CorruptedNpyDataset(tmp_path / "missing", "fog", 1)
