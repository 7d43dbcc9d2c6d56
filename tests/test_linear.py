"""linear_loss against the NumPy reference for every option, with and without indices,
bias and weights; the CS231n drop-ins; numerical gradients; thread-count determinism."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from helpers import assert_close

import fastloss as fl
import fastloss.reference as R

RTOL = {np.float64: 1e-12, np.float32: 1e-5}


def _ref(W, X, y, **kw):
    kw = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
          for k, v in kw.items()}
    yy = y.astype(np.float64) if y.ndim == 2 else y
    return R.linear_loss(W.astype(np.float64), X.astype(np.float64), yy, **kw)


@st.composite
def linear_cases(draw):
    N = draw(st.sampled_from([1, 2, 7, 16, 33, 130, 300]) | st.integers(1, 600))
    D = draw(st.sampled_from([1, 3, 8, 17, 155, 1000, 4000]) | st.integers(1, 300))
    C = draw(st.sampled_from([1, 2, 3, 10, 16, 17, 40]) | st.integers(1, 1000))
    while N * D > 300_000:
        N = max(1, N // 2)
        if N * D > 300_000:
            D = max(1, D // 2)
    while D * C > 200_000:
        C = max(1, C // 2)
    return N, D, C, draw(st.sampled_from([np.float64, np.float32])), draw(st.integers(0, 2**31))


@given(linear_cases(),
       st.sampled_from(["softmax", "hinge", "crammer_singer", "hinge2"]),
       st.sampled_from(["l2", "l1", "elasticnet"]),
       st.booleans(), st.booleans(), st.booleans(), st.booleans(),
       st.sampled_from(["mean", "sum"]))
def test_linear_loss_matches_reference(case, kind, penalty, use_b, use_idx, use_sw, use_cw, red):
    N, D, C, dtype, seed = case
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D)).astype(dtype)
    W = (rng.normal(size=(D, C)) * 0.05).astype(dtype)
    y = rng.integers(0, C, N)
    kw = dict(reg=0.3, penalty=penalty, l1_ratio=0.3, reduction=red)
    if kind == "softmax":
        kw.update(loss="softmax", label_smoothing=0.1)
    else:
        kw.update(loss="hinge", variant="crammer_singer" if kind == "crammer_singer" else
                  "weston_watkins", squared=kind == "hinge2", margin=0.7)
    if use_b:
        kw["b"] = rng.normal(size=C).astype(dtype)
    if use_idx:
        kw["indices"] = rng.integers(0, N, max(1, N // 2 + 3))
    if use_sw:
        kw["sample_weight"] = (rng.random(N) + 0.1).astype(dtype)
    if use_cw:
        kw["class_weight"] = (rng.random(C) + 0.1).astype(dtype)
    out = fl.linear_loss(W, X, y, **kw)
    ref = _ref(W, X, y, **kw)
    assert len(out) == (3 if use_b else 2)
    assert out[1].dtype == dtype and out[1].shape == (D, C)
    rt = RTOL[dtype]
    assert_close(out[0], ref[0], rt, "loss")
    # entries of dW are sums over rows of x * dS: compare against the scale of those terms
    M = len(kw.get("indices", range(N)))
    scale = np.abs(X).max() * (1.0 if red == "mean" else M) * 4 + np.abs(ref[1]).max()
    assert_close(out[1], ref[1], rt, "dW", scale=scale)
    if use_b:
        assert_close(out[2], ref[2], rt, "db", scale=1.0 if red == "mean" else M)
    assert_close(fl.linear_loss(W, X, y, grad=False, **kw), ref[0], rt, "fwd")


def test_soft_targets():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 30))
    W = rng.normal(size=(30, 7)) * 0.1
    Q = R.softmax(rng.normal(size=(50, 7)))
    out = fl.linear_loss(W, X, Q, label_smoothing=0.2, class_weight=rng.random(7))
    ref = R.linear_loss(W, X, Q, label_smoothing=0.2, class_weight=out[1][0] * 0 + 1)
    assert np.isfinite(out[0])
    out2 = fl.linear_loss(W, X, Q)
    ref2 = R.linear_loss(W, X, Q)
    assert_close(out2[0], ref2[0], 1e-12)
    assert_close(out2[1], ref2[1], 1e-12)
    del ref


@pytest.mark.parametrize("name", ["svm_loss_naive", "svm_loss_vectorized", "softmax_loss_naive",
                                  "softmax_loss_vectorized"])
def test_cs231n_dropins_equal_assignment_code(name):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3073, 10)) * 1e-4
    X = rng.normal(size=(120, 3073)) * 50
    X[:, -1] = 1.0  # the bias trick
    y = rng.integers(0, 10, 120)
    loss, dW = getattr(fl, name)(W, X, y, 5e-4)
    rl, rdW = getattr(R, name)(W, X, y, 5e-4)
    assert loss == pytest.approx(rl, rel=1e-12)
    assert_close(dW, rdW, 1e-11)


def test_numerical_gradient():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 6))
    W = rng.normal(size=(6, 4)) * 0.5
    b = rng.normal(size=4)
    y = rng.integers(0, 4, 12)
    for kw in [dict(loss="softmax", reg=0.2, penalty="l2"),
               dict(loss="softmax", reg=0.2, penalty="elasticnet", label_smoothing=0.1),
               dict(loss="hinge", reg=0.1, squared=True)]:
        loss, dW, db = fl.linear_loss(W, X, y, b=b, **kw)
        n = fl.numerical_gradient(lambda w: float(fl.linear_loss(w, X, y, b=b, grad=False, **kw)),
                                  W.copy(), h=1e-6)
        np.testing.assert_allclose(dW, n, rtol=1e-5, atol=1e-7)
        nb = fl.numerical_gradient(lambda bb: float(fl.linear_loss(W, X, y, b=bb, grad=False, **kw)),
                                   b.copy(), h=1e-6)
        np.testing.assert_allclose(db, nb, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [3, 10, 40])
def test_threads_give_identical_bits(dtype, C):
    rng = np.random.default_rng(C)
    X = rng.normal(size=(3000, 200)).astype(dtype)
    W = (rng.normal(size=(200, C)) * 0.01).astype(dtype)
    b = rng.normal(size=C).astype(dtype)
    y = rng.integers(0, C, 3000)
    idx = rng.integers(0, 3000, 1000)
    W[::7] = 0.0  # (zeros for the l1 penalty's sign)
    for kw in [dict(loss="softmax"), dict(loss="hinge", indices=idx, b=b, reg=0.1),
               dict(loss="softmax", reg=0.2, penalty="elasticnet", l1_ratio=0.3),
               dict(loss="hinge", reg=0.2, penalty="l1", indices=idx)]:
        outs = [fl.linear_loss(W, X, y, n_threads=t, **kw) for t in (1, 2, 4)]
        for o in outs[1:]:
            for a, r in zip(o, outs[0]):
                assert np.asarray(a).tobytes() == np.asarray(r).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
def test_penalty_gradient_of_special_values(dtype, penalty):
    """No rows (reduction="sum"): dW is the penalty's gradient alone, element by element
    as NumPy computes it (np.sign keeps NaN and the signed zeros), for D past one SIMD
    chunk and not a multiple of it."""
    D, C = 45, 3
    vals = np.array([1.5, -2.0, 0.0, -0.0, np.inf, -np.inf, np.nan, 3e-5, -7.25], dtype)
    W = np.resize(vals, D * C).reshape(D, C)
    X = np.zeros((0, D), dtype)
    reg, rho = 0.3, 0.25
    l1 = {"l1": 1.0, "l2": 0.0, "elasticnet": rho}[penalty]
    with np.errstate(invalid="ignore"):
        loss, dW = fl.linear_loss(W, X, np.zeros(0, np.int64), reg=reg, penalty=penalty,
                                  l1_ratio=rho, reduction="sum")
        W64 = W.astype(np.float64)
        want = np.zeros_like(W64)
        want_loss = 0.0
        if l1:
            want = want + reg * l1 * np.sign(W64)
            want_loss += l1 * np.abs(W64).sum()
        if l1 != 1.0:
            want = want + 2.0 * reg * (1.0 - l1) * W64
            want_loss += (1.0 - l1) * (W64 * W64).sum()
    assert dW.dtype == dtype
    np.testing.assert_allclose(dW, want.astype(dtype), rtol=1e-6 if dtype == np.float32 else 1e-15)
    assert np.array_equal(np.signbit(dW[W == 0]), np.signbit(want.astype(dtype)[W == 0]))
    assert np.isnan(loss) and np.isnan(reg * want_loss)
    finite = np.isfinite(W)
    W2 = np.where(finite, W, 0).astype(dtype)
    loss2, dW2 = fl.linear_loss(W2, X, np.zeros(0, np.int64), reg=reg, penalty=penalty,
                                l1_ratio=rho, reduction="sum")
    W64 = W2.astype(np.float64)
    want_loss2 = l1 * np.abs(W64).sum() + (1.0 - l1) * (W64 * W64).sum()
    assert loss2 == pytest.approx(reg * want_loss2, rel=1e-6 if dtype == np.float32 else 1e-12)


def test_repeated_calls_reuse_scratch_without_stale_values():
    """The packed W, the dW partials and the block buffers are scratch kept between calls:
    a call after a larger one (other D, C, dtype, loss, thread count) must not see its
    values, in the zero padding of W past D, in partials it writes first, or in the
    packed rows past a short block's end."""
    rng = np.random.default_rng(11)
    shapes = [(700, 301, 12, np.float64), (45, 9, 3, np.float32), (600, 300, 10, np.float32),
              (33, 1, 2, np.float64), (257, 17, 5, np.float32), (130, 8, 16, np.float64)]
    for rep in range(2):
        for N, D, C, dt in shapes:
            X = (rng.normal(size=(N, D)) * 3).astype(dt)
            W = (rng.normal(size=(D, C)) * 0.1).astype(dt)
            y = rng.integers(0, C, N)
            idx = rng.integers(0, N, max(1, N // 3))
            for kw in (dict(loss="softmax"), dict(loss="hinge", indices=idx, reg=0.1, n_threads=1)):
                out = fl.linear_loss(W, X, y, **kw)
                ref = _ref(W, X, y, **{k: v for k, v in kw.items() if k != "n_threads"})
                rt = RTOL[dt]
                assert_close(out[0], ref[0], rt, "loss")
                scale = np.abs(X).max() * 4 + np.abs(ref[1]).max()
                assert_close(out[1], ref[1], rt, "dW", scale=scale)


def test_indices_are_a_copy_free_minibatch():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(500, 40))
    W = rng.normal(size=(40, 10)) * 0.01
    y = rng.integers(0, 10, 500)
    idx = rng.choice(500, 200, replace=True)
    a = fl.linear_loss(W, X, y, indices=idx, loss="hinge")
    b = fl.linear_loss(W, X[idx], y[idx], loss="hinge")
    assert_close(a[0], b[0], 1e-12)
    assert_close(a[1], b[1], 1e-12)
    neg = fl.linear_loss(W, X, y, indices=idx - 500, loss="hinge")  # NumPy's negative indices
    assert_close(neg[1], a[1], 0)


def test_errors():
    X = np.zeros((5, 3))
    W = np.zeros((3, 4))
    y = np.array([0, 1, 2, 3, 0])
    with pytest.raises(ValueError, match=r"X has shape \(5, 3\) and W has shape \(4, 4\)"):
        fl.linear_loss(np.zeros((4, 4)), X, y)
    with pytest.raises(ValueError, match=r"indices\[1\] = 5 is out of range"):
        fl.linear_loss(W, X, y, indices=[0, 5])
    with pytest.raises(TypeError, match="indices must hold integers"):
        fl.linear_loss(W, X, y, indices=[0.0, 1.0])
    with pytest.raises(ValueError, match=r"y\[2\] = 4 is not a valid class label"):
        fl.linear_loss(W, X, np.array([0, 1, 4, 0, 0]))
    with pytest.raises(ValueError, match=r"y\[3\] = -1"):
        fl.linear_loss(W, X, np.array([0, 1, 2, -1, 9]), indices=[0, 3, 4])
    with pytest.raises(ValueError, match="reg must be a finite number >= 0"):
        fl.linear_loss(W, X, y, reg=-1.0)
    with pytest.raises(ValueError, match="penalty must be one of"):
        fl.linear_loss(W, X, y, penalty="l3")
    with pytest.raises(ValueError, match="loss must be one of"):
        fl.linear_loss(W, X, y, loss="logistic")
    with pytest.raises(ValueError, match="reduction='mean' or 'sum'"):
        fl.linear_loss(W, X, y, reduction="none")
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        fl.linear_loss(W, X, y, b=np.zeros(3))
    with pytest.raises(ValueError, match="empty batch"):
        fl.linear_loss(W, X, y, indices=np.zeros(0, int))
    with pytest.raises(ValueError, match="label_smoothing applies to loss='softmax' only"):
        fl.linear_loss(W, X, y, loss="hinge", label_smoothing=0.1)


def test_inputs_not_modified_and_fortran_X():
    rng = np.random.default_rng(9)
    X = np.asfortranarray(rng.normal(size=(64, 20)))
    W = rng.normal(size=(20, 5))
    y = rng.integers(0, 5, 64)
    Xc, Wc, yc = X.copy(), W.copy(), y.copy()
    out = fl.linear_loss(W, X, y, reg=0.1)
    ref = R.linear_loss(W, X, y, reg=0.1)
    assert_close(out[1], ref[1], 1e-12)
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(W, Wc)
    np.testing.assert_array_equal(y, yc)


# ---- the chunked path (C >= 256, or method="chunked") against the fused one
def test_chunked_float32_sums_the_penalty_and_bias_gradient_in_double():
    D, C = 2048, 512
    W = np.full((D, C), 0.1, np.float32)
    X = np.ones((1, D), np.float32)
    exact = np.log(C) + D * C * float(np.float32(0.1)) ** 2
    got = fl.linear_loss(W, X, [0], reg=1.0, grad=False)  # (auto: chunked for C >= 256)
    assert abs(got - exact) <= 1e-6 * exact
    rng = np.random.default_rng(14)
    N, D, C = 20000, 20, 300
    X = rng.normal(size=(N, D)).astype(np.float32)
    W = (rng.normal(size=(D, C)) * 0.05).astype(np.float32)
    y = rng.integers(0, C, N)
    b = np.zeros(C, np.float32)
    ref = R.linear_loss(W.astype(float), X.astype(float), y, loss="hinge", b=b.astype(float))
    for method in ("chunked", "fused"):
        out = fl.linear_loss(W, X, y, loss="hinge", b=b, method=method)
        assert out[2].dtype == np.float32
        assert_close(out[2], ref[2], 1e-5, f"db {method}")


@pytest.mark.parametrize("method", ["chunked", "fused"])
@pytest.mark.parametrize("kw", [dict(sample_weight=[0.0, 0.0, 0.0]), dict(class_weight="zeros")])
def test_mean_over_zero_total_weight_is_nan_on_both_paths(method, kw):
    C = 300 if method == "chunked" else 10
    if kw.get("class_weight") == "zeros":
        kw = dict(class_weight=np.zeros(C))
    loss, dW = fl.linear_loss(np.zeros((2, C)), np.ones((3, 2)), [0, 1, 2], method=method, **kw)
    assert np.isnan(loss)
    assert not np.isfinite(dW).any()


def test_unknown_variant_is_rejected_for_every_loss():
    for loss in ("softmax", "hinge"):
        with pytest.raises(ValueError, match="variant"):
            fl.linear_loss(np.zeros((2, 3)), np.ones((4, 2)), [0, 1, 2, 0], loss=loss,
                           variant="nonsense")


@pytest.mark.parametrize("method", ["chunked", "fused"])
@pytest.mark.parametrize("loss", ["hinge", "softmax"])
def test_mean_with_extreme_weights_through_indices(method, loss):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 3))
    W = rng.normal(size=(3, 3))
    y = np.array([0, 1, 1, 2, 0])
    sw = np.array([1e-300, 1e300, 1e-300, 1.0, 1.0])
    cw = np.array([1e300, 1e-300, 1.0])
    fr = R.multiclass_hinge if loss == "hinge" else R.softmax_cross_entropy
    for idx in ([1, 1, 2], [1, 2, 1, 0], [0, 3]):
        L, G = fr(X[idx] @ W, y[idx], reduction="none")
        w = np.array([1.0, 0.0, 1.0, 1.0])[: len(idx)] if idx == [1, 2, 1, 0] else (
            np.array([1.0, 1.0, 0.0]) if idx == [1, 1, 2] else np.array([1.0, 1.0]))
        dS = G * (w / w.sum())[:, None]
        out = fl.linear_loss(W, X, y, loss=loss, indices=idx, sample_weight=sw,
                             class_weight=cw, method=method)
        assert_close(out[0], (w * L).sum() / w.sum(), 1e-12, f"loss {idx}")
        assert_close(out[1], X[idx].T @ dS, 1e-12, f"dW {idx}")


