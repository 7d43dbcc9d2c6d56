"""Inputs that used to give a misleading message or a silent wrong answer: sparse
matrices, Python ints beyond int64, pandas nullable dtypes, the CS231n loss before
train(), empty images, and bad data files and paths on the command line."""

from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pytest

import fastloss as fl
import fastloss.features as F
from fastloss import cli, datasets, reference


# ---- sparse, big ints, pandas -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["csr_matrix", "csr_array", "coo_matrix"])
def test_sparse_input_says_sparse_and_toarray(kind):
    import scipy.sparse as sp  # (the test extra installs SciPy and pandas)
    S = getattr(sp, kind)(np.eye(3))
    y = np.zeros(3, np.int64)
    for call in (lambda: fl.softmax_cross_entropy(S, y),
                 lambda: fl.multiclass_hinge(S, y),
                 lambda: fl.softmax(S),
                 lambda: fl.linear_loss(np.zeros((3, 2)), S, np.zeros(3, np.int64))):
        with pytest.raises(TypeError, match=r"sparse .*not supported.*toarray\(\)"):
            call()


def test_python_ints_beyond_int64_are_integers():
    S = [[2**64, 1], [3, -(2**70)]]
    y = np.array([0, 1])
    got = fl.softmax_cross_entropy(S, y, reduction="none")
    want = reference.softmax_cross_entropy(np.array(S, dtype=np.float64), y, reduction="none")
    np.testing.assert_array_equal(got[0] if isinstance(got, tuple) else got,
                                  want[0] if isinstance(want, tuple) else want)
    X = [[2**64, 1.0]]
    loss = fl.linear_loss(np.zeros((2, 3)), X, [1], grad=False)
    assert loss == pytest.approx(np.log(3.0), rel=1e-12)
    with pytest.raises(TypeError, match="real numbers"):  # still: not everything
        fl.softmax([[2**64, "a"]])
    with pytest.raises(TypeError, match="real numbers"):
        fl.softmax([[2**64, True]])


def test_pandas_nullable_float64_frame():
    import pandas as pd
    X = np.array([[0.5, -1.0], [2.0, 0.25], [1.0, 1.0]])
    df = pd.DataFrame(X).astype("Float64")
    W = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -0.5]])
    y = np.array([0, 2, 1])
    got = fl.linear_loss(W, df, y)
    want = fl.linear_loss(W, X, y)
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    df.iloc[1, 1] = pd.NA  # a missing value: NaN, as scikit-learn reads it
    assert np.isnan(fl.softmax(df)[1]).all()
    np.testing.assert_array_equal(fl.softmax(df)[0], fl.softmax(X)[0])


def test_cs231n_loss_before_train_says_train_first():
    from sklearn.exceptions import NotFittedError

    from fastloss.classifiers import LinearSVM, Softmax

    X = np.ones((4, 3))
    y = np.array([0, 1, 0, 1])
    for cls in (Softmax, LinearSVM):
        with pytest.raises(NotFittedError, match=r"call train\(\)"):
            cls().loss(X, y, 0.1)


# ---- empty images -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 5, 3), (5, 0, 3)])
def test_hue_histogram_of_an_empty_image_raises(shape):
    with pytest.raises(ValueError, match="at least one pixel"):
        F.color_histogram_hsv(np.zeros(shape))


@pytest.mark.parametrize("shape", [(2, 0, 4, 3), (2, 4, 0, 3)])
def test_extract_features_of_empty_images_raises(shape):
    with pytest.raises(ValueError, match="at least one pixel"):
        F.extract_features(np.zeros(shape), [F.color_histogram_hsv])
    with pytest.raises(ValueError, match="at least 8 x 8"):
        F.extract_features(np.zeros(shape), [F.hog_feature])


# ---- data files and the command line ----------------------------------------------------


def _train(tmp_path, data, *extra):
    return cli.main(["train", "--data", str(data), "--iters", "5", "--quiet",
                     "--out", str(tmp_path / "out"), *extra])


def _digits(n=300):
    X, y, _ = datasets.load_digits()
    return X[:n], y[:n]


def test_npz_zip_signature_with_garbage(tmp_path):
    f = tmp_path / "bad.npz"
    f.write_bytes(b"PK\x03\x04" + b"\x00garbage" * 50)
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        datasets.load_npz(f)
    with pytest.raises(SystemExit, match="not a readable .npz archive"):
        _train(tmp_path, f)


def test_npz_plain_text_is_not_an_archive(tmp_path):
    f = tmp_path / "text.npz"
    f.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(SystemExit) as e:
        _train(tmp_path, f)
    msg = str(e.value)
    assert "is not a .npz archive" in msg and "pickle" not in msg


def test_npz_zip_without_arrays(tmp_path):
    f = tmp_path / "z.npz"
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("X.npy", b"not an npy file")
        z.writestr("y.npy", b"nor this")
    with pytest.raises(SystemExit, match="z.npz"):
        _train(tmp_path, f)


@pytest.mark.parametrize(
    "X, message",
    [
        (np.ones((40, 6)) + 1j, r"X must hold real numbers .*complex128"),
        (np.array(3.0), r"X must be \(N, D\) features.*got shape \(\)"),
        (np.ones((40, 2, 2, 2, 2)), r"X must be \(N, D\) features.*\(40, 2, 2, 2, 2\)"),
        (np.ones((40, 4, 4, 2)), r"X must be \(N, D\) features.*\(40, 4, 4, 2\)"),
        (np.array(["a", "b"]), r"X must hold real numbers"),
    ],
)
def test_npz_bad_X(tmp_path, X, message):
    f = tmp_path / "x.npz"
    np.savez(f, X=X, y=np.arange(len(X) if X.ndim else 1) % 2)
    with pytest.raises(SystemExit, match=message):
        _train(tmp_path, f)


def test_npz_test_features_differ_from_train(tmp_path):
    f = tmp_path / "s.npz"
    y = np.arange(40) % 2
    np.savez(f, X_train=np.ones((40, 6)), y_train=y, X_test=np.ones((10, 3)), y_test=y[:10])
    with pytest.raises(SystemExit, match=r"X_test has rows of shape \(3,\) but X_train has "
                                         r"rows of shape \(6,\)"):
        _train(tmp_path, f)


def test_data_path_that_does_not_exist_or_is_a_folder(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        _train(tmp_path, tmp_path / "nonexistent" / "folder")
    with pytest.raises(SystemExit, match=f"cifar10:{tmp_path}"):
        _train(tmp_path, tmp_path)


def test_too_few_rows_per_class_for_the_split(tmp_path):
    f = tmp_path / "six.npz"
    np.savez(f, X=np.arange(12.0).reshape(6, 2), y=np.array([0, 0, 0, 1, 1, 1]))
    with pytest.raises(SystemExit) as e:
        _train(tmp_path, f)
    msg = str(e.value)
    assert "6 rows in 2 classes are too few" in msg and "test_size" not in msg
    assert "at least 18 rows and 3 or more per class" in msg


def test_test_class_never_in_training_warns(tmp_path, capsys):
    X, y = _digits(400)
    yte = y[:50].copy()
    yte[:5] = 10  # a class the training rows never have
    f = tmp_path / "s.npz"
    np.savez(f, X_train=X[:300], y_train=y[:300], X_test=X[300:350], y_test=yte)
    with pytest.warns(UserWarning, match=r"test labels \[10\] never occur in the training"):
        assert _train(tmp_path, f) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every label seen: no warning
        np.savez(f, X_train=X[:300], y_train=y[:300], X_test=X[300:350], y_test=y[:50])
        assert _train(tmp_path, f) == 0
