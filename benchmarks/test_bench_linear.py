"""pytest-benchmark: linear_loss at the CIFAR-10 shape (49,000 x 3,073, C=10), the CS231n
minibatch (200 rows by indices), and the feature-pipeline shape (49,000 x 155), against
the NumPy reference, PyTorch where installed, and the floor: one streaming read of X."""

import numpy as np
import pytest

import fastloss as fl
import fastloss.reference as R

SHAPES = {"cifar": (49_000, 3073), "features": (49_000, 155)}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    out = {}
    for name, (N, D) in SHAPES.items():
        for dt in (np.float32, np.float64):
            X = rng.normal(size=(N, D)).astype(dt)
            W = (rng.normal(size=(D, 10)) * 1e-3).astype(dt)
            out[name, dt] = X, W, rng.integers(0, 10, N)
    return out


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("impl", ["fastloss", "numpy", "torch", "floor"])
@pytest.mark.parametrize("loss", ["softmax", "hinge"])
def test_linear_full(benchmark, data, shape, dtype, impl, loss):
    X, W, y = data[shape, dtype]
    benchmark.group = f"linear {loss} {shape} {np.dtype(dtype).name}"
    if impl == "fastloss":
        benchmark(fl.linear_loss, W, X, y, loss=loss, reg=1e-3)
    elif impl == "numpy":
        benchmark(R.linear_loss, W, X, y, loss=loss, reg=1e-3)
    elif impl == "floor":
        v = np.ones(X.shape[1], dtype)
        benchmark(np.dot, X, v)
    else:
        torch = pytest.importorskip("torch")
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

        def run():
            Wt = torch.from_numpy(W).requires_grad_()
            s = Xt @ Wt
            if loss == "softmax":
                out = torch.nn.functional.cross_entropy(s, yt)
            else:
                out = torch.nn.functional.multi_margin_loss(s, yt) * s.shape[1]
            out = out + 1e-3 * (Wt * Wt).sum()
            out.backward()
            return out.item(), Wt.grad
        benchmark(run)


@pytest.mark.parametrize("impl", ["fastloss", "numpy"])
def test_minibatch_by_indices(benchmark, data, impl):
    X, W, y = data["cifar", np.float32]
    idx = np.random.default_rng(1).choice(X.shape[0], 200)
    benchmark.group = "linear softmax minibatch 200 of 49000x3073 float32"
    if impl == "fastloss":
        benchmark(fl.linear_loss, W, X, y, indices=idx, reg=1e-3)
    else:
        benchmark(lambda: R.linear_loss(W, X[idx], y[idx], reg=1e-3))
