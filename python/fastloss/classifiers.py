"""Linear classifiers trained on the fused ``linear_loss`` kernel, by minibatch SGD
(``solver="sgd"``, the default; also ``partial_fit``) or full-batch L-BFGS
(``solver="lbfgs"``, ``_solvers.lbfgs``): ``LinearSVM`` (multiclass hinge, Weston-Watkins as
CS231n, optionally squared) and ``Softmax`` (cross-entropy).

Both are scikit-learn estimators (``fit``/``predict``/``decision_function``/``score``,
``predict_proba`` for Softmax, ``coef_`` (C, D), ``intercept_`` (C,), ``classes_``) and
keep CS231n's ``LinearClassifier`` API: ``train(X, y, learning_rate, reg, num_iters,
batch_size, verbose)`` returning the loss history, ``predict(X)``, and the weights ``W``
of shape (D, C) (no separate bias: the bias-trick column is part of X).

This module imports scikit-learn; ``import fastloss`` does not (the classes are loaded on
first use of ``fastloss.LinearSVM`` / ``fastloss.Softmax``).

Training, in one place (``_sgd``):

- the objective is ``linear_loss``: mean data loss over a minibatch + reg * sum(W**2)
  (CS231n's convention; scikit-learn's ``C`` is ``1 / (2 * reg * n_samples)``), the
  intercept is not regularized;
- each iteration draws ``batch_size`` rows with replacement and passes their row numbers to
  ``linear_loss(..., indices=batch)``: the batch is never copied out of X;
- ``sample_weight`` is used as a sampling probability (row i is drawn with probability
  w_i / sum w): the minibatch gradient is an unbiased estimate of the gradient of the
  weighted mean loss, a zero weight removes a row, and an integer weight k gives exactly
  the model of the data with that row repeated k times;
- rows are drawn in an order fixed by their content (not their position), so a shuffled
  copy of the training set gives the same model;
- W and b are updated in place by ``fastloss.SGD``'s fused kernel (one pass each,
  PyTorch's momentum); the arrays are checked once per fit, not at every step (the
  public ``linear_loss`` and ``SGD`` check every argument of every call, which costs
  more than the kernels on a 200-row minibatch); the learning rate is multiplied by
  ``lr_decay`` after every epoch (sum of weights / batch_size iterations, as CS231n's
  Solver).

A fit that fails (bad input, a diverging SGD run, Ctrl-C) leaves the estimator as it was
before the call (``_unchanged_on_failure``): the new model is assigned only at the end.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from typing import Any

import numpy as np
from ._extras import translate

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning, NotFittedError
    from sklearn.utils._available_if import available_if
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted
except ModuleNotFoundError as e:  # one line naming the extra, no chained traceback
    raise translate(e, "sklearn", "fastloss.Softmax and fastloss.LinearSVM") from None

from . import _core
from . import _validate as v
from ._solvers import LinearObjective, lbfgs
from .linear import _LOSSES, _PENALTIES, _VARIANTS, linear_loss
from .losses import softmax

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

__all__ = ["LinearSVM", "Softmax"]

_DTYPES = [np.float64, np.float32]
_LOSS_CODES = {"softmax": _LOSSES["softmax"], "hinge": _VARIANTS["weston_watkins"]}
_MEAN = v.REDUCTIONS["mean"]
_SUM = v.REDUCTIONS["sum"]
_SOLVERS = {"sgd": 0, "lbfgs": 1}
_L2 = _PENALTIES["l2"]
_CHUNK = 64  # iterations whose minibatches are drawn in one call (and progress steps)


def _validate(est, X, y="no_validation", reset=True):
    """scikit-learn's validate_data (X, or X and y when y is given, even None)."""
    kw = dict(dtype=_DTYPES, reset=reset)
    if _sk_validate_data is not None:
        return _sk_validate_data(est, X, y, **kw)
    return est._validate_data(X, y, **kw)  # pragma: no cover - scikit-learn < 1.6


