"""Comparison helpers for the tests."""

import numpy as np


def assert_close(actual, expected, rtol, what=""):
    """Elementwise |a - e| <= rtol * (|e| + max|e|): relative to each value, with an
    absolute floor at rtol times the array's largest magnitude (a gradient entry p - q near
    zero carries the rounding of p and q, which are O(max|e|)). NaNs must match."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if a.size == 0:
        return
    fin = np.isfinite(e)
    scale = np.abs(e[fin]).max() if fin.any() else 0.0
    np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, equal_nan=True, err_msg=what)
