"""Linear classifiers trained by minibatch SGD on the fused ``linear_loss`` kernel:
``LinearSVM`` (multiclass hinge, Weston-Watkins as CS231n) and ``Softmax`` (cross-entropy).

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
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import _core
from . import _validate as v
from .linear import _LOSSES, _PENALTIES, _VARIANTS, linear_loss
from .losses import softmax
from ._typing import ArrayLike, FloatArray, NDArray

if TYPE_CHECKING:
    from typing_extensions import Self

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

__all__ = ["LinearSVM", "Softmax"]

_DTYPES = [np.float64, np.float32]
_LOSS_CODES = {"softmax": _LOSSES["softmax"], "hinge": _VARIANTS["weston_watkins"]}
_MEAN = v.REDUCTIONS["mean"]
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
        random_state: int | np.random.RandomState | None = None,
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
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    # ---- the optimiser ------------------------------------------------------------------

    def _sgd(self, X, y, C, sample_weight, W, b, *, learning_rate, reg, num_iters,
             batch_size, momentum, lr_decay, rng, verbose):
        """Minibatch SGD on linear_loss, W (D, C) and b (C,) or None updated in place.
        Returns the loss of every iteration (float64 array).

        X (N, D) and W, b of one float dtype, contiguous, and y int64 labels in [0, C) are
        prepared by the callers; the first minibatch goes through the public
        ``linear_loss`` (every argument checked), the others call the same kernels
        directly, as does the update (``fastloss.SGD``'s fused kernel, PyTorch's rule)."""
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
                raise ValueError(f"sample_weight sums to {total} (beyond float64's range): "
                                 "scale the weights down")
        epoch = max(1, math.ceil(total / batch_size))
        code = _LOSS_CODES[self._loss]
        dW = np.empty_like(W)
        db = None if b is None else np.empty_like(b)
        # (param, grad, momentum buffer) as flat views for the fused update
        params = [(W.reshape(-1), dW.reshape(-1), np.empty(W.size, W.dtype) if momentum else None)]
        if b is not None:
            params.append((b, db, np.empty_like(b) if momentum else None))
        lr = learning_rate
        history = np.empty(num_iters, np.float64)
        bar = _Progress(num_iters, type(self).__name__, verbose)
        it = 0
        try:
            while it < num_iters:
                k = min(_CHUNK, num_iters - it)
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
                                          indices=batches[0], n_threads=nt)
                        history[0] = out[0]
                        np.copyto(dW, out[1])
                        if b is not None:
                            np.copyto(db, out[2])
                    else:
                        history[n] = _core.linear_loss(
                            W, X, y, None, b, batches[j], None, None, code, 1.0, False, 0.0,
                            _MEAN, reg, _L2, 0.5, dW, db, nt_core)[0]
                    for p, g, buf in params:
                        _core.sgd_update(p, g, buf, lr, momentum, 1.0, 0.0, False, False,
                                         n == 0 and buf is not None, nt_core)
                    if lr_decay != 1.0 and (n + 1) % epoch == 0:
                        lr *= lr_decay
                it += k
                bar.update(k, it, history[it - 1])
        finally:
            bar.close()
        return history

    # ---- scikit-learn API ---------------------------------------------------------------

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Fit by minibatch SGD from small random weights (0.001 * randn, as CS231n).

        Parameters
        ----------
        X : array_like, shape (N, D)
            Training data; float32 stays float32, anything else becomes float64.
        y : array_like, shape (N,)
            Labels of any type (``classes_`` is their sorted set).
        sample_weight : array_like, shape (N,), optional
            Non-negative weights, used as sampling probabilities (an integer weight k
            gives the model of the data with the row repeated k times).

        Returns
        -------
        self
            The fitted estimator.
        """
        X, y = _validate(self, X, y)
        check_classification_targets(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        yi = np.ascontiguousarray(yi.reshape(-1), dtype=np.int64)
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                      ensure_non_negative=True)
        X = np.ascontiguousarray(X)
        N, D = X.shape
        C = len(self.classes_)
        rng = np.random.default_rng(self._seed())
        W = (0.001 * rng.standard_normal((D, C))).astype(X.dtype)
        b = np.zeros(C, X.dtype) if self.fit_intercept else None
        t0 = time.perf_counter()
        hist = self._sgd(X, yi, C, sw, W, b, learning_rate=self.learning_rate, reg=self.reg,
                         num_iters=self.num_iters, batch_size=self.batch_size,
                         momentum=self.momentum, lr_decay=self.lr_decay, rng=rng,
                         verbose=self.verbose)
        self.fit_time_ = time.perf_counter() - t0
        self.loss_history_ = hist.tolist()
        self.coef_ = W.T
        self.intercept_ = b if b is not None else np.zeros(C, X.dtype)
        self.n_iter_ = len(hist)
        return self

    def _seed(self):
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            return rs.randint(0, 2**31 - 1)
        return rs

    def _scores(self, X):
        check_is_fitted(self, "coef_")
        X = _validate(self, X, reset=False)
        return X @ self.coef_.T + self.intercept_

    def decision_function(self, X: ArrayLike) -> FloatArray:
        """Class scores ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array_like, shape (N, D)
            Samples.

        Returns
        -------
        ndarray, shape (N, C), or (N,) for two classes
            For two classes the margin of the second class over the first, as
            scikit-learn's linear models.
        """
        s = self._scores(X)
        if s.shape[1] == 2:
            return s[:, 1] - s[:, 0]
        if s.shape[1] == 1:
            return s[:, 0]
        return s

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The class of the highest score (ties: the first class).

        Parameters
        ----------
        X : array_like, shape (N, D)
            Samples.

        Returns
        -------
        ndarray, shape (N,)
            Labels from ``classes_``.
        """
        s = self._scores(X)
        return self.classes_[np.argmax(s, axis=1)]

    # ---- CS231n API ---------------------------------------------------------------------

    @property
    def W(self) -> FloatArray | None:
        """CS231n's weights, (D, C) (``coef_.T``); None before training."""
        coef = getattr(self, "coef_", None)
        return None if coef is None else coef.T

    @W.setter
    def W(self, value: ArrayLike | None) -> None:
        if value is None:
            for a in ("coef_", "intercept_", "classes_", "n_features_in_"):
                self.__dict__.pop(a, None)
            return
        Wa = np.asarray(value)
        self.coef_ = Wa.T
        self.intercept_ = np.zeros(Wa.shape[1], Wa.dtype)
        self.classes_ = np.arange(Wa.shape[1])
        self.n_features_in_ = Wa.shape[0]

    def train(
        self,
        X: ArrayLike,
        y: ArrayLike,
        learning_rate: float = 1e-3,
        reg: float = 1e-5,
        num_iters: int = 100,
        batch_size: int = 200,
        verbose: bool = False,
    ) -> list[float]:
        """CS231n's ``LinearClassifier.train``: minibatch SGD, no momentum, no bias.

        Continues from ``W`` when it is set with the right shape, else starts from
        ``0.001 * randn(D, C)``.

        Parameters
        ----------
        X : array_like, shape (N, D)
            Training data, with the bias trick's column of ones if a bias is wanted.
        y : array_like of int, shape (N,)
            Labels 0 .. C-1 (C = max(y) + 1).
        learning_rate : float, default 1e-3
            SGD step size.
        reg : float, default 1e-5
            L2 strength.
        num_iters : int, default 100
            Iterations.
        batch_size : int, default 200
            Rows per minibatch.
        verbose : bool, default False
            A progress bar.

        Returns
        -------
        list of float
            The minibatch loss of every iteration.
        """
        X = v.float_array(X, "X")
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D (N, D) array; got shape {X.shape}")
        X = np.ascontiguousarray(X)
        y = v.labels(y, X.shape[0], "y", ("X", X.shape))
        N, D = X.shape
        if N == 0:
            raise ValueError("X has no rows")
        C = int(y.max()) + 1
        rng = np.random.default_rng(self._seed())
        W = self.W
        if W is None or W.shape != (D, C):
            W = (0.001 * rng.standard_normal((D, C))).astype(X.dtype)
        else:
            W = np.ascontiguousarray(W, dtype=X.dtype)
        hist = self._sgd(X, y, C, None, W, None, learning_rate=learning_rate, reg=reg,
                         num_iters=num_iters, batch_size=batch_size, momentum=0.0,
                         lr_decay=1.0, rng=rng, verbose=verbose)
        self.W = W
        self.loss_history_ = hist.tolist()
        return self.loss_history_

    def loss(self, X_batch: ArrayLike, y_batch: ArrayLike, reg: float) -> tuple[Any, FloatArray]:
        """CS231n's ``loss``: ``(loss, dW)`` at the current ``W``.

        Parameters
        ----------
        X_batch : array_like, shape (N, D)
            Data.
        y_batch : array_like of int, shape (N,)
            Labels.
        reg : float
            L2 strength.

        Returns
        -------
        loss : numpy scalar
            The regularized loss.
        dW : ndarray, shape (D, C)
            Its gradient.
        """
        return linear_loss(self.W, X_batch, y_batch, loss=self._loss, reg=reg)  # type: ignore[arg-type]


