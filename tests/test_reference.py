"""The NumPy reference itself: naive loops equal the vectorized code, hand-checked values,
and it never imports the compiled module."""

import subprocess
import sys

import numpy as np
import pytest

import fastloss.reference as R


@pytest.mark.parametrize("variant", ["weston_watkins", "crammer_singer"])
@pytest.mark.parametrize("squared", [False, True])
def test_hinge_naive_equals_vectorized(variant, squared):
    rng = np.random.default_rng(0)
    s = rng.normal(size=(40, 7))
    y = rng.integers(0, 7, 40)
    l1, d1 = R.multiclass_hinge_naive(s, y, variant=variant, squared=squared)
    l2, d2 = R.multiclass_hinge(s, y, variant=variant, squared=squared)
    assert l1 == pytest.approx(l2, rel=1e-12)
    np.testing.assert_allclose(d1, d2, rtol=1e-12, atol=1e-15)


def test_softmax_naive_equals_vectorized():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(30, 5))
    y = rng.integers(0, 5, 30)
    l1, d1 = R.softmax_cross_entropy_naive(s, y)
    l2, d2 = R.softmax_cross_entropy(s, y)
    assert l1 == pytest.approx(l2, rel=1e-12)
    np.testing.assert_allclose(d1, d2, rtol=1e-12, atol=1e-15)


def test_crammer_singer_hand_checked():
    s = np.array([[1.0, 3.0, 3.0, 0.0]])
    loss, d = R.multiclass_hinge(s, [0], variant="crammer_singer")
    assert loss == 3.0  # max over j != 0 is 3 (lowest index 1): 3 - 1 + 1
    np.testing.assert_array_equal(d, [[-1.0, 1.0, 0.0, 0.0]])


def test_label_smoothing_and_class_weight_like_pytorch_hand_checked():
    s = np.log(np.array([[0.5, 0.25, 0.25]]))
    cw = np.array([2.0, 1.0, 1.0])
    eps = 0.3
    # -(1-eps) cw_y log p_y - eps/C sum_c cw_c log p_c, divided by cw_y
    expect = (0.7 * 2 * np.log(2) + 0.1 * (2 * np.log(2) + np.log(4) + np.log(4))) / 2
    assert R.softmax_cross_entropy(s, [0], label_smoothing=eps, class_weight=cw,
                                   grad=False) == pytest.approx(expect, rel=1e-14)


def test_reference_never_imports_core():
    code = ("import sys, fastloss.reference; "
            "print('fastloss._core' in sys.modules)")
    # fastloss/__init__ imports _core; the reference module file itself must not.
    src = open(R.__file__).read()
    assert "_core" not in src.replace("fastloss._core``", "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0
