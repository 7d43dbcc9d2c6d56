"""The short-row ("lanes") kernels' fast paths and the plain-call entry point.

Short rows (C <= 16) are computed W rows at a time, one row per SIMD lane: whole-vector
loads and transposes when the rows allow it, the exponentials with one range test per
group of rows, the label's score gathered from its row. These tests pin what those
shortcuts must not change: the reference's values for every class count and row stride,
a row's result independent of the other rows of its group, and the plain call
(`_core.score_plain`, taken by the public functions for default arguments) giving the
general path's bits.
"""

import numpy as np
import pytest

import fastloss as fl
import fastloss.reference as R
from fastloss import _core

TOL = {np.float32: 2e-5, np.float64: 1e-12}


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("C", list(range(1, 17)))
def test_short_rows_every_class_count_and_stride(dt, C):
    rng = np.random.default_rng(C)
    tol = TOL[dt]
    for N in (7, 9, 16, 33, 40, 205, 411):  # partial groups, groups at block and array ends
        for extra in (0, 1, 13):  # row stride C (contiguous) and wider (a column slice)
            S = (rng.normal(size=(N, C + extra)) * 3).astype(dt)[:, :C]
            y = rng.integers(0, C, N)
            for fn, ref in ((fl.softmax_cross_entropy, R.softmax_cross_entropy),
                            (fl.multiclass_hinge, R.multiclass_hinge)):
                for red in ("mean", "none"):
                    loss, g = fn(S, y, reduction=red)
                    lr, gr = ref(S.astype(np.float64), y, reduction=red)
                    np.testing.assert_allclose(loss, lr, rtol=tol, atol=tol)
                    np.testing.assert_allclose(g, gr, rtol=tol, atol=tol)
                    assert g.dtype == dt and g.flags.c_contiguous


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("C", [2, 3, 8, 10, 16])
def test_row_independent_of_its_group(dt, C):
    # One row whose exponentials underflow to subnormals takes its group of rows through the
    # split scaling: the other rows' results must keep the same bits.
    rng = np.random.default_rng(7)
    N = 64
    S = rng.normal(size=(N, C)).astype(dt)
    y = rng.integers(0, C, N)
    S2 = S.copy()
    far = 100.0 if dt == np.float32 else 730.0
    S2[5, 0] = S2[5].max() + far  # exp(s - max) of row 5's other classes: subnormal or 0
    _, g = fl.softmax_cross_entropy(S, y, reduction="sum")
    _, g2 = fl.softmax_cross_entropy(S2, y, reduction="sum")
    others = np.arange(N) != 5
    np.testing.assert_array_equal(g[others], g2[others])
    lr, gr = R.softmax_cross_entropy(S2[5:6].astype(np.float64), y[5:6], reduction="sum")
    np.testing.assert_allclose(g2[5], gr[0].astype(dt), rtol=TOL[dt], atol=np.finfo(dt).tiny * C)
    p = fl.softmax(S2)
    q = np.exp(S2.astype(np.float64) - S2.max(1, keepdims=True).astype(np.float64))
    q /= q.sum(1, keepdims=True)
    np.testing.assert_allclose(p, q.astype(dt), rtol=TOL[dt], atol=np.finfo(dt).smallest_subnormal * 4)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("fn", [fl.softmax_cross_entropy, fl.multiclass_hinge])
def test_plain_call_equals_general_path(dt, fn):
    rng = np.random.default_rng(3)
    for N, C in ((1, 1), (200, 10), (1000, 3), (5000, 37)):
        S = rng.normal(size=(N, C)).astype(dt)
        y = rng.integers(0, C, N)
        loss, g = fn(S, y)  # the plain call
        for nt in (1, 2):
            l2, g2 = fn(S, y, n_threads=nt)  # the general path
            assert type(loss) is type(l2) and loss.dtype == dt
            assert loss == l2
            np.testing.assert_array_equal(g, g2)
        code = 2 if fn is fl.softmax_cross_entropy else 0
        l3, g3 = _core.score_plain(S, y, code, 1.0, False, 0.0, 2, True, 0, None, None)
        assert l3 == loss
        np.testing.assert_array_equal(g3, g)
        # the loss alone (grad=False), plain and general, is the fused call's loss
        l4 = fn(S, y, grad=False)
        assert type(l4) is type(loss) and l4 == loss
        assert _core.score_plain(S, y, code, 1.0, False, 0.0, 2, False, 0, None, None) == loss
        assert fn(S, y, grad=False, n_threads=1) == loss


