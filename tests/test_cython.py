"""The C-level API for Cython (fastloss.cython_kernels): a user's extension
(tests/cython_user.pyx) cimports it, is built at test time in a temporary folder outside the
source tree against the importable fastloss (setuptools + Cython + a compiler, nothing
else), and must give the Python API's bits for every function and both dtypes, from the
main thread and from its own prange loop, and the documented return codes."""

from __future__ import annotations

import os
from pathlib import Path

import fastloss
import fastloss.cython_kernels
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

DTYPES = [np.float32, np.float64]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ext(tmp_path_factory):
    from cython_build import build

    folder = tmp_path_factory.mktemp("cython_user")
    assert REPO not in folder.resolve().parents  # a user's folder, not the source tree
    return build(folder)


def same(a, b, what=""):
    """Bitwise equal: dtype, shape and every byte (NaNs included)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.tobytes() == b.tobytes(), f"{what}: values differ:\n{a}\n{b}"


def data(N, C, dt, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    S = (rng.standard_normal((N, C)) * scale).astype(dt)
    y = rng.integers(0, C, N).astype(np.int64)
    return S, y


def one(dt):
    return np.full(1, np.nan, dt)


def test_module_exports_the_contract():
    capi = fastloss.cython_kernels.__pyx_capi__
    for base in ("softmax_cross_entropy", "multiclass_hinge", "linear_loss", "sgd_step",
                 "score_loss", "softmax", "log_softmax"):
        for suffix in ("_f32", "_f64"):
            assert base + suffix in capi
    for name in ("score_options_init", "max_threads", "simd_level"):
        assert name in capi
    pxd = Path(fastloss.__file__).with_name("cython_kernels.pxd")
    assert pxd.is_file()  # installed next to the module: what `cimport` reads
    assert "softmax_cross_entropy_f32(const float* S, Py_ssize_t N" in pxd.read_text()


def test_level_and_threads(ext):
    info = fastloss.build_info()
    assert ext.info() == (info["max_threads"], info["isa_active"])
    assert ext.default_options() == (2, 1.0, False, 0.0, 2, True, True)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(200, 10), (7, 3), (33, 37), (5, 300), (1, 1)])
def test_softmax_cross_entropy_bits(ext, dt, shape):
    S, y = data(*shape, dt, seed=shape[0])
    S0 = S.copy()
    ref_loss, ref_G = fastloss.softmax_cross_entropy(S, y)
    loss, G = one(dt), np.full(S.shape, np.nan, dt)
    assert ext.softmax_cross_entropy(S, y, loss, G, 1) == 0
    same(loss[0], ref_loss, "loss")
    same(G, ref_G, "G")
    loss2 = one(dt)
    assert ext.softmax_cross_entropy(S, y, loss2, None, -1) == 0  # G NULL: the loss only
    same(loss2, loss, "loss without G")
    same(S, S0, "S unchanged")
    Sin = S.copy()  # G may be S itself
    assert ext.softmax_cross_entropy(Sin, y, loss2, Sin, 2) == 0
    same(Sin, ref_G, "in place")
    assert loss2[0] == ref_loss


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(200, 10), (9, 4), (40, 53)])
@pytest.mark.parametrize("margin", [1.0, 0.25, 3.0])
def test_multiclass_hinge_bits(ext, dt, shape, margin):
    S, y = data(*shape, dt, seed=7, scale=0.7)
    ref_loss, ref_G = fastloss.multiclass_hinge(S, y, margin=margin)
    loss, G = one(dt), np.full(S.shape, np.nan, dt)
    assert ext.multiclass_hinge(S, y, margin, loss, G, 1) == 0
    same(loss[0], ref_loss, "loss")
    same(G, ref_G, "G")
    assert ext.multiclass_hinge(S, y, margin, loss, None, 1) == 0
    same(loss[0], ref_loss, "loss without G")


@given(
    N=st.integers(1, 40),
    C=st.integers(1, 40),
    dt=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-3, 1.0, 30.0, 1e30]),
)
def test_score_losses_bits_any_shape(ext, N, C, dt, seed, scale):
    S, y = data(N, C, dt, seed, scale)
    for fn, cy in ((fastloss.softmax_cross_entropy, ext.softmax_cross_entropy),
                   (fastloss.multiclass_hinge, lambda *a: ext.multiclass_hinge(
                       a[0], a[1], 1.0, *a[2:]))):
        ref_loss, ref_G = fn(S, y)
        loss, G = one(dt), np.empty_like(S)
        assert cy(S, y, loss, G, 1) == 0
        same(loss[0], ref_loss, fn.__name__)
        same(G, ref_G, fn.__name__)


# (loss code, Python function, its keyword options)
OPTIONS = [
    (0, "multiclass_hinge", dict(margin=1.0, squared=False, variant="weston_watkins")),
    (0, "multiclass_hinge", dict(margin=0.5, squared=True, variant="weston_watkins")),
    (1, "multiclass_hinge", dict(margin=1.0, squared=False, variant="crammer_singer")),
    (1, "multiclass_hinge", dict(margin=2.0, squared=True, variant="crammer_singer")),
    (2, "softmax_cross_entropy", dict(label_smoothing=0.0)),
    (2, "softmax_cross_entropy", dict(label_smoothing=0.1)),
]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code,name,kw", OPTIONS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
def test_score_loss_options_bits(ext, dt, code, name, kw, reduction, weighted):
    S, y = data(60, 7, dt, seed=3, scale=1.0)
    rng = np.random.default_rng(5)
    # weights of the scores' dtype (the C API takes them widened to double)
    sw = rng.uniform(0.0, 2.0, 60).astype(dt) if weighted else None
    cw = rng.uniform(0.1, 3.0, 7).astype(dt) if weighted else None
    ref_loss, ref_G = getattr(fastloss, name)(S, y, sample_weight=sw, class_weight=cw,
                                              reduction=reduction, **kw)
    red = {"none": 0, "sum": 1, "mean": 2}[reduction]
    loss = np.full(60 if red == 0 else 1, np.nan, dt)
    G = np.full(S.shape, np.nan, dt)
    margin = kw.get("margin", 1.0)
    r = ext.score_loss(S, y, code, margin, kw.get("squared", False),
                       kw.get("label_smoothing", 0.0), red,
                       None if sw is None else sw.astype(np.float64),
                       None if cw is None else cw.astype(np.float64), loss, G, 1)
    assert r == 0
    same(loss if red == 0 else loss[0], ref_loss, "loss")
    same(G, ref_G, "G")


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape", [(200, 10), (3, 1), (17, 129)])
def test_softmax_bits(ext, dt, log, shape):
    S, _ = data(*shape, dt, seed=11, scale=10.0)
    ref = (fastloss.log_softmax if log else fastloss.softmax)(S)
    out = np.full(S.shape, np.nan, dt)
    assert ext.softmax(S, out, log, 1) == 0
    same(out, ref, "softmax")


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind,loss_name", [(0, "softmax"), (1, "hinge")])
@pytest.mark.parametrize("reg", [0.0, 2.5e-3])
@pytest.mark.parametrize("with_indices", [False, True])
@pytest.mark.parametrize("D,C", [(30, 10), (5, 3), (12, 300)])
def test_linear_loss_bits(ext, dt, kind, loss_name, reg, with_indices, D, C):
    rng = np.random.default_rng(D + C)
    N = 150
    X = rng.standard_normal((N, D)).astype(dt)
    W = (rng.standard_normal((D, C)) * 0.1).astype(dt)
    y = rng.integers(0, C, N).astype(np.int64)
    idx = rng.integers(0, N, 40).astype(np.int64) if with_indices else None  # repeats too
    # the fused kernel: the Python API's path for C < 256 (method="auto")
    method = "fused" if C >= 256 else "auto"
    ref_loss, ref_dW = fastloss.linear_loss(W, X, y, loss=loss_name, reg=reg, indices=idx,
                                            method=method)
    loss, dW = one(dt), np.full((D, C), np.nan, dt)
    M = 0 if idx is None else idx.shape[0]
    assert ext.linear_loss(W, X, y, idx, M, kind, reg, loss, dW, 1) == 0
    same(loss[0], ref_loss, "loss")
    same(dW, ref_dW, "dW")
    assert ext.linear_loss(W, X, y, idx, M, kind, reg, loss, None, -1) == 0
    same(loss[0], ref_loss, "loss without dW")


SGD_CASES = [
    dict(momentum=0.0),
    dict(momentum=0.0, weight_decay=1e-2, maximize=True),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.3, weight_decay=1e-3),
    dict(momentum=0.8, nesterov=True),
    dict(momentum=0.5, nesterov=True, weight_decay=0.1, maximize=True),
]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd_step_bits(ext, dt, kw):
    rng = np.random.default_rng(2)
    n = 1000
    p_ref = rng.standard_normal(n).astype(dt)
    p = p_ref.copy()
    vel = np.full(n, np.nan, dt) if kw["momentum"] else None
    v_ref = None
    for step in range(3):
        g = rng.standard_normal(n).astype(dt)
        g0 = g.copy()
        v_ref = fastloss.sgd_step(p_ref, g, lr=0.05, velocity=v_ref, **kw)
        r = ext.sgd_step(p, g, vel, 0.05, kw["momentum"], kw.get("dampening", 0.0),
                         kw.get("weight_decay", 0.0), kw.get("nesterov", False),
                         kw.get("maximize", False), step == 0, 1)
        assert r == 0
        same(p, p_ref, f"param after step {step}")
        if vel is not None:
            same(vel, v_ref, f"velocity after step {step}")
        same(g, g0, "grad unchanged")


@pytest.mark.parametrize("dt", DTYPES)
def test_prange_minibatches(ext, dt):
    """The user's own prange over minibatches, one kernel call per minibatch with
    n_threads=1: each minibatch's loss and gradient are the Python API's."""
    batch, nb, C = 50, 64, 10
    S, y = data(batch * nb, C, dt, seed=21)
    losses = np.full(nb, np.nan, dt)
    G = np.full(S.shape, np.nan, dt)
    codes = np.full(nb, -99, np.intc)
    ext.minibatch_softmax(S, y, batch, losses, G, codes, 2)
    assert (codes == 0).all()
    for b in range(nb):
        rows = slice(b * batch, (b + 1) * batch)
        ref_loss, ref_G = fastloss.softmax_cross_entropy(S[rows], y[rows])
        same(losses[b], ref_loss, f"minibatch {b}")
        same(G[rows], ref_G, f"minibatch {b}")

    rng = np.random.default_rng(4)
    N, D, m, nb = 500, 20, 32, 40
    X = rng.standard_normal((N, D)).astype(dt)
    W = (rng.standard_normal((D, C)) * 0.1).astype(dt)
    yl = rng.integers(0, C, N).astype(np.int64)
    idx = rng.integers(0, N, (nb, m)).astype(np.int64)
    for kind, name in ((0, "softmax"), (1, "hinge")):
        losses = np.full(nb, np.nan, dt)
        dW = np.full((nb, D, C), np.nan, dt)
        codes = np.full(nb, -99, np.intc)
        ext.minibatch_linear(W, X, yl, idx, kind, 1e-3, losses, dW, codes)
        assert (codes == 0).all()
        for b in range(nb):
            ref_loss, ref_dW = fastloss.linear_loss(W, X, yl, loss=name, reg=1e-3,
                                                    indices=idx[b])
            same(losses[b], ref_loss, f"{name} minibatch {b}")
            same(dW[b], ref_dW, f"{name} minibatch {b}")


@pytest.mark.parametrize("dt", DTYPES)
def test_thread_counts_same_bits(ext, dt):
    S, y = data(20000, 10, dt, seed=9)  # large enough for the kernels to start threads
    out = []
    for nt in (1, 2, 3, -1):
        loss, G = one(dt), np.empty_like(S)
        assert ext.softmax_cross_entropy(S, y, loss, G, nt) == 0
        out.append((loss.copy(), G))
    for loss, G in out[1:]:
        same(loss, out[0][0], "loss")
        same(G, out[0][1], "G")


# ---- return codes


@pytest.mark.parametrize("dt", DTYPES)
def test_bad_labels_give_the_first_position_plus_one(ext, dt):
    S, y = data(40, 5, dt, seed=1)
    y[12], y[7], y[30] = 5, -1, 99  # the first bad one is y[7]
    loss, G = one(dt), np.empty_like(S)
    assert ext.softmax_cross_entropy(S, y, loss, G, 1) == 8
    assert ext.softmax_cross_entropy(S, y, loss, None, -1) == 8
    assert ext.multiclass_hinge(S, y, 1.0, loss, G, 1) == 8
    for red in (0, 1, 2):
        for code in (0, 1, 2):
            L = np.empty(40 if red == 0 else 1, dt)
            assert ext.score_loss(S, y, code, 1.0, False, 0.0, red, None, None, L, G, 1) == 8
    with pytest.raises(ValueError, match=r"y\[7\] = -1"):  # the Python API names the same
        fastloss.softmax_cross_entropy(S, y)
    y2 = y.copy()
    y2[:] = 0
    y2[0] = 5
    assert ext.softmax_cross_entropy(S, y2, loss, G, 1) == 1
    # a large batch over threads: still the first bad position
    Sb, yb = data(30000, 10, dt, seed=2)
    yb[25000], yb[17000] = 10, 10
    Gb = np.empty_like(Sb)
    for nt in (1, -1):
        assert ext.softmax_cross_entropy(Sb, yb, loss, Gb, nt) == 17001


@pytest.mark.parametrize("dt", DTYPES)
def test_linear_loss_bad_labels_and_indices(ext, dt):
    rng = np.random.default_rng(0)
    N, D, C = 50, 6, 4
    X = rng.standard_normal((N, D)).astype(dt)
    W = rng.standard_normal((D, C)).astype(dt)
    y = rng.integers(0, C, N).astype(np.int64)
    loss, dW = one(dt), np.empty((D, C), dt)
    yb = y.copy()
    yb[20] = C
    yb[33] = -3
    for kind in (0, 1):
        assert ext.linear_loss(W, X, yb, None, 0, kind, 0.0, loss, dW, 1) == 21
        # with indices: the position in y of the first bad label among the rows taken
        idx = np.array([1, 2, 33, 20, 5], np.int64)
        assert ext.linear_loss(W, X, yb, idx, 5, kind, 0.0, loss, dW, 1) == 34
        # a bad label in a row not taken is not an error (as in Python)
        idx = np.array([1, 2, 3, 4], np.int64)
        assert ext.linear_loss(W, X, yb, idx, 4, kind, 0.1, loss, dW, 1) == 0
        ref_loss, ref_dW = fastloss.linear_loss(W, X, yb, loss=("softmax", "hinge")[kind],
                                                reg=0.1, indices=idx)
        same(loss[0], ref_loss)
        same(dW, ref_dW)
        # bad indices: the first bad position in indices, plus one (checked first)
        for bad, pos in (([0, 1, 2, N, 4], 4), ([3, -1, 2], 2), ([N + 7], 1)):
            idx = np.array(bad, np.int64)
            assert ext.linear_loss(W, X, yb, idx, idx.shape[0], kind, 0.0, loss, dW, 1) == pos
        # only the first M indices are read
        idx = np.array([0, 1, N], np.int64)
        assert ext.linear_loss(W, X, y, idx, 2, kind, 0.0, loss, dW, 1) == 0


def test_null_and_odd_arguments(ext):
    codes = ext.null_arguments()
    ok = {k for k in codes if k.endswith("ok")}
    for k, r in codes.items():
        assert r == (0 if k in ok else -1), f"{k}: {r}"
    assert len(codes) - len(ok) >= 30


@pytest.mark.parametrize("dt", DTYPES)
def test_bad_options(ext, dt):
    S, y = data(10, 4, dt)
    L, G = one(dt), np.empty_like(S)
    sw, cw = np.ones(10), np.ones(4)

    def score(code=2, margin=1.0, squared=False, eps=0.0, red=2, sw=None, cw=None, nt=1):
        return ext.score_loss(S, y, code, margin, squared, eps, red, sw, cw, L, G, nt)

    assert score() == 0
    assert score(sw=sw, cw=cw) == 0
    for bad in (dict(code=3), dict(code=-1), dict(red=3), dict(red=-1), dict(eps=1.5),
                dict(eps=-0.1), dict(eps=float("nan")), dict(code=0, eps=0.1),
                dict(code=1, margin=float("inf")), dict(margin=float("nan")), dict(nt=0),
                dict(nt=-5)):
        assert score(**bad) == -1, bad
    swn = sw.copy()
    swn[3] = -1.0
    cwn = cw.copy()
    cwn[2] = -0.5
    assert score(sw=swn) == -1
    assert score(cw=cwn) == -1

    rng = np.random.default_rng(1)
    X = rng.standard_normal((10, 3)).astype(dt)
    W = rng.standard_normal((3, 4)).astype(dt)
    dW = np.empty((3, 4), dt)

    def lin(kind=0, reg=0.0, nt=1):
        return ext.linear_loss(W, X, y, None, 0, kind, reg, L, dW, nt)

    assert lin() == 0
    for bad in (dict(kind=2), dict(kind=-1), dict(reg=-1e-3), dict(reg=float("nan")),
                dict(reg=float("inf")), dict(nt=0), dict(nt=-2)):
        assert lin(**bad) == -1, bad

    p, g, v = np.ones(8, dt), np.ones(8, dt), np.zeros(8, dt)

    def sgd(lr=0.1, mom=0.0, damp=0.0, wd=0.0, nest=False, vel=v, nt=1):
        return ext.sgd_step(p, g, vel, lr, mom, damp, wd, nest, False, True, nt)

    assert sgd() == 0
    assert sgd(mom=0.9) == 0
    assert sgd(vel=None) == 0  # no buffer needed without momentum
    for bad in (dict(lr=-0.1), dict(lr=float("nan")), dict(mom=-0.5), dict(mom=float("inf")),
                dict(damp=float("nan")), dict(wd=-1.0), dict(nest=True),
                dict(mom=0.9, damp=0.1, nest=True), dict(mom=0.9, vel=None), dict(nt=0)):
        before = p.copy()
        assert sgd(**bad) == -1, bad
        same(p, before, "param untouched by a rejected call")

    out = np.empty_like(S)
    assert ext.softmax(S, out, False, 0) == -1
    assert ext.softmax(S, out, True, -3) == -1


@pytest.mark.skipif(os.environ.get("FASTLOSS_TEST_INSTALLED") != "1",
                    reason="checks the installed wheel's RECORD (.ci/run sets FASTLOSS_TEST_INSTALLED)")
def test_the_wheel_installs_the_cython_api():
    import importlib.metadata

    dist = importlib.metadata.distribution("fastloss")
    recorded = {Path(dist.locate_file(f)).resolve() for f in dist.files or []}
    module = Path(fastloss.cython_kernels.__file__).resolve()
    assert module in recorded, module
    assert module.with_name("cython_kernels.pxd") in recorded


def test_the_documentation_example_builds_and_matches(tmp_path):
    """docs/guide/cython.md's my_train.pyx, built with the page's own setup.py: every
    minibatch's loss and gradient are the Python API's bits, and a bad label is the
    documented ValueError."""
    from cython_build import build_docs_example

    my_train = build_docs_example(tmp_path / "docs_example")
    batch, n_b, C = 50, 8, 10
    S, y = data(batch * n_b, C, np.float64, seed=5)
    losses = np.full(n_b, np.nan)
    G = np.full(S.shape, np.nan)
    my_train.minibatch_losses(S, y, batch, losses, G)
    for b in range(n_b):
        rows = slice(b * batch, (b + 1) * batch)
        ref_loss, ref_G = fastloss.softmax_cross_entropy(S[rows], y[rows])
        same(losses[b], ref_loss, f"loss of minibatch {b}")
        same(G[rows], ref_G, f"gradient of minibatch {b}")
    y[3 * batch + 7] = C
    with pytest.raises(ValueError, match=r"1 minibatches have a label outside \[0, 10\)"):
        my_train.minibatch_losses(S, y, batch, losses, G)
