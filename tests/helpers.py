"""Comparison helpers for the tests."""

import numpy as np


def assert_close(actual, expected, rtol, what="", scale=0.0):
    """Elementwise |a - e| <= rtol * (|e| + max|e|): relative to each value, with an
    absolute floor at rtol times the array's largest magnitude (a gradient entry p - q near
    zero carries the rounding of p and q, which are O(max|e|)). NaNs must match."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if a.size == 0:
        return
    fin = np.isfinite(e)
    scale = max(scale, np.abs(e[fin]).max() if fin.any() else 0.0)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, equal_nan=True, err_msg=what)


def grad_scale(N, reduction, sample_weight=None, class_weight=None, margin=1.0):
    """The magnitude of the terms that make a loss gradient's entries: the largest sample
    weight, over the mean's denominator for reduction="mean"."""
    w = 1.0
    if sample_weight is not None and len(sample_weight):
        w *= float(np.max(sample_weight))
    if class_weight is not None and len(class_weight):
        w *= float(np.max(class_weight))
    w *= max(1.0, abs(margin))
    return w / max(N, 1) if reduction == "mean" else w
