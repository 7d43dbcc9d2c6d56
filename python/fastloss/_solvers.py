"""Full-batch L-BFGS for the linear classifiers.

The solver sees the data only through an *objective*: a callable ``objective(W, b)`` ->
``(loss, dW, db)`` (db None without a bias) with attributes ``dtype`` (the dtype the
kernel computes in) — the full-batch mean data loss + reg * sum(W**2). ``LinearObjective``
is the in-memory one (the fused ``linear_loss`` over X); ``fastloss.dask`` provides one
over a dask array with the same interface, so the same ``lbfgs`` fits both.
"""

from __future__ import annotations

import math

import numpy as np

from .linear import linear_loss


class LinearObjective:
    """mean_i w_i L_i(X_i W + b) / sum_i w_i + reg * sum(W**2) over in-memory X (N, D) and
    int64 labels y in [0, C), by one fused ``linear_loss`` call per evaluation."""

    def __init__(self, X, y, *, loss, reg, squared=False, sample_weight=None,
                 class_weight=None, n_threads=None):
        self.X, self.y, self.dtype = X, y, X.dtype
        if n_threads is None or n_threads == -1:
            # A pass under ~1M multiply-adds is done before a thread team would have started
            # (spinning threads hurt on a busy machine); the result is the same.
            n_threads = 1 if X.shape[0] * X.shape[1] * (int(y.max()) + 1 if y.size else 1) \
                < (1 << 20) else None
        self.kw = dict(loss=loss, reg=reg, sample_weight=sample_weight,
                       class_weight=class_weight, n_threads=n_threads)
        if loss == "hinge":
            self.kw["squared"] = squared

    def __call__(self, W, b):
        out = linear_loss(W, self.X, self.y, b=b, **self.kw)
        return out[0], out[1], (out[2] if b is not None else None)


def lbfgs(objective, W0, b0, *, max_iter, tol, verbose=False):
    """Minimise ``objective`` over (W, b) from (W0, b0) (b0 None: no bias) with SciPy's
    L-BFGS-B, as scikit-learn's LogisticRegression calls it (gtol=tol: stop when the
    largest gradient entry is below tol; ftol = 64 machine epsilons; up to 50 line-search
    steps). The iterate is float64; W and b are handed to the objective in its dtype (a
    float32 objective computes in float32).

    Returns (W, b, n_iter, history, result): W, b in the objective's dtype, the objective
    after every iteration (float64 list) and SciPy's OptimizeResult."""
    try:
        from scipy.optimize import minimize
    except ImportError:  # pragma: no cover - scipy ships with scikit-learn
        raise ImportError('solver="lbfgs" needs SciPy: pip install "fastloss[sklearn]"') from None
    D, C = W0.shape
    n = D * C
    dt = objective.dtype
    last = [math.nan]

    def fun(x):
        W = x[:n].reshape(D, C).astype(dt)
        b = None if b0 is None else x[n:].astype(dt)
        loss, dW, db = objective(W, b)
        g = np.empty(x.size)
        g[:n] = dW.reshape(-1)
        if b0 is not None:
            g[n:] = db
        last[0] = float(loss)
        return last[0], g

    history = []

    def callback(xk):  # (the accepted point is the line search's last evaluation)
        history.append(last[0])
        if verbose:
            print(f"L-BFGS iteration {len(history)}: loss {last[0]:f}", flush=True)

    x0 = np.concatenate([np.asarray(W0, np.float64).reshape(-1),
                         np.zeros(0) if b0 is None else np.asarray(b0, np.float64)])
    res = minimize(fun, x0, method="L-BFGS-B", jac=True, callback=callback,
                   options=dict(maxiter=max_iter, gtol=tol, ftol=64 * np.finfo(float).eps,
                                maxls=50))
    if not np.isfinite(res.fun):
        raise ValueError(f"the objective is {res.fun} at the L-BFGS iterate: the data or reg "
                         "overflow the loss (scale the features, e.g. with StandardScaler)")
    W = res.x[:n].reshape(D, C).astype(dt)
    b = None if b0 is None else res.x[n:].astype(dt)
    return W, b, int(res.nit), history, res
