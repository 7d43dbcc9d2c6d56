"""fastloss.gradcheck: numerical gradients that leave x as they found it, and every
fastloss loss's analytic gradient checked in float64."""

import numpy as np
import pytest

import fastloss
from fastloss import check_gradient, grad_check_sparse, numerical_gradient

N, C = 7, 5


def _scores_away_from_kinks(seed, margin=1.0, gap=1e-3):
    """Scores whose hinge margins s_j - s_y + margin are all at least `gap` from 0 and whose
    largest wrong-class scores are not tied within `gap` (h = 1e-5 never crosses a kink)."""
    rng = np.random.default_rng(seed)
    while True:
        S = 1.5 * rng.standard_normal((N, C))
        y = rng.integers(0, C, N)
        m = S - S[np.arange(N), y][:, None] + margin
        m[np.arange(N), y] = np.inf
        others = np.where(np.arange(C)[None, :] == y[:, None], -np.inf, S)
        top2 = np.sort(others, axis=1)[:, -2:]
        if np.abs(m).min() > gap and (top2[:, 1] - top2[:, 0]).min() > gap:
            return S, y


def _check(loss_fn, S, *args, **kw):
    S = S.copy()
    _, dS = loss_fn(S, *args, **kw)
    return grad_check_sparse(lambda s: loss_fn(s, *args, **kw)[0], S, dS, num_checks=S.size, seed=0)


HINGE_CASES = [
    dict(),
    dict(margin=2.0),
    dict(squared=True),
    dict(variant="crammer_singer"),
    dict(variant="crammer_singer", squared=True, margin=0.5),
    dict(reduction="sum"),
    dict(sample_weight=np.linspace(0.5, 2.0, N), class_weight=np.linspace(1.0, 0.2, C)),
]


@pytest.mark.parametrize("kw", HINGE_CASES, ids=str)
def test_hinge_gradient_checks(kw):
    S, y = _scores_away_from_kinks(1, margin=kw.get("margin", 1.0))
    assert _check(fastloss.multiclass_hinge, S, y, **kw) < 1e-7


SOFTMAX_CASES = [
    dict(),
    dict(label_smoothing=0.1),
    dict(class_weight=np.linspace(0.3, 2.0, C)),
    dict(
        label_smoothing=0.2,
        class_weight=np.linspace(0.3, 2.0, C),
        sample_weight=np.linspace(1.0, 3.0, N),
    ),
    dict(reduction="sum", sample_weight=np.linspace(1.0, 3.0, N)),
]


def _scores_without_cancellation(seed, **kw):
    """Scores whose softmax gradient p - q has no entry near 0 by coincidence: there the
    relative error is rounding / |p - q|, large however right the gradient is."""
    rng = np.random.default_rng(seed)
    while True:
        S = rng.standard_normal((N, C))
        y = rng.integers(0, C, N)
        _, dS = fastloss.softmax_cross_entropy(S, y, **kw)
        if np.abs(dS).min() > 1e-3 * np.abs(dS).max():
            return S, y


@pytest.mark.parametrize("kw", SOFTMAX_CASES, ids=str)
def test_softmax_gradient_checks(kw):
    S, y = _scores_without_cancellation(2, **kw)
    assert _check(fastloss.softmax_cross_entropy, S, y, **kw) < 1e-7


def test_soft_targets_and_cs231n_drop_ins_check():
    rng = np.random.default_rng(3)
    S = rng.standard_normal((N, C))
    Q = rng.dirichlet(np.ones(C), N)
    assert _check(fastloss.softmax_cross_entropy, S, Q, label_smoothing=0.1) < 1e-7
    assert _check(fastloss.softmax_loss, S, rng.integers(0, C, N)) < 1e-7
    S, y = _scores_away_from_kinks(4)
    assert _check(fastloss.svm_loss, S, y) < 1e-7


@pytest.mark.parametrize("wrong", ["double", "shuffled", "transposed"])
def test_a_wrong_gradient_is_flagged(wrong):
    rng = np.random.default_rng(5)
    S = rng.standard_normal((C, C))
    y = rng.integers(0, C, C)
    _, dS = fastloss.softmax_cross_entropy(S, y)
    bad = {
        "double": 2 * dS,
        "shuffled": rng.permutation(dS.ravel()).reshape(dS.shape),
        "transposed": dS.T.copy(),
    }[wrong]
    f = lambda s: fastloss.softmax_cross_entropy(s, y, grad=False)  # noqa: E731
    assert grad_check_sparse(f, S, bad, num_checks=10, seed=0) > 0.1
    assert grad_check_sparse(f, S, dS, num_checks=10, seed=0) < 1e-7


def test_wrong_hinge_gradient_is_flagged():
    S, y = _scores_away_from_kinks(6)
    _, dS = fastloss.multiclass_hinge(S, y)
    f = lambda s: fastloss.multiclass_hinge(s, y, grad=False)  # noqa: E731
    assert grad_check_sparse(f, S, -dS, num_checks=S.size, seed=0) > 0.1


