"""Hostile and malformed data files: every reader refuses them with an error that names the file.

CIFAR pickles are read through a restricted unpickler (a crafted file cannot run code); CIFAR-10-C-style
arrays, CIFAR batches and image folders are checked for shape, dtype, emptiness, label count and label range
(also against a model's ``num_classes``); :func:`augrobust.data.from_spec` parses every ``--data`` spec. All
files are written by the tests in the real on-disk formats.
"""

from __future__ import annotations

import os
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from augrobust._pickle import safe_pickle_load
from augrobust.data import (
    CIFAR10,
    CIFAR100,
    DATA_SPECS,
    CorruptedNpyDataset,
    DatasetFileNotFoundError,
    ImageFolderDataset,
    SyntheticShapes,
    check_labels,
    dataset_targets,
    from_spec,
)
from augrobust.errors import AugrobustTypeError, AugrobustValueError

# ------------------------------------------------------------------------------------- restricted unpickling


class _Hostile:
    """Pickles as a call of os.system: plain pickle.load would run the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def test_the_hostile_pickle_really_runs_code_with_plain_pickle(tmp_path):
    """The attack of the tests below is real: plain pickle.load executes it."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps({b"data": _Hostile(f"touch {marker}")}))
    assert marker.exists()


@pytest.mark.parametrize("target", ["test_batch", "batches.meta"])
def test_crafted_cifar_pickle_is_refused_and_runs_nothing(tmp_path, target):
    marker = tmp_path / "pwned"
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": _rows(2), b"labels": [1, 2]}, f)
    with open(tmp_path / target, "wb") as f:
        pickle.dump({b"data": _Hostile(f"touch {marker}"), b"labels": [1, 2], b"label_names": []}, f)
    with pytest.raises(AugrobustValueError) as info:
        CIFAR10(tmp_path, train=False)
    message = str(info.value)
    assert "refusing to load" in message and str(tmp_path / target) in message
    assert "system" in message and "cannot run code" in message
    assert not marker.exists()


def test_restricted_unpickler_refuses_other_globals_and_non_latin1_codecs(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"f": print}))
    with pytest.raises(AugrobustValueError, match=r"builtins\.print"):
        safe_pickle_load(path, what="CIFAR batch")
    # _codecs.encode is admitted for latin1 only (what Python 3 writes for bytes at protocol 2).
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(AugrobustValueError, match="latin1"):
        safe_pickle_load(path, what="CIFAR batch")
    path.write_bytes(b"\x80\x02")  # truncated
    with pytest.raises(AugrobustValueError, match="not a readable CIFAR batch"):
        safe_pickle_load(path, what="CIFAR batch")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_genuine_cifar_pickles_of_every_protocol_load(tmp_path, protocol):
    rows, labels = _rows(3, protocol), [4, 0, 9]
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": rows, b"labels": labels, b"batch_label": b"testing batch 1 of 1",
                     b"filenames": [b"a.png", b"b.png", b"c.png"]}, f, protocol=protocol)  # fmt: skip
    with open(tmp_path / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)], b"num_vis": 3072}, f, protocol=protocol)
    ds = CIFAR10(tmp_path, train=False)
    assert [ds[i][1] for i in range(3)] == labels and ds.classes[9] == "c9"
    assert torch.equal(ds[1][0], torch.from_numpy(rows[1].reshape(3, 32, 32)))


