"""Data sets for the classifiers and the command line. Nothing is ever downloaded.

- ``load_digits()``: scikit-learn's built-in 8x8 digits (1,797 images, 10 classes; needs
  scikit-learn, whose copy ships with it).
- ``load_cifar10(folder)``: the CIFAR-10 "python version" batches you downloaded yourself
  (``data_batch_1`` .. ``data_batch_5``, ``test_batch``, as in CS231n's ``data_utils``).
- ``load_npz(path)``: your own arrays in a NumPy ``.npz`` file.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = ["load_digits", "load_cifar10", "load_cifar10_batch", "load_npz"]


def load_digits() -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """scikit-learn's digits: ``(X, y, images)``, X float64 (1797, 64) with pixel values
    0..16, y int64 (1797,) in 0..9, images float64 (1797, 8, 8) (row i of X is images[i]
    flattened)."""
    from ._extras import require

    require("sklearn", "fastloss.datasets.load_digits")
    from sklearn.datasets import load_digits as _sk

    d = _sk()
    return (np.asarray(d.data, np.float64), np.asarray(d.target, np.int64),
            np.asarray(d.images, np.float64))


def load_cifar10_batch(path: str | os.PathLike[str]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """One CIFAR-10 python batch: ``(X, y)``, X uint8 (N, 32, 32, 3), y int64 (N,).

    The file is a pickled dict with ``b"data"``: (N, 3072) uint8, each row the red, green
    and blue 32x32 planes one after the other, and ``b"labels"``: N ints in 0..9.
    Only open files you trust: this is ``pickle.load``.
    """
    with open(path, "rb") as f:
        try:
            d = pickle.load(f, encoding="bytes")
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
            raise ValueError(f"{path}: not a CIFAR-10 batch (not a pickle: {e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a CIFAR-10 batch (a pickled dict); got {type(d).__name__}")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: a CIFAR-10 batch needs the keys b'data' and b'labels'")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: b'data' must have shape (N, 3072); got {data.shape}")
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (data.shape[0],):
        raise ValueError(
            f"{path}: {y.shape[0]} labels for {data.shape[0]} images"
        )
    if data.dtype != np.uint8 and data.size and (data.min() < 0 or data.max() > 255):
        raise ValueError(f"{path}: b'data' must hold pixels in [0, 255]; got values in "
                         f"[{data.min()}, {data.max()}]")
    X = data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(X), y


def load_cifar10(
    folder: str | os.PathLike[str], *, dtype: DTypeLike = np.uint8
) -> tuple[NDArray[Any], NDArray[np.int64], NDArray[Any], NDArray[np.int64]]:
    """CIFAR-10 from the folder of its python batches (``cifar-10-batches-py``):
    ``(X_train, y_train, X_test, y_test)``, X (N, 32, 32, 3) (uint8 by default, or
    ``dtype`` such as np.float32 with values 0..255), y int64. Reads ``data_batch_1`` ..
    ``data_batch_5`` (those present, at least one) and ``test_batch``. Never downloads:
    get the archive from https://www.cs.toronto.edu/~kriz/cifar.html yourself."""
    folder = Path(os.fspath(folder))
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (the CIFAR-10 python batches)")
    train = [folder / f"data_batch_{i}" for i in range(1, 6)]
    train = [p for p in train if p.exists()]
    test = folder / "test_batch"
    if not train or not test.exists():
        raise FileNotFoundError(
            f"{folder} must hold data_batch_1 (.. data_batch_5) and test_batch, the "
            "CIFAR-10 python version (cifar-10-python.tar.gz, unpacked)"
        )
    parts = [load_cifar10_batch(p) for p in train]
    Xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    Xte, yte = load_cifar10_batch(test)
    return (Xtr.astype(dtype, copy=False), ytr, Xte.astype(dtype, copy=False), yte)


def load_npz(path: str | os.PathLike[str]) -> dict[str, NDArray[Any]]:
    """Arrays from a ``.npz`` file, as a dict with the keys found:

    - ``X`` and ``y``: one data set (the caller splits it), or
    - ``X_train``, ``y_train``, ``X_test``, ``y_test``: a fixed split (and optionally
      ``X_val``, ``y_val``).

    X may be (N, D) features or (N, H, W) / (N, H, W, 3) images of real numbers, every X of
    one row shape. Object arrays are refused (``allow_pickle=False``); a file that is not a
    NumPy ``.npz`` archive raises ValueError saying so."""
    path = os.fspath(path)
    with open(path, "rb") as f:  # (a missing file: FileNotFoundError names it)
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip archive's first bytes
        raise ValueError(f"{path} is not a .npz archive (the file is not a zip archive; "
                         "write it with numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if {"X", "y"} <= keys:
                names = ["X", "y"]
            elif {"X_train", "y_train", "X_test", "y_test"} <= keys:
                names = ["X_train", "y_train", "X_test", "y_test"]
                if {"X_val", "y_val"} <= keys:
                    names += ["X_val", "y_val"]
            else:
                raise ValueError(
                    f"{path}: expected the arrays X and y, or X_train, y_train, X_test, "
                    f"y_test; found {sorted(keys)}"
                )
            out = {k: z[k] for k in names}
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ValueError(f"{path} is not a readable .npz archive: {e}") from None
    for k in names:
        a = out[k]
        if not isinstance(a, np.ndarray):  # (a member that is not a .npy file: its bytes)
            raise ValueError(f"{path} is not a .npz archive of arrays: {k} is not a .npy file")
        if k.startswith("y") and a.ndim != 1:
            raise ValueError(f"{path}: {k} must be 1-D; got shape {a.shape}")
        if k.startswith("X"):
            if a.dtype.kind not in "iuf":
                raise ValueError(f"{path}: {k} must hold real numbers (integers or floats); "
                                 f"got dtype {a.dtype}")
            if not (a.ndim in (2, 3) or (a.ndim == 4 and a.shape[3] == 3)):
                raise ValueError(
                    f"{path}: {k} must be (N, D) features, (N, H, W) grayscale or "
                    f"(N, H, W, 3) colour images; got shape {a.shape}"
                )
    for xk, yk in zip(names[0::2], names[1::2]):
        if out[xk].shape[0] != out[yk].shape[0]:
            raise ValueError(
                f"{path}: {xk} has {out[xk].shape[0]} rows but {yk} has {out[yk].shape[0]}"
            )
    for xk in names[2::2]:
        if out[xk].shape[1:] != out[names[0]].shape[1:]:
            raise ValueError(
                f"{path}: {xk} has rows of shape {out[xk].shape[1:]} but {names[0]} has rows "
                f"of shape {out[names[0]].shape[1:]} (shapes {out[xk].shape} and "
                f"{out[names[0]].shape})"
            )
    return out
