"""LinearSVM and Softmax: scikit-learn's estimator checks, labels of any type, the CS231n
API, and accuracy on the digits."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastloss  # noqa: E402
from fastloss import LinearSVM, Softmax  # noqa: E402


@parametrize_with_checks([LinearSVM(), Softmax()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls, floor", [(Softmax, 0.96), (LinearSVM, 0.95)])
def test_digits_accuracy(digits_split, cls, floor):
    Xtr, ytr, Xte, yte = digits_split
    m = cls(random_state=0).fit(Xtr, ytr)
    assert m.score(Xte, yte) >= floor
    assert m.coef_.shape == (10, 64) and m.intercept_.shape == (10,)
    assert len(m.loss_history_) == m.num_iters
    assert np.mean(m.loss_history_[-50:]) < np.mean(m.loss_history_[:10])


def test_string_labels_and_proba(digits_split):
    Xtr, ytr, Xte, yte = digits_split
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    m = Softmax(random_state=0, num_iters=300).fit(Xtr, names[ytr])
    assert set(m.classes_) == set(names)
    pred = m.predict(Xte)
    assert pred.dtype == m.classes_.dtype and np.mean(pred == names[yte]) > 0.9
    p = m.predict_proba(Xte)
    assert p.shape == (len(yte), 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(m.classes_[p.argmax(axis=1)], pred)
    svm = LinearSVM(random_state=0, num_iters=300).fit(Xtr, names[ytr])
    assert np.mean(svm.predict(Xte) == names[yte]) > 0.9


def test_deterministic_and_order_invariant(digits_split):
    Xtr, ytr, _, _ = digits_split
    a = Softmax(random_state=3, num_iters=50).fit(Xtr, ytr)
    b = Softmax(random_state=3, num_iters=50).fit(Xtr, ytr)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    perm = np.random.default_rng(0).permutation(len(ytr))
    c = Softmax(random_state=3, num_iters=50).fit(Xtr[perm], ytr[perm])
    np.testing.assert_array_equal(a.coef_, c.coef_)
    Xc, yc = Xtr.copy(), ytr.copy()
    LinearSVM(random_state=0, num_iters=20).fit(Xtr, ytr)
    np.testing.assert_array_equal(Xc, Xtr)
    np.testing.assert_array_equal(yc, ytr)


def test_float32_stays_float32(digits_split):
    Xtr, ytr, Xte, _ = digits_split
    m = Softmax(random_state=0, num_iters=50).fit(Xtr.astype(np.float32), ytr)
    assert m.coef_.dtype == np.float32
    assert m.predict_proba(Xte.astype(np.float32)).dtype == np.float32


def test_momentum_decay_no_intercept(digits_split):
    Xtr, ytr, Xte, yte = digits_split
    m = Softmax(random_state=0, momentum=0.0, lr_decay=0.99, fit_intercept=False,
                learning_rate=0.5).fit(Xtr, ytr)
    assert np.all(m.intercept_ == 0) and m.score(Xte, yte) > 0.93


def test_cs231n_train_predict(digits_split):
    Xtr, ytr, Xte, yte = digits_split
    # the bias trick: a column of ones, no separate bias
    Xb = np.hstack([Xtr, np.ones((len(Xtr), 1))])
    Xteb = np.hstack([Xte, np.ones((len(Xte), 1))])
    for cls in (LinearSVM, Softmax):
        m = cls(random_state=0)
        assert m.W is None
        hist = m.train(Xb, ytr, learning_rate=1e-2, reg=1e-4, num_iters=300, batch_size=200)
        assert isinstance(hist, list) and len(hist) == 300
        assert m.W.shape == (65, 10)
        assert np.mean(m.predict(Xteb) == yte) > 0.9
        np.testing.assert_array_equal(m.predict(Xteb), np.argmax(Xteb @ m.W, axis=1))
        # train again continues from W
        W0 = m.W.copy()
        m.train(Xb, ytr, learning_rate=1e-2, reg=1e-4, num_iters=1)
        assert m.W.shape == W0.shape and not np.array_equal(m.W, W0)
        loss, dW = m.loss(Xb[:50], ytr[:50], 1e-4)
        assert dW.shape == (65, 10)


def test_verbose_progress(digits_split, capsys):
    Xtr, ytr, _, _ = digits_split
    Softmax(random_state=0, num_iters=30, verbose=True).fit(Xtr, ytr)
    err = capsys.readouterr().err
    assert "Softmax" in err or "iteration" in err


def test_sample_weight_repeats(digits_split):
    Xtr, ytr, Xte, _ = digits_split
    w = np.random.default_rng(1).integers(0, 3, len(ytr))
    a = Softmax(random_state=0, num_iters=100).fit(Xtr, ytr, sample_weight=w)
    b = Softmax(random_state=0, num_iters=100).fit(np.repeat(Xtr, w, 0), np.repeat(ytr, w))
    np.testing.assert_allclose(a.decision_function(Xte), b.decision_function(Xte))


def test_import_fastloss_does_not_import_sklearn():
    code = "import sys, fastloss; assert 'sklearn' not in sys.modules; fastloss.Softmax"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert "Softmax" in dir(fastloss)


def test_sample_weights_summing_beyond_float_range_are_named():
    X = np.random.default_rng(0).normal(size=(200, 5))
    y = np.arange(200) % 3
    for cls in (Softmax, LinearSVM):
        with pytest.raises(ValueError, match="sample_weight sums to inf"):
            cls(num_iters=5).fit(X, y, sample_weight=np.full(200, 1e307))
