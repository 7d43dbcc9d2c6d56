"""The classifiers' solvers: full-batch L-BFGS (scikit-learn's optimum), partial_fit and
warm_start, and the fits that must not change or corrupt a model (a failed or interrupted
refit, a diverging SGD run)."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastloss  # noqa: E402
from fastloss import LinearSVM, Softmax  # noqa: E402
from fastloss import _solvers, classifiers  # noqa: E402


@parametrize_with_checks([Softmax(solver="lbfgs"), LinearSVM(solver="lbfgs", squared=True)])
def test_sklearn_estimator_checks_every_solver(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def std_digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _objective(coef, intercept, X, y, reg, sw=None):
    """mean (weighted) cross-entropy + reg * sum(coef**2), in NumPy float64."""
    S = X @ coef.T + intercept
    m = S.max(axis=1, keepdims=True)
    lse = np.log(np.exp(S - m).sum(axis=1)) + m[:, 0]
    L = lse - S[np.arange(len(y)), y]
    w = np.ones(len(y)) if sw is None else sw
    return float((w * L).sum() / w.sum() + reg * (coef**2).sum())


def _same_predictions(a, b, X):
    """Equal predictions, except where b's two best scores are within 1e-6 (a tie that
    rounding may decide either way); at most one such row."""
    S = b.decision_function(X)
    top2 = np.sort(S, axis=1)[:, -2:]
    tie = top2[:, 1] - top2[:, 0] < 1e-6
    assert tie.sum() <= 1
    np.testing.assert_array_equal(a.predict(X)[~tie], b.predict(X)[~tie])


@pytest.mark.parametrize("C", [0.1, 1.0])
def test_lbfgs_equals_logistic_regression(std_digits, C):
    X, y = std_digits
    n = len(y)
    lr = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
    m = Softmax(solver="lbfgs", reg=1 / (2 * C * n), tol=1e-10, max_iter=10000).fit(X, y)
    scale = np.abs(lr.coef_).max()
    np.testing.assert_allclose(m.coef_, lr.coef_, rtol=1e-3, atol=1e-3 * scale)
    np.testing.assert_allclose(np.linalg.norm(m.coef_ - lr.coef_), 0,
                               atol=1e-3 * np.linalg.norm(lr.coef_))
    np.testing.assert_allclose(m.intercept_, lr.intercept_, rtol=1e-3,
                               atol=1e-3 * np.abs(lr.intercept_).max())
    _same_predictions(m, lr, X)
    np.testing.assert_allclose(m.predict_proba(X), lr.predict_proba(X), atol=1e-4)
    assert 0 < m.n_iter_ < 10000
    # the objective it reached is the optimum: no lower than sklearn's (to rounding)
    reg = 1 / (2 * C * n)
    f_m = _objective(m.coef_, m.intercept_, X, y, reg)
    f_lr = _objective(lr.coef_, lr.intercept_, X, y, reg)
    assert f_m <= f_lr * (1 + 1e-10)
    assert m.loss_history_[-1] == pytest.approx(f_m, rel=1e-9)


def test_lbfgs_sample_and_class_weights(std_digits):
    X, y = std_digits
    X, y = X[:600], y[:600]
    w = np.random.default_rng(0).integers(0, 4, len(y)).astype(float)
    C = 0.5
    # weighted: the objective of LogisticRegression with the same weights
    lr = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y, sample_weight=w)
    m = Softmax(solver="lbfgs", reg=1 / (2 * C * w.sum()), tol=1e-10,
                max_iter=10000).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(m.coef_, lr.coef_, rtol=1e-3,
                               atol=1e-3 * np.abs(lr.coef_).max())
    # integer weights: the model of the data with each row repeated that many times
    k = w.astype(int)
    r = Softmax(solver="lbfgs", reg=1 / (2 * C * w.sum()), tol=1e-10,
                max_iter=10000).fit(np.repeat(X, k, 0), np.repeat(y, k))
    np.testing.assert_allclose(m.coef_, r.coef_, rtol=1e-5, atol=1e-6)
    # class weights multiply the rows' weights
    cw = {c: 1.0 + c for c in range(10)}
    a = Softmax(solver="lbfgs", reg=1e-3, tol=1e-10, max_iter=10000,
                class_weight=cw).fit(X, y)
    b = Softmax(solver="lbfgs", reg=1e-3, tol=1e-10, max_iter=10000).fit(
        X, y, sample_weight=1.0 + y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-8)
    assert not np.allclose(a.coef_, Softmax(solver="lbfgs", reg=1e-3, tol=1e-10,
                                            max_iter=10000).fit(X, y).coef_, atol=1e-3)
    with pytest.raises(ValueError, match="label 12"):
        Softmax(solver="lbfgs", class_weight={12: 1.0}).fit(X, y)


def test_lbfgs_float32_stays_float32_in_the_kernel(std_digits, monkeypatch):
    X, y = std_digits
    seen = []
    real = _solvers.linear_loss

    def spy(W, X, y, **kw):
        seen.append((W.dtype, X.dtype, kw["b"].dtype))
        return real(W, X, y, **kw)

    monkeypatch.setattr(_solvers, "linear_loss", spy)
    m32 = Softmax(solver="lbfgs", reg=1e-4, tol=1e-5).fit(X.astype(np.float32), y)
    assert m32.coef_.dtype == np.float32 and m32.intercept_.dtype == np.float32
    assert seen and set(seen) == {(np.dtype(np.float32),) * 3}
    m64 = Softmax(solver="lbfgs", reg=1e-4, tol=1e-5).fit(X, y)
    assert m64.coef_.dtype == np.float64
    np.testing.assert_allclose(m32.coef_, m64.coef_, rtol=1e-2,
                               atol=1e-2 * np.abs(m64.coef_).max())
    assert m32.predict_proba(X.astype(np.float32)).dtype == np.float32


def test_linear_svm_lbfgs_squared(digits_split):
    Xtr, ytr, Xte, yte = digits_split
    m = LinearSVM(solver="lbfgs", squared=True).fit(Xtr, ytr)
    assert m.score(Xte, yte) >= 0.95
    # the squared hinge's optimum: its gradient vanishes there
    _, dW, db = fastloss.linear_loss(m.coef_.T, Xtr, ytr, loss="hinge", squared=True,
                                     reg=m.reg, b=m.intercept_)
    assert np.abs(dW).max() < 1e-3 and np.abs(db).max() < 1e-3
    # squared hinge by SGD too
    s = LinearSVM(squared=True, learning_rate=1e-3, random_state=0).fit(Xtr, ytr)
    assert s.score(Xte, yte) >= 0.93


def test_plain_hinge_with_lbfgs_is_a_value_error(digits_split):
    Xtr, ytr, _, _ = digits_split
    m = LinearSVM(solver="lbfgs")
    with pytest.raises(ValueError, match=r"squared=True.*plain hinge|plain hinge.*squared=True"):
        m.fit(Xtr, ytr)
    assert not hasattr(m, "coef_")
    with pytest.raises(ValueError, match="solver must be one of 'sgd', 'lbfgs'"):
        Softmax(solver="newton").fit(Xtr, ytr)


def test_lbfgs_max_iter_warns_and_counts(digits_split):
    Xtr, ytr, _, _ = digits_split
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        m = Softmax(solver="lbfgs", max_iter=3, reg=1e-5).fit(Xtr, ytr)
    assert m.n_iter_ == 3 and len(m.loss_history_) == 3
    assert m.loss_history_[0] > m.loss_history_[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = Softmax(solver="lbfgs", reg=1e-2).fit(Xtr, ytr)
    assert 0 < m.n_iter_ < 100
    _, dW, db = fastloss.linear_loss(m.coef_.T, Xtr, ytr, reg=m.reg, b=m.intercept_)
    assert max(np.abs(dW).max(), np.abs(db).max()) < 1e-4  # (tol)


def test_warm_start(digits_split):
    Xtr, ytr, _, _ = digits_split
    a = Softmax(solver="lbfgs", reg=1e-3, tol=1e-8, max_iter=1000, warm_start=True)
    a.fit(Xtr, ytr)
    n_cold, coef = a.n_iter_, a.coef_.copy()
    a.fit(Xtr, ytr)  # from the optimum: done at once
    assert a.n_iter_ <= 2 < n_cold
    np.testing.assert_allclose(a.coef_, coef, rtol=1e-6, atol=1e-9)
    assert a.coef_ is not coef
    cold = Softmax(solver="lbfgs", reg=1e-3, tol=1e-8, max_iter=1000).fit(Xtr, ytr)
    cold.fit(Xtr, ytr)
    assert cold.n_iter_ == n_cold
    # SGD: the second fit continues from the first model
    s = Softmax(random_state=0, num_iters=100, warm_start=True).fit(Xtr, ytr)
    c0 = s.coef_.copy()
    s.set_params(num_iters=0).fit(Xtr, ytr)
    np.testing.assert_array_equal(s.coef_, c0)
    # other classes: a fresh start
    s.set_params(num_iters=50).fit(Xtr[ytr < 3], ytr[ytr < 3])
    assert s.coef_.shape == (3, 64)


def test_partial_fit_digits(digits_split):
    Xtr, ytr, Xte, yte = digits_split
    m = Softmax(random_state=0)
    rng = np.random.default_rng(0)
    for _ in range(8):  # 8 passes of 200-row calls: 48 steps
        p = rng.permutation(len(ytr))
        for i in range(0, len(p), 200):
            m.partial_fit(Xtr[p[i:i + 200]], ytr[p[i:i + 200]], classes=np.arange(10))
    assert m.score(Xte, yte) >= 0.95
    s = LinearSVM(random_state=0)
    for _ in range(5):
        for i in range(0, len(ytr), 200):
            s.partial_fit(Xtr[i:i + 200], ytr[i:i + 200], classes=np.arange(10))
    assert s.score(Xte, yte) >= 0.92
    assert s.n_iter_ == 5 * -(-len(ytr) // 200) and len(s.loss_history_) == s.n_iter_


def test_partial_fit_keeps_the_momentum_buffer(digits_split):
    Xtr, ytr, _, _ = digits_split
    X1, y1, X2, y2 = Xtr[:300], ytr[:300], Xtr[300:500], ytr[300:500]
    lr, mu, reg = 0.05, 0.9, 1e-3
    m = Softmax(learning_rate=lr, momentum=mu, reg=reg, batch_size=1000, num_iters=0,
                random_state=0).fit(Xtr, ytr)
    W0, b0 = m.coef_.T.copy(), m.intercept_.copy()
    m.partial_fit(X1, y1)
    m.partial_fit(X2, y2)
    # PyTorch's momentum by hand: the first buffer is the gradient itself
    _, gW, gb = fastloss.linear_loss(W0, X1, y1, reg=reg, b=b0)
    vW, vb = gW, gb
    W1, b1 = W0 - lr * vW, b0 - lr * vb
    _, gW, gb = fastloss.linear_loss(W1, X2, y2, reg=reg, b=b1)
    vW, vb = mu * vW + gW, mu * vb + gb
    W2, b2 = W1 - lr * vW, b1 - lr * vb
    np.testing.assert_allclose(m.coef_.T, W2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.intercept_, b2, rtol=1e-9, atol=1e-12)
    assert m.n_iter_ == 2
    # weights multiply each row's loss (sum of w_i L_i / rows in the minibatch)
    w = np.random.default_rng(2).uniform(0, 2, 300)
    a = Softmax(learning_rate=lr, momentum=0.0, reg=reg, batch_size=1000, num_iters=0,
                random_state=0).fit(Xtr, ytr)
    a.partial_fit(X1, y1, sample_weight=w)
    _, gW, gb = fastloss.linear_loss(W0, X1, y1, reg=reg, b=b0, sample_weight=w / 300,
                                     reduction="sum")
    np.testing.assert_allclose(a.coef_.T, W0 - lr * gW, rtol=1e-9, atol=1e-12)


def test_partial_fit_errors(digits_split):
    Xtr, ytr, _, _ = digits_split
    m = Softmax()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        m.partial_fit(Xtr, ytr)
    assert not hasattr(m, "coef_")
    m.partial_fit(Xtr[:100], ytr[:100], classes=np.arange(10))
    with pytest.raises(ValueError, match="not the same as on the first call"):
        m.partial_fit(Xtr, ytr, classes=np.arange(11))
    with pytest.raises(ValueError, match=r"y\[0\] = 42 is not among the classes"):
        m.partial_fit(Xtr[:5], np.full(5, 42))
    with pytest.raises(ValueError, match="X has 3 features"):
        m.partial_fit(Xtr[:5, :3], ytr[:5])
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as e:
        Softmax(solver="lbfgs").partial_fit(Xtr, ytr, classes=np.arange(10))
    assert 'partial_fit needs solver="sgd"' in str(e.value.__cause__)
    assert not hasattr(Softmax(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="'balanced' is not supported for partial_fit"):
        Softmax(class_weight="balanced").partial_fit(Xtr, ytr, classes=np.arange(10))


# ---- a refit that fails or is interrupted leaves the old model whole ------------------

def _three_class(digits_split):
    Xtr, ytr, _, _ = digits_split
    keep = ytr < 3
    return Xtr[keep], ytr[keep]


def _snapshot(m):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(m).items()}


def _assert_same(m, snap):
    assert set(vars(m)) == set(snap)
    for k, v in snap.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(getattr(m, k), v)
        elif k != "_velocity":
            assert getattr(m, k) == v


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_failed_refit_leaves_the_old_model(digits_split, solver):
    X3, y3 = _three_class(digits_split)
    Xtr, ytr, Xte, _ = digits_split
    for cls, kw in ((Softmax, {}), (LinearSVM, {"squared": True})):
        m = cls(random_state=0, solver=solver, **kw).fit(X3, y3)
        pred, snap, params = m.predict(Xte), _snapshot(m), m.get_params()
        with pytest.raises(ValueError, match="n_threads"):
            m.set_params(n_threads=0).fit(Xtr, ytr)  # 10 classes: rejected
        m.set_params(**params)
        _assert_same(m, snap)
        assert m.classes_.tolist() == [0, 1, 2]
        np.testing.assert_array_equal(m.predict(Xte), pred)
        with pytest.raises(ValueError):  # other features, bad weights
            m.fit(Xtr[:, :10], ytr, sample_weight=-np.ones(len(ytr)))
        _assert_same(m, snap)
        assert m.n_features_in_ == 64
        with pytest.raises(ValueError, match="reg"):
            m.set_params(reg=-1.0).fit(Xtr, ytr)
        m.set_params(**params)
        _assert_same(m, snap)


def test_interrupted_fits_leave_the_old_model(digits_split, monkeypatch):
    X3, y3 = _three_class(digits_split)
    Xtr, ytr, Xte, _ = digits_split
    m = Softmax(random_state=0).fit(X3, y3)
    pred, snap, params = m.predict(Xte), _snapshot(m), m.get_params()
    real_update = classifiers._core.sgd_update
    calls = [0]

    def interrupt_update(*a):
        calls[0] += 1
        if calls[0] == 40:
            raise KeyboardInterrupt
        return real_update(*a)

    monkeypatch.setattr(classifiers._core, "sgd_update", interrupt_update)
    with pytest.raises(KeyboardInterrupt):
        m.fit(Xtr, ytr)  # (10 classes: stopped mid-run)
    _assert_same(m, snap)
    np.testing.assert_array_equal(m.predict(Xte), pred)
    calls[0] = 0
    with pytest.raises(KeyboardInterrupt):  # partial_fit changes nothing either
        m.set_params(batch_size=10).partial_fit(X3, y3)
    m.set_params(**params)
    _assert_same(m, snap)
    calls[0] = 0
    with pytest.raises(KeyboardInterrupt):  # CS231n's train
        m.train(X3, y3, num_iters=100)
    _assert_same(m, snap)
    monkeypatch.undo()

    real_loss, n = _solvers.linear_loss, [0]

    def interrupt_loss(*a, **kw):
        n[0] += 1
        if n[0] == 5:
            raise KeyboardInterrupt
        return real_loss(*a, **kw)

    monkeypatch.setattr(_solvers, "linear_loss", interrupt_loss)
    with pytest.raises(KeyboardInterrupt):
        m.set_params(solver="lbfgs").fit(Xtr, ytr)
    m.set_params(**params)
    _assert_same(m, snap)
    np.testing.assert_array_equal(m.predict(Xte), pred)


# ---- diverging and rising SGD runs --------------------------------------------------

@pytest.mark.parametrize("cls, lr, reg", [(Softmax, 10.0, 1.0), (LinearSVM, 1e3, 10.0)])
def test_diverging_fit_is_an_error_naming_the_learning_rate(digits_split, cls, lr, reg):
    Xtr, ytr, Xte, _ = digits_split
    m = cls(learning_rate=lr, reg=reg, random_state=0)
    with pytest.raises(ValueError, match=f"diverged.*learning_rate={lr:g}.*smaller learning"):
        m.fit(Xtr, ytr)
    with pytest.raises(NotFittedError):
        m.predict(Xte)
    ok = cls(random_state=0).fit(Xtr, ytr)  # a good model is kept when a refit diverges
    coef = ok.coef_.copy()
    with pytest.raises(ValueError, match="diverged"):
        ok.set_params(learning_rate=lr, reg=reg).fit(Xtr, ytr)
    np.testing.assert_array_equal(ok.coef_, coef)


def test_rising_loss_warns_and_a_good_fit_does_not(digits_split):
    X, y = load_digits(return_X_y=True)  # raw pixels 0..16
    for cls in (Softmax, LinearSVM):
        with pytest.warns(ConvergenceWarning, match="smaller learning rate.*StandardScaler"):
            cls(random_state=0).fit(X, y)
    Xtr, ytr, _, _ = digits_split
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for cls in (Softmax, LinearSVM):
            cls(random_state=0).fit(Xtr, ytr)
