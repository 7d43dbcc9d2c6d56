"""Every error API.md names: a clear ValueError/TypeError naming the argument."""

import numpy as np
import pytest

import fastloss as fl

S = np.zeros((4, 3))
Y = np.array([0, 1, 2, 0])
LOSSES = [fl.multiclass_hinge, fl.softmax_cross_entropy]


@pytest.mark.parametrize("fn", LOSSES)
@pytest.mark.parametrize("bad", [np.zeros((4, 3), complex), np.zeros((4, 3), bool),
                                 np.array([["a"] * 3] * 4), np.zeros((4, 3), object)])
def test_scores_of_bad_dtype(fn, bad):
    with pytest.raises(TypeError, match="scores"):
        fn(bad, Y)


@pytest.mark.parametrize("fn", LOSSES)
def test_scores_of_bad_shape(fn):
    with pytest.raises(ValueError, match=r"scores must be a 2-D \(N, C\) array; got shape \(3,\)"):
        fn(np.zeros(3), Y)


@pytest.mark.parametrize("fn", LOSSES)
@pytest.mark.parametrize("bad", [np.array([0.0, 1, 2, 0]), np.array([True, False, True, False])])
def test_labels_of_bad_dtype(fn, bad):
    with pytest.raises(TypeError, match="y must hold integer class labels"):
        fn(S, bad)


@pytest.mark.parametrize("fn", LOSSES)
@pytest.mark.parametrize("labels,pos,val", [([0, 1, 3, 0], 2, 3), ([0, -1, 2, 7], 1, -1),
                                            ([0, 1, 2, 2**40], 3, 2**40)])
@pytest.mark.parametrize("kw", [{}, {"class_weight": [1.0, 2.0, 3.0]}, {"reduction": "sum"}])
def test_label_out_of_range_names_first_position(fn, labels, pos, val, kw):
    with pytest.raises(ValueError, match=rf"y\[{pos}\] = {val} is not a valid class label"):
        fn(S, np.array(labels), **kw)


def test_label_out_of_range_large_input_first_position():
    s = np.zeros((100_000, 10), np.float32)
    y = np.zeros(100_000, np.int64)
    y[70_000] = 10
    y[90_000] = -5
    for fn in LOSSES:
        with pytest.raises(ValueError, match=r"y\[70000\] = 10"):
            fn(s, y)


def test_uint64_labels_too_large():
    with pytest.raises(ValueError, match=r"y\[1\] = 18446744073709551615"):
        fl.multiclass_hinge(S, np.array([0, 2**64 - 1, 0, 0], np.uint64))


@pytest.mark.parametrize("fn", LOSSES)
def test_shape_mismatch_names_both_shapes(fn):
    with pytest.raises(ValueError, match=r"y has shape \(3,\) but scores has shape \(4, 3\)"):
        fn(S, [0, 1, 2])


def test_soft_target_shape_mismatch():
    with pytest.raises(ValueError, match=r"soft targets y have shape \(4, 2\)"):
        fl.softmax_cross_entropy(S, np.zeros((4, 2)))


@pytest.mark.parametrize("fn", LOSSES)
def test_mean_of_empty_batch(fn):
    with pytest.raises(ValueError, match="N == 0"):
        fn(np.zeros((0, 3)), np.zeros(0, int))


@pytest.mark.parametrize("fn", LOSSES)
@pytest.mark.parametrize("name,val,msg", [
    ("sample_weight", [1.0, -0.5, 1.0, 1.0], r"sample_weight\[1\] = -0.5 is negative"),
    ("sample_weight", [1.0, 1.0], r"sample_weight must have shape \(4,\)"),
    ("class_weight", [1.0, 1.0, -2.0], r"class_weight\[2\] = -2.0 is negative"),
    ("class_weight", [1.0, 1.0], r"class_weight must have shape \(3,\)"),
])
def test_bad_weights(fn, name, val, msg):
    with pytest.raises(ValueError, match=msg):
        fn(S, Y, **{name: val})


@pytest.mark.parametrize("fn", LOSSES)
@pytest.mark.parametrize("red", ["avg", "MEAN", None, 1])
def test_unknown_reduction(fn, red):
    with pytest.raises(ValueError, match="reduction must be one of"):
        fn(S, Y, reduction=red)


def test_unknown_variant():
    with pytest.raises(ValueError, match="variant must be one of"):
        fl.multiclass_hinge(S, Y, variant="ovr")


@pytest.mark.parametrize("eps", [-0.1, 1.5, float("nan")])
def test_label_smoothing_out_of_range(eps):
    with pytest.raises(ValueError, match="label_smoothing must be a finite number in"):
        fl.softmax_cross_entropy(S, Y, label_smoothing=eps)


@pytest.mark.parametrize("margin", [float("nan"), float("inf")])
def test_margin_not_finite(margin):
    with pytest.raises(ValueError, match="margin"):
        fl.multiclass_hinge(S, Y, margin=margin)


def test_margin_wrong_type():
    with pytest.raises(TypeError, match="margin must be a real number"):
        fl.multiclass_hinge(S, Y, margin="1")


@pytest.mark.parametrize("fn", LOSSES)
@pytest.mark.parametrize("nt,exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                    ("2", TypeError), (True, TypeError)])
def test_bad_n_threads(fn, nt, exc):
    with pytest.raises(exc, match="n_threads"):
        fn(S, Y, n_threads=nt)


def test_bad_flags():
    with pytest.raises(TypeError, match="squared must be True or False"):
        fl.multiclass_hinge(S, Y, squared="yes")
    with pytest.raises(TypeError, match="grad must be True or False"):
        fl.softmax_cross_entropy(S, Y, grad=1)


def test_softmax_bad_axis():
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):
        fl.softmax(S, axis=2)
    with pytest.raises(ValueError, match="at least one dimension"):
        fl.log_softmax(np.float64(1.0))


def test_ragged_input():
    with pytest.raises(ValueError, match="scores could not be read"):
        fl.multiclass_hinge([[1.0, 2.0], [1.0]], [0, 1])