def test_numerical_gradient_matches_and_leaves_x_bitwise_unchanged():
    x = np.array([[0.5, -0.0, 3.0], [5e-324, -2.25, 1e3]])
    big = np.zeros((2, 6))
    big[:, ::2] = x
    view = big[:, ::2]
    before = big.tobytes()
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    grad = numerical_gradient(lambda z: float((a * z).sum()), view)  # a strided view
    assert big.tobytes() == before
    np.testing.assert_allclose(grad, a, rtol=1e-7)
    # a quadratic: the centred difference is exact up to rounding
    q = np.random.default_rng(7).standard_normal((3, 4))
    qb = q.tobytes()
    g = numerical_gradient(lambda z: float((z**2).sum() / 2), q)
    assert q.tobytes() == qb
    np.testing.assert_allclose(g, q, rtol=1e-8, atol=1e-10)


def test_x_is_restored_when_f_raises_and_the_closure_pattern_works():
    x = np.arange(6.0).reshape(2, 3)
    before = x.tobytes()
    calls = []

    def f(z):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return float(z.sum())

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(f, x)
    assert x.tobytes() == before
    # CS231n's pattern: f ignores its argument and reads W by closure (W is x)
    W = np.random.default_rng(8).standard_normal((4, 3))
    X = np.random.default_rng(9).standard_normal((6, 4))
    y = np.array([0, 1, 2, 0, 1, 2])

    def loss_of_W(_):
        return fastloss.softmax_cross_entropy(X @ W, y)

    _, dS = loss_of_W(W)
    assert grad_check_sparse(loss_of_W, W, X.T @ dS, num_checks=12, seed=1) < 1e-7


def test_float32_uses_the_step_actually_taken():
    x = np.array([1.0, 1000.0], np.float32)
    g = numerical_gradient(lambda z: float(z.astype(np.float64).sum()), x, h=1e-3)
    np.testing.assert_allclose(g, 1.0, rtol=1e-6)
    with pytest.raises(
        ValueError, match=r"h=1e-05 is too small for x\[1\] = 100000000.0 in float32"
    ):
        numerical_gradient(lambda z: 0.0, np.array([0.0, 1e8], np.float32))


def test_check_gradient_report(capsys):
    rng = np.random.default_rng(10)
    S = rng.standard_normal((N, C)).astype(np.float64)
    y = rng.integers(0, C, N)
    before = S.copy()
    err = check_gradient("softmax", S, y, label_smoothing=0.1, seed=0)
    out = capsys.readouterr().out
    assert err < 1e-7
    assert "check_gradient(softmax_cross_entropy): x (7, 5) float64, 10 entries" in out
    assert "ok (below 1e-7)" in out
    np.testing.assert_array_equal(S, before)
    S2, y2 = _scores_away_from_kinks(11)
    assert check_gradient(fastloss.multiclass_hinge, S2.tolist(), y2, verbose=False) < 1e-7
    assert capsys.readouterr().out == ""
    assert check_gradient("svm", S2, y2, variant="crammer_singer", num_checks=100) < 1e-7
    assert "35 entries" in capsys.readouterr().out

    def wrong(s, y):
        loss, ds = fastloss.softmax_cross_entropy(s, y)
        return loss, 3 * ds

    assert check_gradient(wrong, S, y) > 0.1
    assert "WRONG" in capsys.readouterr().out


def test_errors():
    x = np.zeros((2, 2))
    f = lambda z: 0.0  # noqa: E731
    ro = np.zeros(3)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match=r"x is read-only"):
        numerical_gradient(f, ro)
    with pytest.raises(TypeError, match=r"x must be a NumPy array of float32 or float64"):
        numerical_gradient(f, np.zeros(3, np.int64))
    with pytest.raises(TypeError, match=r"x must be a NumPy array .* got type list"):
        grad_check_sparse(f, [1.0], [1.0])
    with pytest.raises(
        ValueError, match=r"analytic_grad has shape \(4,\) but x has shape \(2, 2\)"
    ):
        grad_check_sparse(f, x, np.zeros(4))
    with pytest.raises(ValueError, match=r"h must be a finite number > 0; got 0"):
        numerical_gradient(f, x, h=0)
    with pytest.raises(ValueError, match=r"h must be a finite number >= 0.0; got -1"):
        numerical_gradient(f, x, h=-1)
    with pytest.raises(ValueError, match=r"num_checks must be an int >= 1; got 0"):
        grad_check_sparse(f, x, x, num_checks=0)
    with pytest.raises(ValueError, match=r"x is empty"):
        grad_check_sparse(f, np.zeros(0), np.zeros(0))
    with pytest.raises(TypeError, match=r"f must return a scalar loss \(a float\); got an array"):
        numerical_gradient(lambda z: z, x)
    with pytest.raises(TypeError, match=r"f must be callable"):
        numerical_gradient(None, x)
    with pytest.raises(ValueError, match=r"loss must be one of 'multiclass_hinge'.*got 'nope'"):
        check_gradient("nope", x, np.zeros(2, int))


def test_check_gradient_passes_a_loss_keyword_to_the_function():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(5, 3)) * 0.1
    X = rng.normal(size=(8, 5))
    y = rng.integers(0, 3, 8)
    for loss in ("hinge", "softmax"):
        err = check_gradient(fastloss.linear_loss, W, X, y, loss=loss, verbose=False, seed=1)
        assert err < 1e-6


def test_bad_seed_is_named():
    x = np.ones(3)
    f = lambda z: float((z**2).sum())  # noqa: E731
    for seed, err in (("a", TypeError), (1.5, TypeError), (True, TypeError), (-1, ValueError)):
        with pytest.raises(err, match="seed"):
            grad_check_sparse(f, x, 2 * x, seed=seed)
    assert grad_check_sparse(f, x, 2 * x, seed=np.random.default_rng(1)) < 1e-9
