"""fastloss.datasets: digits, CIFAR-10 batches written here in the CIFAR format, npz."""

import pickle

import numpy as np
import pytest

from fastloss import datasets


def _write_batch(path, images, labels):
    """images (N, 32, 32, 3) uint8 -> the CIFAR-10 python batch format."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"x", b"data": data, b"labels": list(map(int, labels)),
                     b"filenames": [b"f"] * len(labels)}, f)


def test_load_digits():
    pytest.importorskip("sklearn")
    X, y, images = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and set(np.unique(y)) == set(range(10))
    np.testing.assert_array_equal(images.reshape(1797, 64), X)


def test_load_cifar10(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6 * 7, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, len(imgs))
    for i in range(5):
        _write_batch(tmp_path / f"data_batch_{i + 1}", imgs[7 * i:7 * i + 7],
                     labels[7 * i:7 * i + 7])
    _write_batch(tmp_path / "test_batch", imgs[35:], labels[35:])
    Xtr, ytr, Xte, yte = datasets.load_cifar10(tmp_path)
    assert Xtr.shape == (35, 32, 32, 3) and Xtr.dtype == np.uint8
    np.testing.assert_array_equal(Xtr, imgs[:35])
    np.testing.assert_array_equal(ytr, labels[:35])
    np.testing.assert_array_equal(Xte, imgs[35:])
    np.testing.assert_array_equal(yte, labels[35:])
    # the red plane comes first in a row of b"data"
    with open(tmp_path / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]
    np.testing.assert_array_equal(raw[0, :1024].reshape(32, 32), Xte[0, :, :, 0])
    Xf = datasets.load_cifar10(tmp_path, dtype=np.float32)[0]
    assert Xf.dtype == np.float32 and Xf.max() <= 255


def test_load_cifar10_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        datasets.load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError):
        datasets.load_cifar10(tmp_path / "nope")
    with open(tmp_path / "bad", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="3072"):
        datasets.load_cifar10_batch(tmp_path / "bad")


def test_load_npz(tmp_path):
    X = np.arange(12.0).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 0, 1])
    np.savez(tmp_path / "a.npz", X=X, y=y)
    d = datasets.load_npz(tmp_path / "a.npz")
    assert set(d) == {"X", "y"}
    np.testing.assert_array_equal(d["X"], X)
    np.savez(tmp_path / "b.npz", X_train=X, y_train=y, X_test=X[:2], y_test=y[:2])
    d = datasets.load_npz(tmp_path / "b.npz")
    assert set(d) == {"X_train", "y_train", "X_test", "y_test"}
    np.savez(tmp_path / "c.npz", A=X)
    with pytest.raises(ValueError, match="X and y"):
        datasets.load_npz(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", X=X, y=y[:3])
    with pytest.raises(ValueError, match="rows"):
        datasets.load_npz(tmp_path / "d.npz")


def test_load_cifar10_batch_not_a_pickle_or_out_of_range(tmp_path):
    from fastloss.datasets import load_cifar10

    folder = tmp_path / "c"
    folder.mkdir()
    for name in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(b"this is not a pickle")
    with pytest.raises(ValueError, match="not a CIFAR-10 batch"):
        load_cifar10(folder)
    for name in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": np.full((2, 3072), 300, np.int64), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"pixels in \[0, 255\]"):
        load_cifar10(folder)
