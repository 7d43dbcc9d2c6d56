"""pytest-benchmark: score-level losses, fused and forward-only, against the NumPy
reference, at N=1,000,000 x C=10 and at a CS231n minibatch N=200 x C=10, float32 and
float64. Run: pytest benchmarks --benchmark-only (with OPENBLAS_CORETYPE/L2_SIZE unset)."""

import numpy as np
import pytest

import fastloss as fl
import fastloss.reference as R

SHAPES = [(1_000_000, 10), (200, 10)]
DTYPES = [np.float32, np.float64]


def _data(N, C, dtype):
    rng = np.random.default_rng(0)
    return rng.normal(size=(N, C)).astype(dtype), rng.integers(0, C, N)


@pytest.mark.parametrize("N,C", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("impl", ["fastloss", "numpy"])
@pytest.mark.parametrize("loss", ["softmax", "hinge"])
@pytest.mark.parametrize("mode", ["fused", "forward"])
def test_score_loss(benchmark, N, C, dtype, impl, loss, mode):
    if impl == "numpy" and N > 100_000 and dtype == np.float64 and mode == "forward":
        pytest.skip("the reference's forward-only costs as much as its fused run")
    S, y = _data(N, C, dtype)
    grad = mode == "fused"
    fn = {("fastloss", "softmax"): fl.softmax_cross_entropy,
          ("fastloss", "hinge"): fl.multiclass_hinge,
          ("numpy", "softmax"): R.softmax_cross_entropy,
          ("numpy", "hinge"): R.multiclass_hinge}[(impl, loss)]
    benchmark.group = f"{loss} {mode} {N}x{C} {np.dtype(dtype).name}"
    benchmark(fn, S, y, grad=grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_copy_floor(benchmark, dtype):
    """The memory floor for reading scores and writing a gradient: one np.copyto."""
    S, _ = _data(1_000_000, 10, dtype)
    D = np.empty_like(S)
    benchmark.group = f"floor copyto 1000000x10 {np.dtype(dtype).name}"
    benchmark(np.copyto, D, S)