class _Progress:
    """A tqdm bar when tqdm is installed, else a printed line every ``every`` iterations."""

    def __init__(self, total, desc, verbose):
        self.total, self.every, self.bar, self.done = total, max(1, total // 10), None, 0
        if verbose:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, unit="it", leave=False)
        self.verbose = verbose

    def update(self, n, it, loss):
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        elif it // self.every != (it - n) // self.every or it == self.total:
            print(f"iteration {it} / {self.total}: loss {loss:f}", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _row_order(X, y):
    """A permutation of the rows that depends only on their content (labels, then a fixed
    random projection of the features, computed row by row so that equal rows give equal
    keys), equal rows next to each other."""
    r = np.random.default_rng(12345).standard_normal(X.shape[1]).astype(X.dtype)
    key = np.empty(X.shape[0], np.float64)
    step = max(1, (1 << 22) // max(1, X.shape[1]))
    for i in range(0, X.shape[0], step):
        key[i : i + step] = (X[i : i + step] * r).sum(axis=1)
    return np.lexsort((key, y))


@contextlib.contextmanager
def _unchanged_on_failure(est):
    """Restores the estimator's attributes when the block raises (any exception, Ctrl-C
    included): a refit that does not finish leaves the previous model whole."""
    saved = dict(est.__dict__)
    try:
        yield
    except BaseException:
        est.__dict__.clear()
        est.__dict__.update(saved)
        raise


def _warn_if_rising(history, learning_rate):
    """ConvergenceWarning when an SGD run's loss ends above where it started (the mean of
    its last tenth, at most 50 minibatches, above the first minibatch's loss) or rose on
    the way to more than twice its first value: the step is too large for the features."""
    n = len(history)
    if n < 10:
        return
    h = np.asarray(history)
    k = max(1, min(50, n // 10))
    start, end, top = float(h[0]), float(h[-k:].mean()), int(np.argmax(h))
    if end > start:
        what = f"rose from {start:.4g} (first minibatch) to {end:.4g} (mean of the last {k})"
    elif h[top] > 2 * start:
        what = (f"rose from {start:.4g} (first minibatch) to {h[top]:.4g} at iteration "
                f"{top}")
    else:
        return
    warnings.warn(
        f"the SGD loss {what}: the step learning_rate={learning_rate:g} is too large for "
        "these features; use a smaller learning rate or standardize the features (e.g. with "
        "sklearn.preprocessing.StandardScaler)", ConvergenceWarning, stacklevel=3)


def _is_dask(x):
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "dask")


def _argmax_labels(s, classes):
    return classes[np.argmax(s, axis=1)]


class _LinearClassifier(ClassifierMixin, BaseEstimator):
    """Shared machinery; subclasses set ``_loss`` ("softmax" or "hinge")."""

    _loss = "softmax"

    def __init__(
        self,
        learning_rate: float = 0.1,
        reg: float = 1e-3,
        num_iters: int = 300,
        batch_size: int = 200,
        momentum: float = 0.9,
        lr_decay: float = 1.0,
        fit_intercept: bool = True,
        solver: str = "sgd",
        max_iter: int = 100,
        tol: float = 1e-4,
        class_weight: Any = None,
        warm_start: bool = False,
        random_state: Any = None,
        verbose: bool = False,
        n_threads: int | None = None,
    ) -> None:
        self.learning_rate = learning_rate
        self.reg = reg
        self.num_iters = num_iters
        self.batch_size = batch_size
        self.momentum = momentum
        self.lr_decay = lr_decay
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    # ---- the optimisers -----------------------------------------------------------------

    def _squared(self):
        return v.flag(getattr(self, "squared", False), "squared")

    def _check_params(self):
        """Every hyperparameter checked (before the estimator changes); the solver."""
        solver = self.solver
        v.choice(solver, "solver", _SOLVERS)
        squared = self._squared()
        v.real(self.reg, "reg", 0.0)
        v.threads(self.n_threads)
        if solver == "lbfgs":
            v.integer(self.max_iter, "max_iter", 0)
            v.real(self.tol, "tol", 0.0)
            if self._loss == "hinge" and not squared:
                raise ValueError(
                    'solver="lbfgs" needs a smooth objective: the plain hinge is not '
                    "differentiable where a margin is 0, and L-BFGS's line search fails "
                    'there; use LinearSVM(squared=True, solver="lbfgs") (the squared hinge) '
                    'or solver="sgd"')
        else:
            v.real(self.learning_rate, "learning_rate", 0.0)
            v.integer(self.num_iters, "num_iters", 0)
            v.integer(self.batch_size, "batch_size", 1)
            v.real(self.momentum, "momentum", 0.0)
            v.real(self.lr_decay, "lr_decay", 0.0)
        return solver

    def _sgd(self, X, y, C, sample_weight, W, b, *, learning_rate, reg, num_iters,
             batch_size, momentum, lr_decay, rng, verbose, squared=False, sequence=None,
             velocity=None):
        """Minibatch SGD on linear_loss, W (D, C) and b (C,) or None updated in place.
        Returns (the loss of every iteration as a float64 array, the momentum buffers).

        Without ``sequence``, ``num_iters`` minibatches are drawn with replacement,
        ``sample_weight`` being the rows' sampling probabilities; with ``sequence`` (row
        numbers), one pass over them in consecutive minibatches (``partial_fit``), each
        row's loss multiplied by its weight (as scikit-learn's SGDClassifier).
        ``velocity``: the momentum buffers of a previous call (continued), or None.

        X (N, D) and W, b of one float dtype, contiguous, and y int64 labels in [0, C) are
        prepared by the callers; the first minibatch goes through the public
        ``linear_loss`` (every argument checked), the others call the same kernels
        directly, as does the update (``fastloss.SGD``'s fused kernel, PyTorch's rule).
        A non-finite loss stops the run with a ValueError naming the learning rate."""
        learning_rate = v.real(learning_rate, "learning_rate", 0.0)
        reg = v.real(reg, "reg", 0.0)
        num_iters = v.integer(num_iters, "num_iters", 0)
        batch_size = v.integer(batch_size, "batch_size", 1)
        momentum = v.real(momentum, "momentum", 0.0)
        lr_decay = v.real(lr_decay, "lr_decay", 0.0)
        v.threads(self.n_threads)
        N = X.shape[0]
        nt = self.n_threads
        if nt is None or nt == -1:
            # A minibatch under ~1M multiply-adds is done before a thread team would have
            # started (and spinning threads hurt on a busy machine); the result is the same.
            nt = 1 if batch_size * X.shape[1] * C < (1 << 20) else None
        nt_core = v.threads(nt)
        red = _MEAN
        sw_rows = None
        if sequence is not None:
            M = len(sequence)
            num_iters = math.ceil(M / batch_size)
            epoch = max(1, num_iters)
            if sample_weight is not None:  # w_i / (rows in the minibatch), summed
                size = np.full(M, float(batch_size))
                size[(num_iters - 1) * batch_size:] = M - (num_iters - 1) * batch_size
                sw_rows = np.zeros(N)
                sw_rows[sequence] = sample_weight[sequence] / size
                red = _SUM
        else:
            order = _row_order(X, y)
            if sample_weight is None:
                total = float(N)
                cum = None
            else:
                with np.errstate(over="ignore"):  # (checked below)
                    cum = np.cumsum(sample_weight[order], dtype=np.float64)
                total = float(cum[-1])
                if not total > 0:
                    raise ValueError("sample_weight sums to zero: there is no row to train on")
                if not math.isfinite(total):  # (the weights' scale sets the epoch's length)
                    raise ValueError(f"sample_weight sums to {total} (beyond float64's "
                                     "range): scale the weights down")
            epoch = max(1, math.ceil(total / batch_size))
        code = _LOSS_CODES[self._loss]
        dW = np.empty_like(W)
        db = None if b is None else np.empty_like(b)
        first = velocity is None
        if num_iters == 0:  # (no step: the buffers stay as they were)
            return np.empty(0), velocity
        if momentum and first:
            velocity = [np.empty(W.size, W.dtype)] + ([np.empty_like(b)] if b is not None else [])
        # (param, grad, momentum buffer) as flat views for the fused update
        params = [(W.reshape(-1), dW.reshape(-1), velocity[0] if momentum else None)]
        if b is not None:
            params.append((b, db, velocity[1] if momentum else None))
        lr = learning_rate
        history = np.empty(num_iters, np.float64)
        bar = _Progress(num_iters, type(self).__name__, verbose)
        it = 0
        try:
            while it < num_iters:
                k = min(_CHUNK, num_iters - it)
                if sequence is not None:
                    batches = [sequence[j * batch_size:(j + 1) * batch_size]
                               for j in range(it, it + k)]
                else:
                    u = rng.random((k, batch_size)) * total
                    if cum is None:
                        pos = np.minimum(u.astype(np.int64), N - 1)
                    else:
                        pos = np.minimum(np.searchsorted(cum, u, side="right"), N - 1)
                    batches = order[pos]
                for j in range(k):
                    n = it + j
                    if n == 0:
                        out = linear_loss(W, X, y, loss=self._loss, reg=reg, b=b,
                                          indices=batches[0], sample_weight=sw_rows,
                                          reduction="sum" if red == _SUM else "mean",
                                          squared=squared, n_threads=nt)
                        loss = float(out[0])
                        np.copyto(dW, out[1])
                        if b is not None:
                            np.copyto(db, out[2])
                    else:
                        loss = _core.linear_loss(
                            W, X, y, None, b, batches[j], sw_rows, None, code, 1.0, squared,
                            0.0, red, reg, _L2, 0.5, dW, db, nt_core)[0]
                    if not math.isfinite(loss):
                        raise ValueError(
                            f"SGD diverged: the minibatch loss is {loss} at iteration {n} "
                            f"with learning_rate={learning_rate:g}; use a smaller learning "
                            "rate, or standardize the features (e.g. with "
                            "sklearn.preprocessing.StandardScaler)")
                    history[n] = loss
                    for p, g, buf in params:
                        _core.sgd_update(p, g, buf, lr, momentum, 1.0, 0.0, False, False,
                                         first and n == 0 and buf is not None, nt_core)
                    if lr_decay != 1.0 and (n + 1) % epoch == 0:
                        lr *= lr_decay
                it += k
                bar.update(k, it, history[it - 1])
        finally:
            bar.close()
        return history, (velocity if momentum else None)

    def _weights(self, classes, yi, X, sample_weight, partial=False):
        """(sample weights (N,) float64 or None, class weights (C,) float64 or None)."""
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                      ensure_non_negative=True)
        cw = self.class_weight
        if cw is None:
            return sw, None
        if partial and isinstance(cw, str):
            raise ValueError(f"class_weight={cw!r} is not supported for partial_fit (the class "
                             "frequencies of the whole data are unknown); pass a dict")
        if isinstance(cw, dict):
            missing = [k for k in cw if not np.isin(k, classes)]
            if missing:
                raise ValueError(f"class_weight has the label {missing[0]!r}, which is not "
                                 f"among the classes {classes.tolist()!r}")
        cwv = compute_class_weight(cw, classes=classes, y=classes[yi])
        cwv = np.ascontiguousarray(cwv, dtype=np.float64)
        if (cwv < 0).any() or not np.isfinite(cwv).all():
            raise ValueError(f"class_weight must hold finite non-negative weights; got {cw!r}")
        return sw, cwv

    def _init_model(self, classes, D, dtype, zeros):
        """(W (D, C), b or None): the previous model (a copy) with warm_start when its
        classes and features match, else zeros (lbfgs) / 0.001 * randn (sgd)."""
        C = len(classes)
        if (self.warm_start and hasattr(self, "coef_") and self.coef_.shape == (C, D)
                and np.array_equal(self.classes_, classes)):
            W = np.array(self.coef_.T, dtype=dtype, order="C")
            b = np.array(self.intercept_, dtype=dtype) if self.fit_intercept else None
            return W, b, None
        rng = np.random.default_rng(self._seed())
        if zeros:
            W = np.zeros((D, C), dtype)
        else:
            W = (0.001 * rng.standard_normal((D, C))).astype(dtype)
        b = np.zeros(C, dtype) if self.fit_intercept else None
        return W, b, rng

    # ---- scikit-learn API ---------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit by the chosen solver: minibatch SGD from small random weights (0.001 * randn,
        as CS231n), or full-batch L-BFGS from zero (``solver="lbfgs"``); with
        ``warm_start``, from the previous model.

        X: (N, D) array-like (float32 stays float32, anything else becomes float64), or a
        dask array (``solver="lbfgs"``, see ``fastloss.dask``); y: (N,) labels of any type
        (``classes_`` is their sorted set); sample_weight: optional (N,) non-negative
        weights (SGD: sampling probabilities; L-BFGS: the weighted mean loss).
        A fit that raises (or is interrupted) leaves the estimator as it was.
        """
        with _unchanged_on_failure(self):
            if _is_dask(X) or _is_dask(y):
                from . import dask as fdask

                return fdask._fit(self, X, y, sample_weight)
            return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        solver = self._check_params()
        squared = self._squared()
        X, y = _validate(self, X, y)
        check_classification_targets(y)
        classes, yi = np.unique(y, return_inverse=True)
        yi = np.ascontiguousarray(yi.reshape(-1), dtype=np.int64)
        sw, cw = self._weights(classes, yi, X, sample_weight)
        X = np.ascontiguousarray(X)
        N, D = X.shape
        C = len(classes)
        W, b, rng = self._init_model(classes, D, X.dtype, zeros=solver == "lbfgs")
        t0 = time.perf_counter()
        velocity = None
        if solver == "lbfgs":
            obj = LinearObjective(X, yi, loss=self._loss, reg=self.reg, squared=squared,
                                  sample_weight=sw, class_weight=cw, n_threads=self.n_threads)
            W, b, n_iter, hist, _ = self._lbfgs(obj, W, b)
        else:
            if cw is not None:  # class weights are sampling probabilities too
                sw = cw[yi] if sw is None else sw * cw[yi]
            if rng is None:
                rng = np.random.default_rng(self._seed())
            hist, velocity = self._sgd(
                X, yi, C, sw, W, b, learning_rate=self.learning_rate, reg=self.reg,
                num_iters=self.num_iters, batch_size=self.batch_size, momentum=self.momentum,
                lr_decay=self.lr_decay, rng=rng, verbose=self.verbose, squared=squared)
            n_iter = len(hist)
            _warn_if_rising(hist, self.learning_rate)
        self._set_model(classes, W, b, hist, n_iter, time.perf_counter() - t0, velocity)
        self._passes = 0
        return self

    def _lbfgs(self, objective, W, b):
        """L-BFGS over ``objective``; ConvergenceWarning when max_iter is reached."""
        W, b, n_iter, hist, res = lbfgs(objective, W, b, max_iter=self.max_iter,
                                        tol=self.tol, verbose=self.verbose)
        if res.status == 1 or (self.max_iter > 0 and n_iter >= self.max_iter):
            warnings.warn(
                f"L-BFGS did not converge in max_iter={self.max_iter} iterations (the largest "
                f"gradient entry is above tol={self.tol:g}); increase max_iter or standardize "
                "the features (e.g. with sklearn.preprocessing.StandardScaler)",
                ConvergenceWarning, stacklevel=4)
        return W, b, n_iter, hist, res

    def _set_model(self, classes, W, b, hist, n_iter, fit_time, velocity):
        """The new model, assigned in one step (after everything has succeeded)."""
        C = len(classes)
        self.__dict__.update(
            classes_=classes, coef_=W.T,
            intercept_=b if b is not None else np.zeros(C, W.dtype),
            loss_history_=list(hist), n_iter_=n_iter, fit_time_=fit_time, _velocity=velocity)

    def _sgd_solver(self):
        if self.solver != "sgd":
            raise AttributeError(f'partial_fit needs solver="sgd" (L-BFGS works on the whole '
                                 f"data set at once: call fit); got solver={self.solver!r}")
        return True

    @available_if(_sgd_solver)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One pass of minibatch SGD (``solver="sgd"``) over the rows given, in a random
        order, continuing from the current model and momentum buffer (as scikit-learn's
        ``SGDClassifier.partial_fit``). ``classes`` (all labels) is required on the first
        call. Each row's loss is multiplied by its sample weight (and class weight). The
        learning rate of the k-th pass after ``fit`` is learning_rate * lr_decay**k.
        Available with solver="sgd" only (else an AttributeError that says so)."""
        with _unchanged_on_failure(self):
            return self._partial_fit(X, y, classes, sample_weight)

    def _partial_fit(self, X, y, classes, sample_weight):
        self._check_params()
        squared = self._squared()
        fitted = hasattr(self, "coef_")
        if classes is not None:
            cl = np.unique(np.asarray(classes))
            if fitted and not np.array_equal(cl, self.classes_):
                raise ValueError(f"classes={cl.tolist()!r} is not the same as on the first "
                                 f"call to partial_fit ({self.classes_.tolist()!r})")
        elif not fitted:
            raise ValueError("classes must be passed on the first call to partial_fit (all "
                             "the labels the model will see)")
        else:
            cl = self.classes_
        X, y = _validate(self, X, y, reset=not fitted)
        check_classification_targets(y)
        yi = np.searchsorted(cl, y)
        bad = (yi >= len(cl)) | (cl[np.minimum(yi, len(cl) - 1)] != y)
        if bad.any():
            i = int(np.argmax(bad))
            bad_label = y[i].item() if isinstance(y[i], np.generic) else y[i]
            raise ValueError(f"y[{i}] = {bad_label!r} is not among the classes {cl.tolist()!r} "
                             "given on the first call to partial_fit")
        yi = np.ascontiguousarray(yi, dtype=np.int64)
        sw, cw = self._weights(cl, yi, X, sample_weight, partial=True)
        if cw is not None:
            sw = cw[yi] if sw is None else sw * cw[yi]
        X = np.ascontiguousarray(X)
        N, D = X.shape
        C = len(cl)
        if fitted:
            W = np.array(self.coef_.T, dtype=X.dtype, order="C")
            b = np.array(self.intercept_, dtype=X.dtype) if self.fit_intercept else None
            rng = copy.deepcopy(self.__dict__.get("_rng")) or np.random.default_rng(
                self._seed())
            velocity = self.__dict__.get("_velocity")
            if velocity is not None:  # copies: the old buffers stay whole on failure
                velocity = [np.array(a, dtype=X.dtype) for a in velocity]
                if len(velocity) != 1 + (b is not None) or velocity[0].size != W.size:
                    velocity = None
            passes = self.__dict__.get("_passes", 0)
            hist0, n0 = list(self.loss_history_), self.n_iter_
        else:
            W, b, rng = self._init_model(cl, D, X.dtype, zeros=False)
            velocity, passes, hist0, n0 = None, 0, [], 0
        t0 = time.perf_counter()
        lr = v.real(self.learning_rate, "learning_rate", 0.0) * self.lr_decay ** passes
        hist, velocity = self._sgd(
            X, yi, C, sw, W, b, learning_rate=lr, reg=self.reg, num_iters=0,
            batch_size=self.batch_size, momentum=self.momentum, lr_decay=1.0, rng=rng,
            verbose=self.verbose, squared=squared, sequence=rng.permutation(N),
            velocity=velocity)
        self._set_model(cl, W, b, hist0 + hist.tolist(), n0 + len(hist),
                        time.perf_counter() - t0, velocity)
        self.__dict__.update(_rng=rng, _passes=passes + 1)
        return self

    def _seed(self):
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            return rs.randint(0, 2**31 - 1)
        return rs

    def _scores(self, X):
        check_is_fitted(self, "coef_")
        if _is_dask(X):
            from . import dask as fdask

            return fdask._scores(self, X)
        X = _validate(self, X, reset=False)
        return X @ self.coef_.T + self.intercept_

    def decision_function(self, X):
        """Class scores ``X @ coef_.T + intercept_``, (N, C); for two classes the (N,) margin
        of the second class over the first, as scikit-learn's linear models."""
        s = self._scores(X)
        if s.shape[1] == 2:
            return s[:, 1] - s[:, 0]
        if s.shape[1] == 1:
            return s[:, 0]
        return s

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on (X, y) (a float, also for dask arrays)."""
        if _is_dask(X) or _is_dask(y):
            from . import dask as fdask

            check_is_fitted(self, "coef_")
            return fdask._score(self, X, y, sample_weight)
        return super().score(X, y, sample_weight=sample_weight)

    def predict(self, X):
        """The class of the highest score (ties: the first class)."""
        s = self._scores(X)
        if _is_dask(s):
            return s.map_blocks(_argmax_labels, self.classes_, drop_axis=1,
                                dtype=self.classes_.dtype)
        return self.classes_[np.argmax(s, axis=1)]

    # ---- CS231n API ---------------------------------------------------------------------

    @property
    def W(self):
        """CS231n's weights, (D, C) (``coef_.T``); None before training."""
        coef = getattr(self, "coef_", None)
        return None if coef is None else coef.T

    @W.setter
    def W(self, value):
        if value is None:
            for a in ("coef_", "intercept_", "classes_", "n_features_in_"):
                self.__dict__.pop(a, None)
            return
        Wa = np.asarray(value)
        self.coef_ = Wa.T
        self.intercept_ = np.zeros(Wa.shape[1], Wa.dtype)
        self.classes_ = np.arange(Wa.shape[1])
        self.n_features_in_ = Wa.shape[0]

    def train(self, X, y, learning_rate=1e-3, reg=1e-5, num_iters=100, batch_size=200,
              verbose=False):
        """CS231n's ``LinearClassifier.train``: minibatch SGD (no momentum, no bias: X is
        expected to carry the bias-trick column of ones), labels 0..C-1 with C = max(y)+1.
        Continues from ``W`` when it is set with the right shape, else starts from
        0.001 * randn(D, C). Returns the list of minibatch losses."""
        X = v.float_array(X, "X")
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D (N, D) array; got shape {X.shape}")
        X = np.ascontiguousarray(X)
        y = v.labels(y, X.shape[0], "y", ("X", X.shape))
        with _unchanged_on_failure(self):
            return self._train(X, y, learning_rate, reg, num_iters, batch_size, verbose)

    def _train(self, X, y, learning_rate, reg, num_iters, batch_size, verbose):
        N, D = X.shape
        if N == 0:
            raise ValueError("X has no rows")
        C = int(y.max()) + 1
        rng = np.random.default_rng(self._seed())
        W = self.W
        if W is None or W.shape != (D, C):
            W = (0.001 * rng.standard_normal((D, C))).astype(X.dtype)
        else:
            W = np.array(W, dtype=X.dtype, order="C")  # (the old W stays whole on failure)
        hist, _ = self._sgd(X, y, C, None, W, None, learning_rate=learning_rate, reg=reg,
                            num_iters=num_iters, batch_size=batch_size, momentum=0.0,
                            lr_decay=1.0, rng=rng, verbose=verbose)
        _warn_if_rising(hist, learning_rate)
        self.W = W
        self.loss_history_ = hist.tolist()
        return self.loss_history_

    def loss(self, X_batch, y_batch, reg):
        """CS231n's ``loss``: (loss, dW) at the current W."""
        if self.W is None:
            raise NotFittedError(f"{type(self).__name__} has no W yet: call train() (or "
                                 "fit()) before loss()")
        return linear_loss(self.W, X_batch, y_batch, loss=self._loss, reg=reg)


class LinearSVM(_LinearClassifier):
    """Multiclass linear SVM (Weston-Watkins hinge, margin 1, as CS231n's ``LinearSVM``;
    squared with ``squared=True``) trained by minibatch SGD or L-BFGS on the fused
    ``linear_loss`` kernel.

    Parameters
    ----------
    learning_rate : float, SGD step size (default 0.01)
    reg : float, L2 strength: loss = mean hinge + reg * sum(coef_**2) (default 0.03)
    num_iters : int, SGD iterations (minibatches) (default 1000)
    batch_size : int, rows per minibatch, drawn with replacement (default 200)
    momentum : float, PyTorch-style momentum (default 0.9)
    lr_decay : float, learning-rate factor applied after every epoch (default 1.0: none)
    fit_intercept : bool, learn a bias per class (not regularized) (default True)
    squared : bool, the squared hinge max(0, t)**2 (smooth: needed by solver="lbfgs")
    solver : "sgd" (default; minibatch SGD, also ``partial_fit``) or "lbfgs" (SciPy's
        L-BFGS-B on the full-batch objective mean loss + reg * sum(coef_**2))
    max_iter : int, L-BFGS iterations at most (default 100; ConvergenceWarning when reached)
    tol : float, L-BFGS stops when the largest gradient entry is below tol (default 1e-4)
    class_weight : None, dict {label: weight} or "balanced" (n / (C * count), as
        scikit-learn): multiplies each row's weight
    warm_start : bool, fit starts from the previous model (same classes and features)
    random_state : None, int or RandomState: the initial weights and the minibatches
    verbose : bool, progress bar (tqdm when installed, else printed lines)
    n_threads : None or int, threads of the kernels (same results for every count)

    Attributes: ``coef_`` (C, D), ``intercept_`` (C,), ``classes_``, ``n_features_in_``,
    ``loss_history_`` (one minibatch loss per SGD iteration, or the objective after each
    L-BFGS iteration), ``n_iter_`` (SGD minibatches or L-BFGS iterations), ``fit_time_``,
    ``W`` (CS231n's (D, C) view of ``coef_``).
    """

    _loss = "hinge"

    def __init__(
        self,
        learning_rate: float = 0.01,
        reg: float = 0.03,
        num_iters: int = 1000,
        batch_size: int = 200,
        momentum: float = 0.9,
        lr_decay: float = 1.0,
        fit_intercept: bool = True,
        squared: bool = False,
        solver: str = "sgd",
        max_iter: int = 100,
        tol: float = 1e-4,
        class_weight: Any = None,
        warm_start: bool = False,
        random_state: Any = None,
        verbose: bool = False,
        n_threads: int | None = None,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate, reg=reg, num_iters=num_iters, batch_size=batch_size,
            momentum=momentum, lr_decay=lr_decay, fit_intercept=fit_intercept, solver=solver,
            max_iter=max_iter, tol=tol, class_weight=class_weight, warm_start=warm_start,
            random_state=random_state, verbose=verbose, n_threads=n_threads,
        )
        self.squared = squared


class Softmax(_LinearClassifier):
    """Multinomial logistic regression (softmax cross-entropy, as CS231n's ``Softmax``)
    trained by minibatch SGD or L-BFGS on the fused ``linear_loss`` kernel.

    Parameters and attributes as ``LinearSVM`` without ``squared`` (defaults: learning_rate
    0.1, reg 1e-3, num_iters 300, chosen on standardized digits); ``predict_proba`` gives
    the softmax of the scores. ``Softmax(solver="lbfgs", reg=1 / (2 * C * n_samples))``
    reaches the optimum of scikit-learn's ``LogisticRegression(C=C)``.
    """

    _loss = "softmax"

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, (N, C), the softmax of the scores (rows sum to 1)."""
        s = self._scores(X)
        if _is_dask(s):
            return s.map_blocks(softmax, dtype=s.dtype)
        return softmax(s)

    def predict_log_proba(self, X: Any) -> Any:
        """The logarithm of ``predict_proba``, computed stably."""
        from .losses import log_softmax

        s = self._scores(X)
        if _is_dask(s):
            return s.map_blocks(log_softmax, dtype=s.dtype)
        return log_softmax(s)
