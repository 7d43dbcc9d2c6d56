"""Accuracy of our own exp (cpp/include/fastloss/vmath.hpp): at most 2 ulp.

exp is not exported, but two public results return it unchanged: with scores [0, x] and
x far enough below 0 that 1 + e^x rounds to 1, softmax gives e^x for the second class
(the general row kernel's exp, with the split scaling), and the softmax cross-entropy
gradient of the second class under reduction="sum" and label 0 is e^x too (the short-row
kernel's exp: one multiply by 2^n where no lane can be subnormal, the split scaling
otherwise). Both are compared with exp in higher precision over the whole range where
the result is a normal number, and the subnormal range in units of the subnormal spacing.
"""

import numpy as np
import pytest

import fastloss as fl

# x in [lo, hi]: 1 + e^x == 1 in the type, and e^x is a normal number
NORMAL = {np.float32: (-87.3, -17.5), np.float64: (-708.3, -37.5)}
SUBNORMAL = {np.float32: (-103.0, -87.4), np.float64: (-744.0, -708.5)}


def _exact(x, dt):
    """exp(x) in long double (float64 for float32 inputs is exact enough), as the type."""
    wide = np.longdouble if dt == np.float64 else np.float64
    return np.exp(x.astype(wide))


def _ulp_error(got, x, dt, subnormal):
    ref = _exact(x, dt)
    if subnormal:  # the spacing of the subnormals: the smallest positive number
        unit = np.finfo(dt).smallest_subnormal
    else:
        unit = np.spacing(ref.astype(dt)).astype(ref.dtype)
    return np.abs(got.astype(ref.dtype) - ref) / unit


def _through_softmax(x, dt):
    S = np.stack([np.zeros_like(x), x], axis=1)
    return fl.softmax(S)[:, 1]


def _through_gradient(x, dt):
    S = np.stack([np.zeros_like(x), x], axis=1)
    _, G = fl.softmax_cross_entropy(S, np.zeros(len(x), np.int64), reduction="sum")
    return G[:, 1]


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("route", [_through_softmax, _through_gradient])
def test_exp_within_2_ulp(dt, route):
    rng = np.random.default_rng(7)
    lo, hi = NORMAL[dt]
    x = np.concatenate([np.linspace(lo, hi, 200_001), rng.uniform(lo, hi, 200_000)]).astype(dt)
    got = route(x, dt)
    err = _ulp_error(got, x, dt, subnormal=False)
    assert err.max() <= 2.0, (x[err.argmax()], got[err.argmax()], err.max())
    # the errors are real rounding errors, not all zero (a test that cannot fail is none)
    assert err.mean() > 0.01


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("route", [_through_softmax, _through_gradient])
def test_exp_subnormal_results(dt, route):
    lo, hi = SUBNORMAL[dt]
    x = np.linspace(lo, hi, 50_001).astype(dt)
    got = route(x, dt)
    assert np.all(got >= 0) and np.any(got > 0)
    err = _ulp_error(got, x, dt, subnormal=True)
    assert err.max() <= 1.0, (x[err.argmax()], got[err.argmax()], err.max())


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_exp_far_below_is_zero_and_near_zero_is_one(dt):
    x = np.array([-1e30, -1e4, -800.0, -0.0, 0.0], dt)
    got = _through_softmax(x, dt)
    np.testing.assert_array_equal(got[:3], 0.0)
    np.testing.assert_array_equal(got[3:], 0.5)  # e^0 / (1 + e^0)
