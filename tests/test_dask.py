"""fastloss.dask on a real 2-process distributed.LocalCluster (one per module): the
distributed linear loss against the in-memory call, the classifiers' L-BFGS fit on dask
arrays, X's chunks staying where they are, a worker killed mid-fit, and the synchronous
and threaded schedulers."""

import os
import signal

import numpy as np
import pytest
from helpers import assert_close

if os.environ.get("CI"):  # the test extra installs dask and distributed: never skipped there
    import dask  # noqa: F401
    import distributed  # noqa: F401
else:
    pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
pytest.importorskip("sklearn")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import fastloss  # noqa: E402
import fastloss.dask as fdask  # noqa: E402
from fastloss import LinearSVM, Softmax  # noqa: E402

RTOL = {np.float64: 1e-12, np.float32: 1e-5}


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, memory_limit="1GiB")
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture(scope="module")
def digits7():
    X, y = load_digits(return_X_y=True)
    keep = y < 7
    return StandardScaler().fit_transform(X[keep]), y[keep]


def _data(dtype, N=1003, D=17, C=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D)).astype(dtype)
    W = (0.3 * rng.standard_normal((D, C))).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    y = rng.integers(0, C, N)
    sw = rng.uniform(0, 2, N)
    cw = rng.uniform(0.5, 1.5, C)
    return X, W, b, y, sw, cw


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss, extra", [("softmax", {}), ("hinge", {}),
                                         ("hinge", {"squared": True})])
def test_linear_loss_equals_in_memory(client, dtype, loss, extra):
    X, W, b, y, sw, cw = _data(dtype)
    Xd, yd, swd = da.from_array(X, chunks=(250, -1)), da.from_array(y, 250), da.from_array(sw, 250)
    for kw in (dict(), dict(b=b), dict(b=b, sample_weight=sw, class_weight=cw),
               dict(b=b, sample_weight=sw, reduction="sum")):
        kw = dict(kw, loss=loss, reg=0.01, **extra)
        ref = fastloss.linear_loss(W, X, y, **kw)
        dkw = dict(kw, sample_weight=swd) if "sample_weight" in kw else kw
        got = fdask.linear_loss(W, Xd, yd, **dkw)
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            assert np.asarray(g).dtype == np.asarray(r).dtype
            if "sample_weight" not in kw:  # (float64 weights make the call float64)
                assert np.asarray(g).dtype == dtype
            assert_close(g, r, RTOL[dtype])
        again = fdask.linear_loss(W, Xd, yd, **dkw)  # deterministic for a given chunking
        for g, a in zip(got, again):
            np.testing.assert_array_equal(g, a)
    # NumPy labels and weights are chunked as X; a column-chunked X is rechunked
    Xc = da.from_array(X, chunks=(300, 5))
    got = fdask.linear_loss(W, Xc, y, loss=loss, b=b, sample_weight=sw, **extra)
    ref = fastloss.linear_loss(W, X, y, loss=loss, b=b, sample_weight=sw, **extra)
    for g, r in zip(got, ref):
        assert_close(g, r, RTOL[dtype])
    loss_only = fdask.linear_loss(W, Xd, yd, loss=loss, grad=False, **extra)
    np.testing.assert_allclose(loss_only, ref_l := fastloss.linear_loss(
        W, X, y, loss=loss, grad=False, **extra), rtol=RTOL[dtype])
    assert np.asarray(ref_l).dtype == dtype


def test_linear_loss_errors(client):
    X, W, b, y, sw, cw = _data(np.float64, N=100)
    Xd = da.from_array(X, chunks=(30, -1))
    bad = y.copy()
    bad[77] = 9
    with pytest.raises(ValueError, match="starts at row 60"):
        fdask.linear_loss(W, Xd, bad)
    with pytest.raises(ValueError, match="W.shape"):
        fdask.linear_loss(W[:5], Xd, y)
    with pytest.raises(ValueError, match=r"y has shape \(99,\)"):
        fdask.linear_loss(W, Xd, y[:99])
    with pytest.raises(TypeError, match="indices"):
        fdask.linear_loss(W, Xd, y, indices=[1, 2])


def _fit_pair(X, y, make, chunks=400, **fit_kw):
    mem = make().fit(X, y, **fit_kw)
    kw = {k: da.from_array(w, chunks) for k, w in fit_kw.items()}
    dsk = make().fit(da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks), **kw)
    return mem, dsk


