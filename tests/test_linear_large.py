"""The large-C path of linear_loss (BLAS scores chunk by chunk, loss rows in place):
the same results as the fused path and the reference, bounded memory, dX."""

import numpy as np
import pytest
from helpers import assert_close

import fastloss as fl
import fastloss.reference as R


@pytest.mark.parametrize("C", [2000, 2500])
@pytest.mark.parametrize("loss,kw", [("softmax", {}), ("softmax", {"label_smoothing": 0.1}),
                                     ("hinge", {}), ("hinge", {"variant": "crammer_singer"})])
def test_large_c_matches_reference(C, loss, kw):
    rng = np.random.default_rng(C)
    N, D = 300, 64
    X = rng.normal(size=(N, D))
    W = rng.normal(size=(D, C)) * 0.05
    b = rng.normal(size=C)
    y = rng.integers(0, C, N)
    idx = rng.integers(0, N, 200)
    sw = rng.random(N) + 0.1
    cw = rng.random(C) + 0.1
    for extra in [{}, dict(b=b, indices=idx, sample_weight=sw, class_weight=cw, reg=0.01)]:
        args = dict(loss=loss, **kw, **extra)
        out = fl.linear_loss(W, X, y, memory_budget=50 * C * 8, **args)  # several chunks
        ref = R.linear_loss(W, X, y, **args)
        assert_close(out[0], ref[0], 1e-12, "loss")
        for o, r in zip(out[1:], ref[1:]):
            assert_close(o, r, 1e-12, "grad", scale=np.abs(X).max() * 4)
        fused = fl.linear_loss(W, X, y, method="fused", **args)
        assert_close(out[0], fused[0], 1e-12)
        assert_close(out[1], fused[1], 1e-12, scale=np.abs(X).max() * 4)


def test_chunked_equals_fused_small_c_float32():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 40)).astype(np.float32)
    W = (rng.normal(size=(40, 10)) * 0.1).astype(np.float32)
    y = rng.integers(0, 10, 500)
    a = fl.linear_loss(W, X, y, method="chunked", memory_budget=4000)
    b = fl.linear_loss(W, X, y, method="fused")
    assert a[1].dtype == np.float32
    assert_close(a[0], b[0], 1e-5)
    assert_close(a[1], b[1], 1e-5, scale=4.0)


def test_return_dX():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 12))
    W = rng.normal(size=(12, 300)) * 0.1
    y = rng.integers(0, 300, 50)
    idx = np.array([3, 3, 7, 49])
    loss, dW, dX = fl.linear_loss(W, X, y, indices=idx, return_dX=True)
    Xs = X[idx]
    n = fl.numerical_gradient(lambda x: float(fl.linear_loss(W, x, y[idx], grad=False)),
                              Xs.copy(), h=1e-6)
    np.testing.assert_allclose(dX, n, rtol=1e-6, atol=1e-9)
    _, dS = R.softmax_cross_entropy(Xs @ W, y[idx])
    assert_close(dX, dS @ W.T, 1e-12)


def test_large_c_label_error_names_position():
    X = np.zeros((4, 3))
    W = np.zeros((3, 300))
    with pytest.raises(ValueError, match=r"y\[2\] = 300 is not a valid class label"):
        fl.linear_loss(W, X, np.array([0, 1, 300, 2]))


def test_method_option_checked():
    with pytest.raises(ValueError, match="method must be one of"):
        fl.linear_loss(np.zeros((3, 2)), np.zeros((4, 3)), [0, 1, 0, 1], method="blas")
