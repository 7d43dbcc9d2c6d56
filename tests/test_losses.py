"""Score-level losses against the NumPy reference, hand-checked values and numerical
gradients, over hypothesis-generated shapes, dtypes, layouts and options."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from helpers import assert_close, grad_scale

import fastloss as fl
import fastloss.reference as R

RTOL = {np.float64: 1e-12, np.float32: 1e-5}


def ref64(fn, scores, y, **kw):
    """The reference computed in float64 (the oracle for both dtypes)."""
    kw = {k: (np.asarray(v, np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
          for k, v in kw.items()}
    yy = np.asarray(y, np.float64) if np.asarray(y).ndim == 2 else y
    return fn(np.asarray(scores, np.float64), yy, **kw)


# ---- the lecture's worked examples --------------------------------------------------

CAT = np.array([[3.2, 5.1, -1.7]])


def test_lecture_hinge_cat_example():
    loss, d = fl.multiclass_hinge(CAT, [0])
    assert loss == pytest.approx(2.9, abs=1e-12)  # max(0, 5.1-3.2+1) + max(0, -1.7-3.2+1)
    np.testing.assert_array_equal(d, [[-1.0, 1.0, 0.0]])


def test_lecture_hinge_three_images():
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]]).T  # columns
    loss = fl.multiclass_hinge(scores.T, [0, 1, 2], grad=False)
    # cat 2.9, car 0, frog 12.9 -> mean 5.27
    assert loss == pytest.approx((2.9 + 0.0 + 12.9) / 3, abs=1e-12)


def test_lecture_softmax_cat_example():
    p = fl.softmax(CAT)
    np.testing.assert_allclose(p, [[0.13, 0.87, 0.00]], atol=5e-3)
    loss, d = fl.softmax_cross_entropy(CAT, [0])
    assert loss == pytest.approx(-np.log(p[0, 0]), rel=1e-14)
    assert loss == pytest.approx(2.04, abs=5e-3)  # the slide's 0.89 is log10
    assert loss / np.log(10) == pytest.approx(0.89, abs=5e-3)
    np.testing.assert_allclose(d, p - [[1, 0, 0]], rtol=1e-14, atol=1e-16)


def test_cs231n_dropins_match_assignment_code():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 10))
    y = rng.integers(0, 10, 50)
    for ours, theirs in [(fl.svm_loss, R.svm_loss), (fl.softmax_loss, R.softmax_loss)]:
        l1, d1 = ours(x, y)
        l2, d2 = theirs(x, y)
        assert l1 == pytest.approx(l2, rel=1e-12)
        assert_close(d1, d2, 1e-12)


# ---- agreement with the reference over generated cases ------------------------------

layouts = st.sampled_from(["c", "f", "strided", "negative", "readonly", "list"])


def make_scores(rng, N, C, dtype, layout):
    base = rng.normal(scale=3.0, size=(N, C)).astype(dtype)
    if layout == "c":
        return base, base
    if layout == "f":
        return np.asfortranarray(base), base
    if layout == "strided":
        big = np.zeros((N, 2 * C + 1), dtype)
        big[:, ::2][:, :C] = base
        return big[:, ::2][:, :C], base
    if layout == "negative":
        flipped = np.ascontiguousarray(base[::-1])
        return flipped[::-1], base
    if layout == "readonly":
        ro = base.copy()
        ro.flags.writeable = False
        return ro, base
    if N == 0:  # an empty list cannot carry C: use an empty array instead
        return base, base
    return base.tolist(), base  # lists are float64 (the dtype rules)


@st.composite
def cases(draw, max_c=1000):
    N = draw(st.sampled_from([0, 1, 2, 3, 7, 16, 33, 200]) | st.integers(0, 3000))
    C = draw(st.sampled_from([1, 2, 3, 5, 8, 9, 10, 16, 17, 31, 100]) | st.integers(1, max_c))
    if N * C > 400_000:
        N = 400_000 // C
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    layout = draw(layouts)
    seed = draw(st.integers(0, 2**32 - 1))
    return N, C, dtype, layout, seed


@given(cases(), st.sampled_from(["weston_watkins", "crammer_singer"]), st.booleans(),
       st.sampled_from([1.0, 0.5, 2.0]), st.sampled_from(["mean", "sum", "none"]),
       st.booleans(), st.booleans())
def test_hinge_matches_reference(case, variant, squared, margin, reduction, use_sw, use_cw):
    N, C, dtype, layout, seed = case
    if reduction == "mean" and N == 0:
        return
    rng = np.random.default_rng(seed)
    scores, base = make_scores(rng, N, C, dtype, layout)
    y = rng.integers(0, C, N)
    kw = dict(variant=variant, squared=squared, margin=margin, reduction=reduction)
    if use_sw:
        kw["sample_weight"] = rng.random(N).astype(dtype)
    if use_cw:
        kw["class_weight"] = rng.random(C).astype(dtype)
    loss, d = fl.multiclass_hinge(scores, y, **kw)
    rl, rd = ref64(R.multiclass_hinge, base, y, **kw)
    out_dtype = np.float64 if isinstance(scores, list) else dtype
    assert d.dtype == out_dtype and d.shape == (N, C)
    assert np.asarray(loss).dtype == out_dtype
    assert_close(loss, rl, RTOL[dtype], "loss")
    gsc = grad_scale(N, reduction, kw.get("sample_weight"), kw.get("class_weight"), margin)
    assert_close(d, rd, RTOL[dtype], "grad", scale=gsc)
    assert_close(fl.multiclass_hinge(scores, y, grad=False, **kw), rl, RTOL[dtype], "fwd")


@given(cases(), st.sampled_from([0.0, 0.1, 1.0]), st.sampled_from(["mean", "sum", "none"]),
       st.booleans(), st.booleans(), st.booleans())
def test_softmax_ce_matches_reference(case, eps, reduction, use_sw, use_cw, soft):
    N, C, dtype, layout, seed = case
    if reduction == "mean" and N == 0:
        return
    rng = np.random.default_rng(seed)
    scores, base = make_scores(rng, N, C, dtype, layout)
    if soft:
        y = R.softmax(rng.normal(size=(N, C))).astype(dtype)
    else:
        y = rng.integers(0, C, N)
    kw = dict(label_smoothing=eps, reduction=reduction)
    if use_sw:
        kw["sample_weight"] = rng.random(N).astype(dtype)
    if use_cw:
        kw["class_weight"] = (rng.random(C) + 0.1).astype(dtype)
    loss, d = fl.softmax_cross_entropy(scores, y, **kw)
    rl, rd = ref64(R.softmax_cross_entropy, base, y, **kw)
    assert d.dtype == (np.float64 if isinstance(scores, list) else dtype)
    assert_close(loss, rl, RTOL[dtype], "loss")
    gsc = grad_scale(N, reduction, kw.get("sample_weight"), kw.get("class_weight"))
    assert_close(d, rd, RTOL[dtype], "grad", scale=gsc)
    assert_close(fl.softmax_cross_entropy(scores, y, grad=False, **kw), rl, RTOL[dtype], "fwd")


@given(cases(max_c=300), st.sampled_from([-1, 0, 1]))
def test_softmax_and_log_softmax(case, axis):
    N, C, dtype, layout, seed = case
    rng = np.random.default_rng(seed)
    scores, base = make_scores(rng, N, C, dtype, layout)
    ax = axis if axis != 0 else 0
    s_in = np.asarray(scores) if layout == "list" else scores
    p = fl.softmax(s_in, axis=ax)
    lp = fl.log_softmax(s_in, axis=ax)
    assert p.dtype == s_in.dtype and lp.dtype == s_in.dtype
    assert p.shape == base.shape and lp.shape == base.shape
    if base.size == 0:
        return
    assert_close(p, R.softmax(base.astype(np.float64), axis=ax), RTOL[dtype])
    assert_close(lp, R.log_softmax(base.astype(np.float64), axis=ax), RTOL[dtype])


def test_softmax_nd_and_1d():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 5))
    for ax in range(3):
        assert_close(fl.softmax(x, axis=ax), R.softmax(x, axis=ax), 1e-12)
    v = rng.normal(size=7)
    assert_close(fl.log_softmax(v), R.log_softmax(v), 1e-12)


# ---- numerical gradients ------------------------------------------------------------

def numgrad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f(x)
        x[idx] = old - h
        fm = f(x)
        x[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


@pytest.mark.parametrize("C", [2, 3, 10, 40])
@pytest.mark.parametrize("kind", ["ww", "cs", "ww2", "ce", "ce_smooth_cw", "ce_soft"])
def test_numerical_gradient(C, kind):
    rng = np.random.default_rng(C)
    N = 6
    x = rng.normal(size=(N, C)) * 3
    y = rng.integers(0, C, N)
    sw = rng.random(N) + 0.5
    cw = rng.random(C) + 0.5
    if kind.startswith("ce"):
        kw = dict(sample_weight=sw)
        if kind == "ce_smooth_cw":
            kw.update(label_smoothing=0.2, class_weight=cw)
        yy = R.softmax(rng.normal(size=(N, C))) if kind == "ce_soft" else y

        def f(s):
            return float(fl.softmax_cross_entropy(s, yy, grad=False, **kw))
        _, d = fl.softmax_cross_entropy(x, yy, **kw)
    else:
        variant = "crammer_singer" if kind == "cs" else "weston_watkins"
        kw = dict(variant=variant, squared=kind == "ww2", sample_weight=sw, class_weight=cw)
        # keep every margin away from the hinge's kink and the max away from ties
        while True:
            m = x - x[np.arange(N), y][:, None] + 1.0
            m[np.arange(N), y] = 10.0
            top = np.sort(np.where(m == 10.0, -np.inf, x), axis=1)
            if np.abs(m).min() > 1e-3 and (C < 3 or (top[:, -1] - top[:, -2]).min() > 1e-3):
                break
            x = rng.normal(size=(N, C)) * 3

        def f(s):
            return float(fl.multiclass_hinge(s, y, grad=False, **kw))
        _, d = fl.multiclass_hinge(x, y, **kw)
    n = numgrad(f, x.copy())
    np.testing.assert_allclose(d, n, rtol=1e-6, atol=1e-8)


# ---- extremes ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_and_tied_scores_are_finite_and_right(dtype):
    s = np.array([[1e30, -1e30, 0.0], [-1e30, 1e30, 5.0], [1e8, 1e8, 1e8]], dtype)
    y = np.array([0, 0, 2])
    loss, d = fl.softmax_cross_entropy(s, y, reduction="none")
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(d))
    np.testing.assert_allclose(loss, [0.0, 2e30, np.log(3)], rtol=1e-6)
    np.testing.assert_allclose(d[2], [1 / 3, 1 / 3, -2 / 3], rtol=1e-6)
    np.testing.assert_allclose(d[1], [-1, 1, 0], atol=1e-6)
    p = fl.softmax(s)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    lh, dh = fl.multiclass_hinge(s, y, reduction="none")
    assert np.all(np.isfinite(lh[2:])) and lh[2] == 2.0
    lr, dr = R.multiclass_hinge(s.astype(np.float64), y, reduction="none")
    np.testing.assert_allclose(lh, lr, rtol=1e-6)
    np.testing.assert_allclose(dh, dr)


def test_nan_and_inf_propagate_like_numpy():
    s = np.array([[np.nan, 1.0, 2.0], [np.inf, 0.0, 1.0], [-np.inf, 0.0, 1.0], [0.0, 1.0, 2.0]])
    y = np.array([1, 1, 0, 2])
    for fn, ref in [(fl.softmax_cross_entropy, R.softmax_cross_entropy),
                    (fl.multiclass_hinge, R.multiclass_hinge)]:
        with np.errstate(all="ignore"):
            rl, rd = ref(s, y, reduction="none")
        ll, dd = fn(s, y, reduction="none")
        np.testing.assert_array_equal(np.isnan(ll), np.isnan(rl))
        np.testing.assert_allclose(ll, rl, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(dd, rd, rtol=1e-12, atol=1e-300, equal_nan=True)


def test_masked_logits_give_exact_zero_probability():
    s = np.array([[0.0, -np.inf, 1.0]], np.float32)
    p = fl.softmax(s)
    assert p[0, 1] == 0.0
    _, d = fl.softmax_cross_entropy(s, [2])
    assert d[0, 1] == 0.0


# ---- conventions ---------------------------------------------------------------------

def test_dtype_rules():
    rng = np.random.default_rng(2)
    s32 = rng.normal(size=(5, 3)).astype(np.float32)
    y = [0, 1, 2, 0, 1]
    assert fl.multiclass_hinge(s32, y)[1].dtype == np.float32
    assert fl.multiclass_hinge(s32.astype(np.float64), y)[1].dtype == np.float64
    assert fl.multiclass_hinge(s32.astype(np.int32), y)[1].dtype == np.float64
    assert fl.multiclass_hinge(s32.astype(np.float16), y)[1].dtype == np.float64
    # mixed float32 / float64 operands compute in float64
    l, d = fl.softmax_cross_entropy(s32, y, sample_weight=np.ones(5))
    assert d.dtype == np.float64 and np.asarray(l).dtype == np.float64
    l, d = fl.softmax_cross_entropy(s32, y, sample_weight=np.ones(5, np.float32))
    assert d.dtype == np.float32
    for ydt in [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.uint64, ">i8"]:
        assert_close(fl.multiclass_hinge(s32, np.asarray(y, ydt))[0],
                     fl.multiclass_hinge(s32, y)[0], 0)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(3)
    s = rng.normal(size=(64, 10))
    y = rng.integers(0, 10, 64)
    sw = rng.random(64)
    cw = rng.random(10)
    copies = [a.copy() for a in (s, y, sw, cw)]
    fl.multiclass_hinge(s, y, sample_weight=sw, class_weight=cw)
    fl.softmax_cross_entropy(s, y, sample_weight=sw, class_weight=cw, label_smoothing=0.1)
    fl.softmax(s)
    for a, b in zip((s, y, sw, cw), copies):
        np.testing.assert_array_equal(a, b)


def test_empty_batch():
    s = np.zeros((0, 4))
    assert fl.multiclass_hinge(s, [], reduction="sum")[0] == 0.0
    assert fl.softmax_cross_entropy(s, np.zeros(0, int), reduction="sum", grad=False) == 0.0
    l, d = fl.softmax_cross_entropy(s, np.zeros(0, int), reduction="none")
    assert l.shape == (0,) and d.shape == (0, 4)


@pytest.mark.parametrize("C", [3, 10, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_give_identical_bits(C, dtype):
    rng = np.random.default_rng(C)
    N = 200_000 // C * 3
    s = rng.normal(size=(N, C)).astype(dtype)
    y = rng.integers(0, C, N)
    sw = rng.random(N)
    for fn, kw in [(fl.multiclass_hinge, {}), (fl.multiclass_hinge, dict(variant="crammer_singer")),
                   (fl.softmax_cross_entropy, dict(label_smoothing=0.1)),
                   (fl.softmax_cross_entropy, dict(sample_weight=sw))]:
        outs = [fn(s, y, n_threads=t, **kw) for t in (1, 2, 3, None)]
        for l, d in outs[1:]:
            assert np.asarray(l).tobytes() == np.asarray(outs[0][0]).tobytes()
            assert d.tobytes() == outs[0][1].tobytes()
    p1 = fl.softmax(s, n_threads=1)
    assert fl.softmax(s, n_threads=2).tobytes() == p1.tobytes()


def test_outputs_are_independent_arrays():
    """Large gradients come from a pool: a live gradient is never handed out again."""
    rng = np.random.default_rng(4)
    s = rng.normal(size=(100_000, 10)).astype(np.float32)
    y = rng.integers(0, 10, 100_000)
    _, d1 = fl.softmax_cross_entropy(s, y)
    keep = d1.copy()
    view = d1[10:20]
    del d1
    _, d2 = fl.softmax_cross_entropy(s * 2, y)
    _, d3 = fl.multiclass_hinge(s, y)
    assert not np.shares_memory(view, d2) and not np.shares_memory(view, d3)
    np.testing.assert_array_equal(view, keep[10:20])


# ---- "mean" with extreme weights: only the weights that enter the mean decide the scaling
S_EXT = np.array([[0.5, 1.5, -0.3], [2.0, 0.1, 0.3], [-1.0, 0.4, 2.2]])


@pytest.mark.parametrize(
    "y, sw, cw",
    [
        ([1, 1, 1], None, [1e300, 1e-300, 1.0]),  # the largest class weight is unused
        ([1, 1, 2], None, [2.0**70, 2.0**-1000, 2.0**-1000]),
        ([0, 1, 2], [1e300, 1e-300, 1e-300], [0.0, 1.0, 1.0]),  # row 0 has class weight 0
        ([0, 1, 2], [1e-300, 1e300, 1.0], [1e300, 1e-300, 1.0]),  # products 1, 1, 1
        ([2, 0, 1], [1e-310, 1e-310, 0.0], None),  # subnormal sample weights
        ([2, 0, 1], [1e300, 0.0, 1e-300], [1.0, 1e200, 1e-200]),
    ],
)
@pytest.mark.parametrize("loss", ["hinge", "softmax"])
def test_mean_with_extreme_weights_is_the_exact_weighted_mean(y, sw, cw, loss):
    yv = np.array(y)
    f, fr = ((fl.multiclass_hinge, R.multiclass_hinge) if loss == "hinge"
             else (fl.softmax_cross_entropy, R.softmax_cross_entropy))
    L, G = fr(S_EXT, yv, reduction="none")
    sw_ = np.ones(3) if sw is None else np.array(sw)
    cw_ = np.ones(3) if cw is None else np.array(cw)
    # w_i = sw_i cw[y_i] from exponents and mantissas (no overflow or underflow here)
    ms, es = np.frexp(sw_)
    mc, ec = np.frexp(cw_[yv])
    e = es + ec
    live = ms * mc > 0
    w = np.where(live, np.ldexp(ms * mc, e - e[live].max()), 0.0)
    exp_loss = (w * L).sum() / w.sum()
    exp_grad = G * (w / w.sum())[:, None]
    loss_v, grad_v = f(S_EXT, yv, sample_weight=sw, class_weight=cw)
    assert np.isfinite(loss_v) and np.isfinite(grad_v).all()
    assert_close(loss_v, exp_loss, 1e-12, "loss")
    assert_close(grad_v, exp_grad, 1e-12, "gradient")


def test_numbers_beyond_float_and_int64_range_are_value_errors():
    S = np.zeros((2, 3))
    with pytest.raises(ValueError, match="margin"):
        fl.multiclass_hinge(S, [0, 1], margin=10**400)
    with pytest.raises(ValueError, match="label_smoothing"):
        fl.softmax_cross_entropy(S, [0, 1], label_smoothing=10**400)
    with pytest.raises(ValueError, match=r"y\[1\] = 9223372036854775808 .*\[0, 3\)"):
        fl.multiclass_hinge(S, [0, 2**63])
    with pytest.raises(ValueError, match=r"y\[0\] = -1180591620717411303424"):
        fl.softmax_cross_entropy(S, [-(2**70), 2**70])
    with pytest.raises(ValueError, match=r"shape \(2, 1\) \(scores has shape \(2, 3\)\)"):
        fl.multiclass_hinge(S, np.zeros((2, 1), int))


def test_mean_with_extreme_weights_and_no_classes():
    S = np.zeros((3, 0))
    sw = np.array([7e-321, 4e-321, 1e-321])
    for f in (fl.multiclass_hinge, fl.softmax_cross_entropy):
        with pytest.raises(ValueError, match=r"y\[0\] = 0"):
            f(S, [0, 0, 0], sample_weight=sw, class_weight=np.zeros(0))


def test_label_smoothing_mean_keeps_rows_of_class_weight_zero_under_extreme_weights():
    """A row whose label's class weight is 0 leaves the mean's denominator but, with label
    smoothing, still adds its smoothing terms; rescaling subnormal sample weights kept it."""
    S = np.array([[0.04026, 0.00659, -0.03367], [-0.04230, -0.00693, 0.03538]])
    y = np.array([1, 0])
    cw = np.array([1.03507242, 0.0, 0.1027385])
    sw = np.array([8.295e-321, 6.438e-321])  # subnormal: 1 / sum(w) overflows unscaled
    k = 1100  # the same weights times 2**1100: normal numbers, the same weighted mean
    want_l, want_g = R.softmax_cross_entropy(S, y, label_smoothing=0.1, class_weight=cw,
                                             sample_weight=np.ldexp(sw, k))
    loss, g = fl.softmax_cross_entropy(S, y, label_smoothing=0.1, class_weight=cw,
                                       sample_weight=sw)
    assert_close(loss, want_l, 1e-12, "loss")
    assert_close(g, want_g, 1e-12, "gradient")
    X = np.array([[1.0], [-1.0]])
    loss, dW = fl.linear_loss(S[:1], X, y, loss="softmax", reg=0.0, label_smoothing=0.1,
                              class_weight=cw, sample_weight=sw)
    want = R.linear_loss(S[:1], X, y, loss="softmax", reg=0.0, label_smoothing=0.1,
                         class_weight=cw, sample_weight=np.ldexp(sw, k))
    assert_close(loss, want[0], 1e-12, "linear_loss")
    assert_close(dW, want[1], 1e-12, "linear_loss dW")


@pytest.mark.parametrize("dt, big", [(np.float64, 1e307), (np.float32, 1e37)])
def test_label_smoothing_with_class_weights_near_overflow(dt, big):
    """(eps / C) cw_c is formed before the sums over classes: sum_c cw_c and
    sum_c cw_c log p_c overflowed where the loss itself is finite."""
    S = np.linspace(-1, 1, 20)[None].astype(dt)
    cw = np.full(20, big)
    scale = 2.0**-100
    for red in ("none", "sum"):
        loss, G = fl.softmax_cross_entropy(S, [0], class_weight=cw, label_smoothing=0.1,
                                           reduction=red)
        l2, G2 = R.softmax_cross_entropy(S.astype(np.float64), [0], class_weight=cw * scale,
                                         label_smoothing=0.1, reduction=red)
        assert np.all(np.isfinite(loss)) and np.isfinite(G).all()
        rtol = 1e-12 if dt == np.float64 else 1e-5
        assert_close(loss, np.asarray(l2) / scale, rtol, "loss")
        assert_close(G, G2 / scale, rtol, "gradient")


# ---- ignore_index: a label value whose rows contribute nothing ------------------------

IGNORE_FNS = [
    ("softmax_cross_entropy", {}),
    ("softmax_cross_entropy", {"label_smoothing": 0.2}),
    ("multiclass_hinge", {}),
    ("multiclass_hinge", {"variant": "crammer_singer", "squared": True}),
]


@pytest.mark.parametrize("name,opts", IGNORE_FNS)
@pytest.mark.parametrize("C", [3, 10, 16, 40])  # the lanes (C <= 16) and the long rows
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore", [-100, 1])  # outside [0, C), and a class
@pytest.mark.parametrize("weights", [False, True])
def test_ignore_index_against_reference(name, opts, C, dtype, reduction, ignore, weights):
    rng = np.random.default_rng(C * 7 + abs(ignore))
    N = 67  # full SIMD groups and a short last one
    S = rng.normal(size=(N, C)).astype(dtype) * 3
    y = rng.integers(0, C, N)
    y[rng.random(N) < 0.3] = ignore
    y[0] = ignore  # (a group of ignored rows, a NaN in an ignored row)
    S[0, 0] = np.nan
    kw = dict(opts, reduction=reduction)
    if weights:
        kw["sample_weight"] = rng.random(N).astype(dtype) + 0.5
        kw["class_weight"] = rng.random(C).astype(dtype) + 0.5
    fn, ref = getattr(fl, name), getattr(R, name)
    ign = y == ignore
    for labels in (y, y.astype(np.int32), np.repeat(y, 2)[::2]):  # plain and general paths
        loss, g = fn(S, labels, ignore_index=ignore, **kw)
        want_loss, want_g = ref64(ref, S, y, ignore_index=ignore, **kw)
        assert g.dtype == dtype and np.asarray(loss).dtype == dtype
        assert_close(loss, want_loss, RTOL[dtype], "loss")
        assert_close(g, want_g, RTOL[dtype], "gradient")
        np.testing.assert_array_equal(g[ign], 0.0)  # exactly 0, also where a score is NaN
        if reduction == "none":
            np.testing.assert_array_equal(loss[ign], 0.0)
        loss_only = fn(S, labels, ignore_index=ignore, grad=False, **kw)
        assert_close(loss_only, loss, RTOL[dtype], "loss without the gradient")


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "multiclass_hinge"])
@pytest.mark.parametrize("C", [10, 40])
def test_ignore_index_hand_checked(name, C):
    """Ignored rows change nothing: the loss of the other rows alone, their mean over
    their own count, and zero gradient rows."""
    rng = np.random.default_rng(1)
    S = rng.normal(size=(9, C))
    y = np.array([0, -100, 2, 3, -100, 5, 6, -100, 1])
    keep = y != -100
    fn = getattr(fl, name)
    loss, g = fn(S, y, ignore_index=-100)
    loss_kept, g_kept = fn(S[keep], y[keep])
    assert loss == pytest.approx(loss_kept, rel=1e-14)
    np.testing.assert_allclose(g[keep], g_kept, rtol=1e-14, atol=1e-17)
    np.testing.assert_array_equal(g[~keep], 0.0)
    total = fn(S, y, ignore_index=-100, reduction="sum", grad=False)
    assert total == pytest.approx(loss_kept * keep.sum(), rel=1e-14)


def test_ignore_index_all_rows_ignored():
    S = np.ones((4, 3))
    y = np.full(4, 7)
    loss, g = fl.softmax_cross_entropy(S, y, ignore_index=7)
    assert np.isnan(loss)  # 0 / 0, as PyTorch
    np.testing.assert_array_equal(g, 0.0)
    assert fl.multiclass_hinge(S, y, ignore_index=7, reduction="sum", grad=False) == 0.0


def test_ignore_index_default_and_bad_values():
    S = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"y\[1\] = -100 is not a valid class label"):
        fl.softmax_cross_entropy(S, [0, -100, 1])  # default None: no label is ignored
    with pytest.raises(ValueError, match=r"y\[2\] = -1 .*\[0, 4\) or equal ignore_index=-100"):
        fl.multiclass_hinge(S, [0, -100, -1], ignore_index=-100)
    for bad in (1.0, "x", True, np.float64(2)):
        with pytest.raises(TypeError, match="ignore_index must be an int or None"):
            fl.softmax_cross_entropy(S, [0, 1, 2], ignore_index=bad)
    with pytest.raises(ValueError, match="ignore_index must fit in int64"):
        fl.multiclass_hinge(S, [0, 1, 2], ignore_index=2**63)
    assert fl.softmax_cross_entropy(S, [0, 1, 2], ignore_index=np.int8(1))[0] == pytest.approx(
        np.log(4))


def test_ignore_index_soft_targets_unaffected():
    rng = np.random.default_rng(2)
    S, Q = rng.normal(size=(5, 4)), R.softmax(rng.normal(size=(5, 4)))
    a = fl.softmax_cross_entropy(S, Q, ignore_index=0)
    b = fl.softmax_cross_entropy(S, Q)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("name", ["multiclass_hinge", "softmax_cross_entropy"])
@pytest.mark.parametrize("C", [1, 3, 10])
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_float32_weights_beyond_float_range(name, C, reduction):
    """float32 scores with float32 weights whose products (about 1e58) exceed float32's
    range: each gradient entry is the exact one rounded to float32 -- 0 where the row's
    coefficient is 0 (not 0 * inf = NaN), +-inf where the product overflows -- and the
    loss is the float64 sum rounded once."""
    rng = np.random.default_rng(C)
    N = 300
    S = rng.normal(size=(N, C)).astype(np.float32) * 3
    y = rng.integers(0, C, N)
    sw = (rng.random(N) * 1e30).astype(np.float32)
    sw[::7] = 1.0  # rows of ordinary weight between them
    cw = np.full(C, 2.9e28, np.float32)
    cw[0] = 1.0
    fn = getattr(fl, name)
    loss, G = fn(S, y, sample_weight=sw, class_weight=cw, reduction=reduction)
    ref = getattr(R, name)
    with np.errstate(all="ignore"):
        want_loss, want_G = ref(S.astype(np.float64), y, sample_weight=sw.astype(np.float64),
                                class_weight=cw.astype(np.float64), reduction=reduction)
    with np.errstate(over="ignore"):
        want_G32 = want_G.astype(np.float32)
        want_loss32 = np.asarray(want_loss).astype(np.float32)
    assert not np.isnan(G).any()
    assert np.array_equal(np.isinf(G), np.isinf(want_G32))
    assert np.array_equal(G == 0, want_G32 == 0)
    fin = np.isfinite(want_G32)
    # (a softmax row's entries are w * (p - q) with p in float32: off by float32 steps of
    # the row's weight w, as any float32 gradient; the hinge's are exact multiples of w)
    w = sw.astype(np.float64) * cw.astype(np.float64)[y]
    tol = 1e-5 * np.abs(want_G32) + 1e-6 * np.broadcast_to(w[:, None], G.shape)
    assert (np.abs(G[fin].astype(np.float64) - want_G32[fin]) <= tol[fin]).all()
    got_loss = np.asarray(loss, np.float64)
    assert np.array_equal(np.isinf(got_loss), np.isinf(want_loss32))
    lfin = np.isfinite(want_loss32)
    lfloor = 1e-6 * (w if reduction == "none" else w.sum())  # (the same steps of w)
    assert (np.abs(got_loss - want_loss32) <= 1e-5 * np.abs(want_loss32) + lfloor)[lfin].all()