class LinearSVM(_LinearClassifier):
    """Multiclass linear SVM trained by minibatch SGD on the fused ``linear_loss`` kernel.

    The Weston-Watkins hinge with margin 1, as CS231n's ``LinearSVM``; a scikit-learn
    estimator that also keeps CS231n's ``train`` / ``predict`` / ``W`` API.

    Parameters
    ----------
    learning_rate : float, default 0.01
        SGD step size.
    reg : float, default 0.03
        L2 strength: loss = mean hinge + ``reg * sum(coef_ ** 2)`` (scikit-learn's ``C`` is
        ``1 / (2 * reg * n_samples)``).
    num_iters : int, default 1000
        SGD iterations (minibatches).
    batch_size : int, default 200
        Rows per minibatch, drawn with replacement.
    momentum : float, default 0.9
        PyTorch-style momentum.
    lr_decay : float, default 1.0
        Learning-rate factor applied after every epoch (1.0: none).
    fit_intercept : bool, default True
        Learn a bias per class (not regularized).
    random_state : None, int or numpy.random.RandomState
        The initial weights and the minibatches.
    verbose : bool, default False
        A progress bar (tqdm when installed, else printed lines).
    n_threads : int, optional
        Threads of the kernels (the same results for every count).

    Attributes
    ----------
    coef_ : ndarray, shape (C, D)
        The weights.
    intercept_ : ndarray, shape (C,)
        The biases.
    classes_ : ndarray, shape (C,)
        The labels seen in ``fit``, sorted.
    n_features_in_ : int
        D.
    loss_history_ : list of float
        One minibatch loss per iteration.
    n_iter_ : int
        Iterations run.
    fit_time_ : float
        Seconds spent in the SGD loop.
    W : ndarray, shape (D, C)
        CS231n's view of the weights (``coef_.T``).
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
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
        n_threads: int | None = None,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate, reg=reg, num_iters=num_iters, batch_size=batch_size,
            momentum=momentum, lr_decay=lr_decay, fit_intercept=fit_intercept,
            random_state=random_state, verbose=verbose, n_threads=n_threads,
        )


class Softmax(_LinearClassifier):
    """Multinomial logistic regression trained by minibatch SGD on ``linear_loss``.

    The softmax cross-entropy, as CS231n's ``Softmax``; a scikit-learn estimator that
    also keeps CS231n's ``train`` / ``predict`` / ``W`` API.

    Parameters
    ----------
    learning_rate : float, default 0.1
        SGD step size.
    reg : float, default 1e-3
        L2 strength: loss = mean cross-entropy + ``reg * sum(coef_ ** 2)``.
    num_iters : int, default 300
        SGD iterations (minibatches).
    batch_size, momentum, lr_decay, fit_intercept, random_state, verbose, n_threads
        As in ``LinearSVM`` (the same defaults).

    Attributes
    ----------
    coef_, intercept_, classes_, n_features_in_, loss_history_, n_iter_, fit_time_, W
        As in ``LinearSVM``.

    Notes
    -----
    The defaults were chosen on standardized digits.
    """

    _loss = "softmax"

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """Class probabilities: the softmax of the scores.

        Parameters
        ----------
        X : array_like, shape (N, D)
            Samples.

        Returns
        -------
        ndarray, shape (N, C)
            Rows sum to 1; columns in the order of ``classes_``.
        """
        return softmax(self._scores(X))

    def predict_log_proba(self, X: ArrayLike) -> FloatArray:
        """The logarithm of ``predict_proba``, computed stably.

        Parameters
        ----------
        X : array_like, shape (N, D)
            Samples.

        Returns
        -------
        ndarray, shape (N, C)
            Log-probabilities.
        """
        from .losses import log_softmax

        return log_softmax(self._scores(X))
