"""A typed use of fastloss, checked by mypy --strict in tests/test_typing.py (not a test
module itself: it is never imported by the tests). It reaches the compiled module through
its stubs (fastloss/_core.pyi), so a wrong stub, or a stub missing from the installed
package, makes mypy fail here."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

import fastloss
from fastloss import _core


def hinge_and_grad(
    scores: npt.NDArray[np.float32], y: npt.NDArray[np.int64]
) -> tuple[float, npt.NDArray[Any]]:
    """The CS231n hinge loss and its gradient, through the private kernel."""
    n, c = scores.shape
    grad = _core.empty(n, c, scores.dtype)
    loss: float = _core.score_loss(
        scores, y, None, None, None, 0, 1.0, False, 0.0, 2, grad, None, 1, 0.0, None
    )
    return loss, grad


def log_probabilities(scores: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    out = np.empty_like(scores)
    _core.softmax_rows(scores, out, True, _core.max_threads())
    return out


def hue_ok(images: npt.NDArray[np.uint8]) -> bool:
    edges = np.linspace(0.0, 255.0, 11)
    out = np.empty((images.shape[0], 10))
    err = _core.hue_histogram(images, edges, 255.0, True, False, out, 1)
    if err is None:
        return True
    image, pixel = err
    return image < 0 and pixel < 0


def simd_level() -> str:
    info = _core.build_info()
    active: str = info["isa_active"]
    threads: int = info["max_threads"]
    openmp: bool = info["openmp"]
    return f"{active} ({threads} threads, OpenMP {openmp})"


def public_api() -> None:
    scores = np.array([[3.2, 5.1, -1.7]], dtype=np.float32)
    labels = np.array([0], dtype=np.int64)
    fastloss.multiclass_hinge(scores, labels)
    fastloss.softmax_cross_entropy(scores, labels, grad=False)
    info: dict[str, Any] = fastloss.build_info()
    print(info["isa_active"], simd_level(), hinge_and_grad(scores, labels)[0])
    fastloss.show_config()
    _core.pool_clear()
    print(log_probabilities(scores.astype(np.float64)), hue_ok(np.zeros((1, 4, 4, 3), np.uint8)))
    W = np.zeros((3, 3))
    X = np.ones((2, 3))
    loss, dW = fastloss.linear_loss(W, X, np.array([0, 1]), reg=1e-3)
    fastloss.SGD([W], lr=0.1, momentum=0.9).step([dW])
    print(loss, softmax_linear(W, X, np.array([0, 1], np.int64))[0])


def sgd_momentum_step(
    w: npt.NDArray[np.float32], dw: npt.NDArray[np.float32], v: npt.NDArray[np.float32]
) -> None:
    _core.sgd_update(w.ravel(), dw.ravel(), v.ravel(), 1e-3, 0.9, 1.0, 0.0, False, False, False, 1)


def softmax_linear(
    W: npt.NDArray[np.float64], X: npt.NDArray[np.float64], y: npt.NDArray[np.int64]
) -> tuple[float, npt.NDArray[np.float64]]:
    dW = np.zeros_like(W)
    total, data, reg = _core.linear_loss(
        W, X, y, None, None, None, None, None, 2, 1.0, False, 0.0, 2, 1e-3, 0, 0.5, dW, None, 1
    )
    assert abs(total - (data + reg)) <= 1e-12 * abs(total)
    return total, dW


def annotated_api(scores: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> float:
    """The public, annotated functions (mypy --strict without --allow-untyped-calls)."""
    loss, _dscores = fastloss.multiclass_hinge(scores, y, margin=1.0)
    ce = fastloss.softmax_cross_entropy(scores, y, label_smoothing=0.1, grad=False)
    p: npt.NDArray[np.floating[Any]] = fastloss.softmax(scores, axis=-1)
    W = np.zeros((scores.shape[1], 3))
    total, dW = fastloss.linear_loss(W, scores, y, loss="hinge", reg=1e-3)
    opt = fastloss.SGD([W], lr=0.1, momentum=0.9)
    opt.step([dW])
    err: float = fastloss.grad_check_sparse(
        lambda w: float(fastloss.svm_loss_vectorized(w, scores, y, 0.0)[0]), W, dW
    )
    feats = fastloss.features.hog_batch(np.zeros((2, 16, 16)))
    fastloss.show_config()
    return float(loss) + float(ce) + float(p.sum()) + float(total) + err + float(feats.sum())