def _py2_cifar_pickle(rows: np.ndarray, labels: list[int]) -> bytes:
    """The byte layout of the official (Python 2 cPickle, protocol 2) CIFAR files, assembled opcode by opcode:
    str keys as SHORT_BINSTRING, the array via numpy.core.multiarray._reconstruct and a BINSTRING buffer."""

    def sbs(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b

    n = rows.shape[0]
    out = b"\x80\x02}q\x01(" + sbs(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + sbs(b"b") + b"\x87R"
    out += b"(K\x01M" + struct.pack("<H", n) + b"M\x00\x0c\x86"  # version 1, shape (n, 3072)
    out += b"cnumpy\ndtype\n" + sbs(b"u1") + b"K\x00K\x01\x87R"
    out += b"(K\x03" + sbs(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # dtype state
    out += b"\x89T" + struct.pack("<I", rows.nbytes) + rows.tobytes() + b"tb"  # not fortran, raw data
    out += sbs(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return out + b"u."


def test_python2_cifar_pickle_layout_loads(tmp_path):
    rows = _rows(2, 7)
    (tmp_path / "test_batch").write_bytes(_py2_cifar_pickle(rows, [3, 8]))
    ds = CIFAR10(tmp_path, train=False)
    assert [ds[0][1], ds[1][1]] == [3, 8]
    assert torch.equal(ds[1][0], torch.from_numpy(rows[1].reshape(3, 32, 32)))


# ------------------------------------------------------------------------------------------- CIFAR checks


def _cifar_test_batch(folder, data, labels, key=b"labels", name="test_batch"):
    with open(folder / name, "wb") as f:
        pickle.dump({b"data": data, key: labels}, f)
    return folder / name


@pytest.mark.parametrize(
    ("data", "labels", "kwargs", "match"),
    [
        (_rows(2), [0, 10], {}, r"0\.\.9 \(10 classes of CIFAR10\).*index 1: 10"),
        (_rows(2), [-1, 3], {}, r"0\.\.9.*-1"),
        (_rows(2), [0, 7], {"num_classes": 5}, r"0\.\.4 \(5 classes of the model\).*model with 10 classes"),
        (np.zeros((0, 3072), np.uint8), [], {}, "holds no images"),
        (_rows(2), [0, 1, 2], {}, "2 images but 3 labels"),
        (_rows(2), [[0, 1]], {}, "1-D"),
        (np.zeros((2, 3072), np.float32), [0, 1], {}, r"\(N, 3072\) uint8"),
    ],
)
def test_cifar_bad_batches_name_the_file(tmp_path, data, labels, kwargs, match):
    path = _cifar_test_batch(tmp_path, data, labels)
    with pytest.raises(AugrobustValueError, match=match) as info:
        CIFAR10(tmp_path, train=False, **kwargs)
    assert str(path) in str(info.value)


def test_cifar_float_labels_and_missing_entry(tmp_path):
    _cifar_test_batch(tmp_path, _rows(2), [0.0, 1.5])
    with pytest.raises(AugrobustTypeError, match="integers"):
        CIFAR10(tmp_path, train=False)
    path = _cifar_test_batch(tmp_path, _rows(2), [0, 1], key=b"coarse_labels", name="test")
    with pytest.raises(AugrobustValueError, match="lacks the 'data' or 'fine_labels'") as info:
        CIFAR100(tmp_path, train=False)
    assert str(path) in str(info.value)


def test_cifar_num_classes_at_least_the_dataset_s_is_accepted(tmp_path):
    _cifar_test_batch(tmp_path, _rows(2), [0, 9])
    assert len(CIFAR10(tmp_path, train=False, num_classes=10)) == 2
    assert len(CIFAR10(tmp_path, train=False, num_classes=100)) == 2
    with pytest.raises(AugrobustValueError, match="num_classes"):
        CIFAR10(tmp_path, train=False, num_classes=0)


# ---------------------------------------------------------------------------------------- CIFAR-10-C checks


def _npy_folder(root, images, labels, name="fog"):
    np.save(root / f"{name}.npy", images)
    np.save(root / "labels.npy", labels)
    return root / f"{name}.npy", root / "labels.npy"


def _stack(n, h=8, w=8):
    return np.zeros((5 * n, h, w, 3), np.uint8)


@pytest.mark.parametrize(
    ("images", "labels", "kwargs", "match", "names"),
    [
        (_stack(0), np.zeros(0, np.int64), {}, "holds no image", "fog.npy"),
        (np.zeros((10, 0, 8, 3), np.uint8), np.zeros(2, np.int64), {}, "holds no image", "fog.npy"),
        (_stack(2), np.array([0, -1]), {}, r">= 0.*-1", "labels.npy"),
        (_stack(2), np.array([0, 12] * 5), {"num_classes": 10}, r"0\.\.9 \(10 classes of the model\)", "labels.npy"),
        (_stack(2), np.zeros((2, 5), np.int64), {}, "1-D", "labels.npy"),
        (_stack(2), np.zeros(3, np.int64), {}, "expected 2 or 10", "labels.npy"),
        (np.zeros((10, 8, 8, 3), np.int16), np.zeros(2, np.int64), {}, r"\(5\*N, H, W, 3\) uint8", "fog.npy"),
        (np.zeros((10, 8, 8), np.uint8), np.zeros(2, np.int64), {}, r"\(5\*N, H, W, 3\) uint8", "fog.npy"),
    ],
)
def test_npy_bad_files_name_the_file(tmp_path, images, labels, kwargs, match, names):
    _npy_folder(tmp_path, images, labels)
    with pytest.raises(AugrobustValueError, match=match) as info:
        CorruptedNpyDataset(tmp_path, "fog", 1, **kwargs)
    assert str(tmp_path / names) in str(info.value)


def test_npy_float_labels_are_a_type_error(tmp_path):
    _npy_folder(tmp_path, _stack(2), np.array([0.0, 1.0]))
    with pytest.raises(AugrobustTypeError, match="integers"):
        CorruptedNpyDataset(tmp_path, "fog", 1)


def test_npy_labels_within_num_classes_are_accepted(tmp_path):
    _npy_folder(tmp_path, _stack(2), np.array([0, 9] * 5))
    ds = CorruptedNpyDataset(tmp_path, "fog", 4, num_classes=10)
    assert ds.targets == [0, 9] and ds.severity == 4


# ---------------------------------------------------------------------------------------------- folder checks


def test_folder_with_more_classes_than_the_model_is_refused(tmp_path):
    for cls in ("a", "b", "c"):
        (tmp_path / cls).mkdir()
        Image.new("RGB", (4, 4)).save(tmp_path / cls / "x.png")
    assert len(ImageFolderDataset(tmp_path, num_classes=3)) == 3
    with pytest.raises(AugrobustValueError, match=r"3 class folders but the model has 2.*\['c'\]") as info:
        ImageFolderDataset(tmp_path, num_classes=2)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(AugrobustValueError, match="size"):
        ImageFolderDataset(tmp_path, size=0)


# --------------------------------------------------------------------------------------------- check_labels


def test_check_labels_and_dataset_targets():
    assert check_labels(np.array([2, 0], np.uint8), 3, source="x").dtype == np.int64
    with pytest.raises(AugrobustTypeError):
        check_labels([True, False], 2, source="x")
    with pytest.raises(AugrobustValueError, match="found 2 outside"):
        check_labels([5, 0, 7], 5, source="x", classes_of="the model")
    ds = SyntheticShapes(20)
    assert dataset_targets(torch.utils.data.Subset(ds, [3, 17])).tolist() == [3, 7]
    assert dataset_targets(torch.utils.data.TensorDataset(torch.zeros(2))) is None


# -------------------------------------------------------------------------------------------------- from_spec


def test_from_spec_synthetic_matches_the_trainer_and_eval_defaults():
    train, test = from_spec("synthetic:50", train=True, seed=3), from_spec("synthetic:50", train=False, seed=3)
    assert (len(train), len(test)) == (50, 10) and train.train and not test.train and train.seed == 3
    assert len(from_spec("synthetic", train=True)) == 10_000
    assert len(from_spec("synthetic", train=False)) == 2000  # eval's default test size
    assert len(from_spec("synthetic:3", train=False)) == 1
    small = from_spec("synthetic", train=False, num_images=7, image_size=16, seed=1)
    assert len(small) == 7 and small[0][0].shape == (3, 16, 16)
    assert torch.equal(small[6][0], SyntheticShapes(7, seed=1, train=False, size=16)[6][0])


def test_from_spec_files(tmp_path):
    c10 = tmp_path / "c10"
    c10.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        _cifar_test_batch(c10, _rows(4), [1, 2, 3, 4], name=name)
    assert len(from_spec(f"cifar10:{c10}", train=True)) == 20
    head = from_spec(f"cifar10:{c10}", train=False, num_images=2)
    assert len(head) == 2 and head.targets == [1, 2] and len(head.classes) == 10
    assert dataset_targets(head).tolist() == [1, 2]
    with pytest.raises(AugrobustValueError, match="model"):
        from_spec(f"cifar10:{c10}", train=False, num_classes=3)
    with pytest.raises(AugrobustValueError, match="32 x 32"):
        from_spec(f"cifar10:{c10}", train=False, image_size=64)
    c100 = tmp_path / "c100"
    c100.mkdir()
    _cifar_test_batch(c100, _rows(2), [99, 5], key=b"fine_labels", name="test")
    assert from_spec(f"cifar100:{c100}", train=False)[0][1] == 99
    folder = tmp_path / "imgs"
    (folder / "cat").mkdir(parents=True)
    Image.new("RGB", (10, 6)).save(folder / "cat" / "a.png")
    assert from_spec(f"folder:{folder}", train=True, image_size=5)[0][0].shape == (3, 5, 5)


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("mnist:/x", AugrobustValueError, "unknown data spec 'mnist:/x'; valid: synthetic, synthetic:N, cifar10:DIR"),
        ("cifar:/x", AugrobustValueError, "did you mean 'cifar10'"),
        ("cifar10", AugrobustValueError, "needs a folder"),
        ("folder:", AugrobustValueError, "needs a folder"),
        ("synthetic:abc", AugrobustValueError, "positive integer N"),
        ("synthetic:0", AugrobustValueError, "positive integer N"),
        ("cifar10:/does/not/exist", DatasetFileNotFoundError, "/does/not/exist"),
        (None, AugrobustTypeError, "string"),
    ],
)
def test_from_spec_errors_list_the_valid_specs(spec, error, match):
    with pytest.raises(error, match=match):
        from_spec(spec, train=False)


def test_from_spec_argument_checks():
    assert "folder:DIR" in DATA_SPECS
    with pytest.raises(AugrobustTypeError, match="train"):
        from_spec("synthetic", train=1)
    with pytest.raises(AugrobustValueError, match="num_images"):
        from_spec("synthetic", train=False, num_images=0)
    with pytest.raises(AugrobustValueError, match="10 classes but the model has 4"):
        from_spec("synthetic", train=False, num_classes=4)