def test_plain_call_declines_what_it_does_not_check():
    S = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    y = np.arange(20) % 4
    for args in (
        (S.tolist(), y),  # not an array
        (np.asfortranarray(S), y),  # not C-contiguous
        (S[:, :3], y),  # strided rows
        (S.astype(">f4"), y),  # not native
        (S.astype(np.float16), y),  # not float32/float64
        (S, y.astype(np.uint64)),  # labels not int64 or narrower
        (S, y.astype(">i8")),  # not native
        (S, y.astype(np.float64)),  # not integers
        (S, y[:-1]),  # lengths differ
        (S[:0], y[:0]),  # empty ("mean" of nothing: the general path explains)
        (np.ma.masked_array(S), y),  # a subclass
        (S, y.tolist()),
    ):
        assert _core.score_plain(args[0], args[1], 2, 1.0, False, 0.0, 2, True, 0, None, None) is None
        assert _core.score_plain(args[0], args[1], 2, 1.0, False, 0.0, 2, False, 0, None, None) is None
    # narrower integer labels are widened: the int64 call's results, and its errors
    loss, g = fl.softmax_cross_entropy(S, y)
    for dt in (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32):
        l2, g2 = _core.score_plain(S, y.astype(dt), 2, 1.0, False, 0.0, 2, True, 0, None, None)
        assert l2 == loss
        np.testing.assert_array_equal(g2, g)
    with pytest.raises(ValueError, match=r"y\[5\] = -3 is not a valid class label"):
        fl.softmax_cross_entropy(S, np.where(np.arange(20) == 5, -3, y).astype(np.int32))
    with pytest.raises(ValueError, match=r"y\[2\] = 4294967295 is not a valid class label"):
        fl.multiclass_hinge(S, np.where(np.arange(20) == 2, 2**32 - 1, y).astype(np.uint32))
    with pytest.raises(ValueError, match=r"y\[3\] = 9"):
        y_bad = y.copy()
        y_bad[3] = 9
        fl.softmax_cross_entropy(S, y_bad)
    with pytest.raises(ValueError, match=r"y\[0\] = -1"):
        fl.multiclass_hinge(S, np.full(20, -1))
    with pytest.raises(ValueError, match=r"y\[0\] = -1"):
        fl.softmax_cross_entropy(S, np.full(20, -1), grad=False)
    # the public functions still take every one of those through the general path
    loss, g = fl.softmax_cross_entropy(np.asfortranarray(S), y.astype(np.int32))
    lr, gr = R.softmax_cross_entropy(S.astype(np.float64), y)
    np.testing.assert_allclose(loss, lr, rtol=1e-5)
    np.testing.assert_allclose(g, gr, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("fn", [fl.softmax_cross_entropy, fl.multiclass_hinge])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_plain_call_with_weights_equals_general_path(dt, fn, reduction):
    """Weights of the scores' dtype go through the plain C call; labels as a list take the
    general path (converted in Python): the same bits, and the reference's values."""
    rng = np.random.default_rng(11)
    S = rng.normal(size=(300, 10)).astype(dt)
    y = rng.integers(0, 10, 300)
    sw = rng.random(300).astype(dt)
    cw = rng.random(10).astype(dt)
    for kw in ({"sample_weight": sw}, {"class_weight": cw}, {"sample_weight": sw, "class_weight": cw}):
        loss, g = fn(S, y, reduction=reduction, **kw)
        l2, g2 = fn(S, y.tolist(), reduction=reduction, **kw)
        assert type(loss) is type(l2) and loss.dtype == dt
        np.testing.assert_array_equal(loss, l2)
        np.testing.assert_array_equal(g, g2)
        ref = R.softmax_cross_entropy if fn is fl.softmax_cross_entropy else R.multiclass_hinge
        kw64 = {k: w.astype(np.float64) for k, w in kw.items()}
        lr, gr = ref(S.astype(np.float64), y, reduction=reduction, **kw64)
        tol = 1e-5 if dt == np.float32 else 1e-12
        np.testing.assert_allclose(loss, lr, rtol=tol, atol=tol)
        np.testing.assert_allclose(g, gr, rtol=tol, atol=tol * 1e-2)
    # weights that "mean" rescales (all tiny) take the general path: the unweighted mean
    tiny = np.full(300, 1e-30, dt)
    if reduction == "mean":
        np.testing.assert_allclose(fn(S, y, sample_weight=tiny)[0], fn(S, y)[0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"sample_weight\[7\] = -0\.5 is negative"):
        fn(S, y, sample_weight=np.where(np.arange(300) == 7, -0.5, sw).astype(dt))