def _close(a, b, rtol=1e-6):
    scale = np.abs(b).max()
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def test_fit_equals_in_memory(client, digits7):
    X, y = digits7
    make = lambda: Softmax(solver="lbfgs", reg=0.1, tol=1e-8, max_iter=500)  # noqa: E731
    mem, dsk = _fit_pair(X, y, make)
    assert dsk.classes_.tolist() == list(range(7)) and dsk.n_features_in_ == 64
    _close(dsk.coef_, mem.coef_)
    _close(dsk.intercept_, mem.intercept_)
    Xd = da.from_array(X, chunks=(400, -1))
    for meth in ("predict", "predict_proba", "decision_function"):
        out = getattr(dsk, meth)(Xd)
        assert isinstance(out, da.Array), meth
        ref = getattr(mem, meth)(X)
        if meth == "predict":
            np.testing.assert_array_equal(out.compute(), ref)
        else:
            np.testing.assert_allclose(out.compute(), ref, rtol=1e-5, atol=1e-7)
    s = dsk.score(Xd, da.from_array(y, 400))
    assert isinstance(s, float) and s == mem.score(X, y)
    # string labels, weights and the squared-hinge SVM
    names = np.array(list("abcdefg"))[y]
    w = np.random.default_rng(0).uniform(0, 2, len(y))
    make = lambda: LinearSVM(solver="lbfgs", squared=True, tol=1e-8,  # noqa: E731
                             reg=0.1, max_iter=500, class_weight="balanced")
    mem, dsk = _fit_pair(X, names, make, sample_weight=w)
    assert dsk.classes_.tolist() == list("abcdefg")
    _close(dsk.coef_, mem.coef_)
    np.testing.assert_array_equal(dsk.predict(Xd).compute(), mem.predict(X))
    # float32 stays float32
    mem, dsk = _fit_pair(X.astype(np.float32), y, lambda: Softmax(solver="lbfgs", reg=0.1))
    assert dsk.coef_.dtype == np.float32
    _close(dsk.coef_, mem.coef_, rtol=1e-3)


def test_sgd_on_dask_is_an_error_naming_lbfgs(client, digits7):
    X, y = digits7
    m = Softmax()
    with pytest.raises(ValueError, match='needs solver="lbfgs"'):
        m.fit(da.from_array(X, chunks=(100, -1)), da.from_array(y, 100))
    assert not hasattr(m, "coef_")


def test_x_chunks_never_move(client, digits7):
    X, y = digits7
    Xd = da.from_array(np.repeat(X, 4, 0), chunks=(400, -1)).persist()
    yd = da.from_array(np.repeat(y, 4), 400).persist()
    wait([Xd, yd])
    keys = {str(k) for k in dask.core.flatten(Xd.__dask_keys__())}
    before = {str(k): v for k, v in client.who_has(Xd).items()}
    assert all(len(v) == 1 for v in before.values())
    assert len({v[0] for v in before.values()}) == 2  # spread over both workers

    def clear(dask_worker):
        dask_worker.transfer_incoming_log.clear()

    def moved(dask_worker):
        return [(str(k), e["total"]) for e in dask_worker.transfer_incoming_log
                for k in e["keys"]]

    client.run(clear)
    m = Softmax(solver="lbfgs", reg=0.1).fit(Xd, yd)
    assert m.n_iter_ > 3
    transfers = [t for v in client.run(moved).values() for t in v]
    assert not [k for k, _ in transfers if k in keys]
    after = {str(k): v for k, v in client.who_has(Xd).items()}
    assert after == before


def test_worker_killed_mid_fit(client, digits7, monkeypatch):
    X, y = digits7
    make = lambda: Softmax(solver="lbfgs", reg=0.1, tol=1e-8, max_iter=500)  # noqa: E731
    Xd, yd = da.from_array(X, chunks=(400, -1)), da.from_array(y, 400)
    calm = make().fit(Xd, yd)
    mem = make().fit(X, y)
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    real_call, killed = fdask.DaskObjective.__call__, []

    def call(self, W, b):
        if self.evaluations == 3 and not killed:
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)
        return real_call(self, W, b)

    monkeypatch.setattr(fdask.DaskObjective, "__call__", call)
    hit = make().fit(Xd, yd)
    assert killed
    np.testing.assert_array_equal(hit.coef_, calm.coef_)  # the lost chunks recomputed
    np.testing.assert_array_equal(hit.intercept_, calm.intercept_)
    _close(hit.coef_, mem.coef_)
    client.wait_for_workers(2, timeout=60)


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_local_schedulers(digits7, scheduler):
    X, y = digits7
    make = lambda: Softmax(solver="lbfgs", reg=0.1, tol=1e-8, max_iter=500)  # noqa: E731
    with dask.config.set(scheduler=scheduler):
        mem, dsk = _fit_pair(X, y, make)
        p = dsk.predict_proba(da.from_array(X, chunks=(150, -1))).compute()
    _close(dsk.coef_, mem.coef_)
    np.testing.assert_allclose(p, mem.predict_proba(X), rtol=1e-5, atol=1e-7)
    X0, W, b, y0, _, _ = _data(np.float64)
    with dask.config.set(scheduler=scheduler):
        got = fdask.linear_loss(W, da.from_array(X0, chunks=(100, -1)), y0, b=b)
    for g, r in zip(got, fastloss.linear_loss(W, X0, y0, b=b)):
        np.testing.assert_allclose(g, r, rtol=1e-12)