def test_big_int_labels_of_the_wrong_length_with_indices():
    # (the check of Python ints beyond int64 must not index past a short list)
    with pytest.raises((TypeError, ValueError), match="y"):
        fl.linear_loss(np.zeros((2, 3)), np.ones((4, 2)), [0, 2**70], indices=[3])
    with pytest.raises(ValueError, match=r"y\[3\] = 1180591620717411303424"):
        fl.linear_loss(np.zeros((2, 3)), np.ones((4, 2)), [0, 1, 2, 2**70], indices=[3, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["fused", "chunked"])
@pytest.mark.parametrize("use_b", [False, True])
def test_out_writes_the_gradients_into_the_callers_arrays(dtype, method, use_b):
    rng = np.random.default_rng(21)
    N, D, C = 300, 37, 10
    X = rng.normal(size=(N, D)).astype(dtype)
    W = (rng.normal(size=(D, C)) * 0.1).astype(dtype)
    y = rng.integers(0, C, N)
    idx = rng.integers(0, N, 200)
    kw = dict(indices=idx, reg=0.2, method=method, loss="softmax")
    if use_b:
        kw["b"] = rng.normal(size=C).astype(dtype)
    want = fl.linear_loss(W, X, y, **kw)
    ref = _ref(W, X, y, **{k: v for k, v in kw.items() if k != "method"})
    dW = np.full((D, C), np.nan, dtype)  # (stale contents must not leak into the result)
    db = np.full(C, np.nan, dtype)
    out = (dW, db) if use_b else dW
    for _ in range(2):  # (a second call into the same buffers gives the same bits)
        got = fl.linear_loss(W, X, y, out=out, **kw)
        assert got[1] is dW
        if use_b:
            assert got[2] is db
        for g, w in zip(got, want):
            assert np.asarray(g).tobytes() == np.asarray(w).tobytes()
    assert_close(got[1], ref[1], RTOL[dtype])
    # a one-element tuple is dW too
    if not use_b:
        assert fl.linear_loss(W, X, y, out=(dW,), **kw)[1] is dW


def test_out_threads_give_identical_bits():
    rng = np.random.default_rng(22)
    X = rng.normal(size=(2000, 300)).astype(np.float32)
    W = (rng.normal(size=(300, 10)) * 0.01).astype(np.float32)
    y = rng.integers(0, 10, 2000)
    idx = rng.integers(0, 2000, 200)
    outs = []
    for t in (1, 2, 3):
        dW = np.empty_like(W)
        loss, _ = fl.linear_loss(W, X, y, indices=idx, reg=1e-3, out=dW, n_threads=t)
        outs.append((np.float32(loss).tobytes(), dW.tobytes()))
    assert outs[1:] == outs[:1] * 2


def test_out_errors():
    rng = np.random.default_rng(23)
    X = rng.normal(size=(20, 5))
    W = rng.normal(size=(5, 3))
    y = rng.integers(0, 3, 20)
    b = np.zeros(3)
    with pytest.raises(TypeError, match="out \\(dW\\) must have the result dtype float64"):
        fl.linear_loss(W, X, y, out=np.empty((5, 3), np.float32))
    with pytest.raises(ValueError, match="out \\(dW\\) must have shape \\(5, 3\\)"):
        fl.linear_loss(W, X, y, out=np.empty((3, 5)))
    with pytest.raises(ValueError, match="C-contiguous"):
        fl.linear_loss(W, X, y, out=np.empty((3, 5)).T)
    ro = np.empty((5, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fl.linear_loss(W, X, y, out=ro)
    with pytest.raises(ValueError, match="shares memory with an input"):
        fl.linear_loss(W, X, y, out=W)
    with pytest.raises(ValueError, match="\\(dW, db\\) when b is given"):
        fl.linear_loss(W, X, y, b=b, out=np.empty((5, 3)))
    with pytest.raises(ValueError, match="tuple of 2"):
        fl.linear_loss(W, X, y, out=(np.empty((5, 3)), np.empty(3)))
    with pytest.raises(ValueError, match="out\\[1\\] \\(db\\) must have shape \\(3,\\)"):
        fl.linear_loss(W, X, y, b=b, out=(np.empty((5, 3)), np.empty(4)))
    with pytest.raises(ValueError, match="needs grad=True"):
        fl.linear_loss(W, X, y, grad=False, out=np.empty((5, 3)))
    with pytest.raises(TypeError, match="must be a NumPy array; got list"):
        fl.linear_loss(W, X, y, out=[[0.0] * 3] * 5)
    W0 = W.copy()
    fl.linear_loss(W, X, y, out=np.empty((5, 3)))
    assert W.tobytes() == W0.tobytes()
