"""Score-level losses: a matrix of class scores in, the loss and its gradient out."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _core
from . import _validate as v
from ._typing import ArrayLike, FloatArray, Loss

__all__ = [
    "multiclass_hinge",
    "softmax_cross_entropy",
    "softmax",
    "log_softmax",
    "svm_loss",
    "softmax_loss",
]

_HINGE_VARIANTS = {"weston_watkins": 0, "crammer_singer": 1}
_SOFTMAX = 2
_MEAN, _NONE = 2, 0


_F32, _F64, _I64 = v.F32, v.F64, v.I64
_score_plain = _core.score_plain
_INF = float("inf")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _ignore_index(ignore_index):
    """None, or the label value (an int in int64's range) that marks rows to ignore."""
    if ignore_index is None:
        return None
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(
        ignore_index, (int, np.integer)
    ):
        raise TypeError(f"ignore_index must be an int or None; got {v._show(ignore_index)}")
    i = int(ignore_index)
    if not _I64_MIN <= i <= _I64_MAX:
        raise ValueError(f"ignore_index must fit in int64; got {i}")
    return i


def _prepare(scores, y, sample_weight, class_weight, soft_ok, red, smooth=False, ign=None):
    """Normalise the operands shared by the score-level losses (``ign``: the ignored label
    or None; ignored rows do not enter the mean's weights).

    Returns (S, labels, soft targets, sw, cw, dtype) with S, soft targets in the computing
    dtype, labels int64 (or None), weights float64 (or None).
    """
    if (
        sample_weight is None
        and class_weight is None
        and type(scores) is np.ndarray
        and type(y) is np.ndarray
        and scores.ndim == 2
        and y.ndim == 1
        and y.dtype is _I64
        and (scores.dtype is _F32 or scores.dtype is _F64)
        and scores.flags.carray
        and y.flags.carray
        and y.shape[0] == scores.shape[0]
    ):  # the common call, already normal: no copies, no conversions
        return scores, y, None, None, None, scores.dtype
    S = v.scores_2d(scores)
    N, C = S.shape
    Q = None
    yl = None
    qdt = None
    if soft_ok and not (type(y) is np.ndarray and y.ndim == 1):
        ya = y if isinstance(y, np.ndarray) else np.asarray(y)
        if ya.ndim == 2:
            Q = v.float_array(ya, "y")
            if Q.shape != S.shape:
                raise ValueError(
                    f"soft targets y have shape {Q.shape} but scores have shape {S.shape}: "
                    "they must match"
                )
            qdt = Q.dtype
        elif isinstance(y, np.ndarray) or (ya.size and ya.dtype.kind in "iu"):
            y = ya  # (an empty list, or ints beyond int64, stay a list for labels())
    if Q is None:
        yl = v.labels(y, N, "y", ("scores", S.shape), C)
    sw, swdt = v.weights(sample_weight, N, "sample_weight", "sample")
    cw, cwdt = v.weights(class_weight, C, "class_weight", "class")
    if red == _MEAN:  # the mean is the same for weights scaled by a power of two
        # (with soft targets "mean" divides by sum(sw) alone: cw as given)
        taken = None if ign is None or yl is None else np.flatnonzero(yl != ign)
        sw, cw_m = v.mean_weights(sw, cw if Q is None else None, yl, C, taken, smooth)
        cw = cw if Q is not None else cw_m
    dt = S.dtype
    if swdt is not None or cwdt is not None or qdt is not None:
        dt = v.result_dtype(S.dtype, swdt, cwdt, qdt)
        if S.dtype != dt:
            S = S.astype(dt)
        if Q is not None:
            Q = v.rows_view(Q.astype(dt, copy=False))
    return v.rows_view(S), yl, Q, sw, cw, dt


def _finish(S, yl, Q, sw, cw, dt, code, margin, squared, eps, red, grad, n_threads, ign):
    N, C = S.shape
    if red == _MEAN and N == 0:
        raise ValueError(
            "reduction='mean' of an empty batch (N == 0) is undefined; use reduction='sum'"
        )
    if yl is not None and sw is None and cw is None:  # converted operands, no weights
        r = _score_plain(S, yl, code, margin, squared, eps, red, grad, n_threads, None, None,
                         ign)
        if r is not None:
            return r
    G = _core.empty(N, C, dt) if grad else None
    L = np.empty(N, dt) if red == _NONE else None
    loss = _core.score_loss(S, yl, Q, sw, cw, code, margin, squared, eps, red, G, L, n_threads,
                            0.0, ign)
    out = L if red == _NONE else dt.type(loss)
    return (out, G) if grad else out


def multiclass_hinge(
    scores: ArrayLike,
    y: ArrayLike,
    *,
    margin: float = 1.0,
    squared: bool = False,
    variant: str = "weston_watkins",
    sample_weight: ArrayLike | None = None,
    class_weight: ArrayLike | None = None,
    reduction: str = "mean",
    grad: bool = True,
    n_threads: int | None = None,
    ignore_index: int | None = None,
) -> Any:
    r"""Multiclass SVM (hinge) loss of class scores, and its gradient.

    Weston-Watkins (CS231n): :math:`L_i = \sum_{j \ne y_i} h(s_{ij} - s_{iy_i} + \Delta)`;
    Crammer-Singer (scikit-learn's ``LinearSVC``):
    :math:`L_i = h(\max_{j \ne y_i} s_{ij} - s_{iy_i} + \Delta)`, with
    :math:`h(t) = \max(0, t)`, or :math:`\max(0, t)^2` when ``squared``.

    Parameters
    ----------
    scores : array_like, shape (N, C)
        Class scores, real; float32 stays float32, other numbers compute in float64.
    y : array_like of int, shape (N,)
        Labels in ``[0, C)``.
    margin : float, default 1.0
        The margin :math:`\Delta`.
    squared : bool, default False
        Use the squared hinge :math:`\max(0, t)^2`.
    variant : {"weston_watkins", "crammer_singer"}, default "weston_watkins"
        Sum over the wrong classes (CS231n), or only the largest wrong score (on a tie,
        the gradient goes to the lowest such class).
    sample_weight : array_like, shape (N,), optional
        Non-negative weight of each sample.
    class_weight : array_like, shape (C,), optional
        Non-negative weight of each class: sample i weighs
        ``sample_weight[i] * class_weight[y[i]]``.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"``: the sum of :math:`w_i L_i` over the sum of :math:`w_i`; ``"sum"``; or
        ``"none"``: the vector :math:`w_i L_i`.
    grad : bool, default True
        Also return the gradient of the returned loss with respect to ``scores``.
    n_threads : int, optional
        None or -1 for every core; the result is the same for every count.
    ignore_index : int, optional
        A label value whose rows contribute nothing: loss 0, a zero gradient row, and no
        weight in the mean's denominator (PyTorch's ``ignore_index``, whose default is
        -100). None (the default): every label must be in ``[0, C)``.

    Returns
    -------
    loss : numpy scalar or ndarray of shape (N,)
        The loss in the computing dtype (a vector for ``reduction="none"``).
    dscores : ndarray, shape (N, C)
        The (sub)gradient; returned when ``grad`` is true, as ``(loss, dscores)``.

    Notes
    -----
    A term counts in the subgradient only where its margin is strictly positive.
    PyTorch's ``multi_margin_loss`` (p=1) equals the Weston-Watkins loss divided by C.

    Examples
    --------
    >>> import fastloss as fl
    >>> loss, dscores = fl.multiclass_hinge([[3.2, 5.1, -1.7]], [0])
    >>> round(float(loss), 4)
    2.9
    """
    if (
        (grad is True or grad is False)
        and n_threads is None
        and sample_weight is None
        and class_weight is None
        and ignore_index is None
        and squared is False
        and type(reduction) is str
        and reduction == "mean"
        and type(variant) is str
        and variant == "weston_watkins"
        and type(margin) is float
        and -_INF < margin < _INF
    ):  # the defaults (CS231n's svm_loss): straight to the C call (the same as below)
        r = _score_plain(scores, y, 0, margin, False, 0.0, _MEAN, grad, 0, None, None, None)
        if r is not None:
            return r
    code = _HINGE_VARIANTS.get(variant) if type(variant) is str else None
    if code is None:
        code = v.choice(variant, "variant", _HINGE_VARIANTS)
    red = v.REDUCTIONS.get(reduction) if type(reduction) is str else None
    if red is None:
        red = v.reduction(reduction)
    if type(margin) is not float or not -_INF < margin < _INF:
        margin = v.real(margin, "margin")
    if squared is not False and squared is not True:
        squared = v.flag(squared, "squared")
    if grad is not True and grad is not False:
        grad = v.flag(grad, "grad")
    nt = 0 if n_threads is None else v.threads(n_threads)
    ign = _ignore_index(ignore_index)
    # C-contiguous float arrays, integer labels, weights of the scores' dtype (if any):
    # checked and computed in one C call; anything else is converted first (below)
    r = _score_plain(scores, y, code, margin, squared, 0.0, red, grad, nt, sample_weight,
                     class_weight, ign)
    if r is not None:
        return r
    S, yl, _, sw, cw, dt = _prepare(scores, y, sample_weight, class_weight, False, red, False, ign)
    return _finish(S, yl, None, sw, cw, dt, code, margin, squared, 0.0, red, grad, nt, ign)


def softmax_cross_entropy(
    scores: ArrayLike,
    y: ArrayLike,
    *,
    label_smoothing: float = 0.0,
    sample_weight: ArrayLike | None = None,
    class_weight: ArrayLike | None = None,
    reduction: str = "mean",
    grad: bool = True,
    n_threads: int | None = None,
    ignore_index: int | None = None,
) -> Any:
    r"""Softmax cross-entropy of class scores (logits), and its gradient.

    :math:`L_i = -\sum_j q_{ij} \log p_{ij}` with :math:`p_i = \mathrm{softmax}(s_i)`
    (computed stably) and :math:`q_i = (1 - \varepsilon)\,\mathrm{onehot}(y_i) +
    \varepsilon / C`; the gradient is :math:`p_i - q_i`. PyTorch's rules
    (``torch.nn.functional.cross_entropy``) for weights, smoothing and soft targets.

    Parameters
    ----------
    scores : array_like, shape (N, C)
        Class scores, real; float32 stays float32, other numbers compute in float64.
    y : array_like, shape (N,) or (N, C)
        Integer labels in ``[0, C)``, or class probabilities (soft targets, not checked
        to sum to 1).
    label_smoothing : float in [0, 1], default 0.0
        The weight :math:`\varepsilon` of the uniform distribution in the target.
    sample_weight : array_like, shape (N,), optional
        Non-negative weight of each sample.
    class_weight : array_like, shape (C,), optional
        Non-negative weight of each class's term, as PyTorch's ``weight``.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"mean"`` divides by the sum of ``sample_weight[i] * class_weight[y[i]]`` for
        labels, by the sum of the sample weights (N without them) for soft targets.
    grad : bool, default True
        Also return the gradient with respect to ``scores``.
    n_threads : int, optional
        None or -1 for every core; the result is the same for every count.
    ignore_index : int, optional
        A label value whose rows contribute nothing: loss 0, a zero gradient row, and no
        weight in the mean's denominator (PyTorch's ``ignore_index``, whose default is
        -100). None (the default): every label must be in ``[0, C)``. Integer labels
        only: with soft targets it has no effect, as in PyTorch.

    Returns
    -------
    loss : numpy scalar or ndarray of shape (N,)
        The loss in the computing dtype (a vector for ``reduction="none"``).
    dscores : ndarray, shape (N, C)
        The gradient; returned when ``grad`` is true, as ``(loss, dscores)``.

    Examples
    --------
    >>> import fastloss as fl
    >>> loss, dscores = fl.softmax_cross_entropy([[3.2, 5.1, -1.7]], [0])
    >>> round(float(loss), 4)
    2.0404
    """
    if (
        (grad is True or grad is False)
        and n_threads is None
        and sample_weight is None
        and class_weight is None
        and ignore_index is None
        and type(reduction) is str
        and reduction == "mean"
        and type(label_smoothing) is float
        and label_smoothing == 0.0
    ):  # the defaults (CS231n's softmax_loss): straight to the C call (the same as below)
        r = _score_plain(scores, y, _SOFTMAX, 1.0, False, 0.0, _MEAN, grad, 0, None, None, None)
        if r is not None:
            return r
    red = v.REDUCTIONS.get(reduction) if type(reduction) is str else None
    if red is None:
        red = v.reduction(reduction)
    eps = label_smoothing
    if type(eps) is not float or not 0.0 <= eps <= 1.0:
        eps = v.real(label_smoothing, "label_smoothing", 0.0, 1.0)
    if grad is not True and grad is not False:
        grad = v.flag(grad, "grad")
    nt = 0 if n_threads is None else v.threads(n_threads)
    ign = _ignore_index(ignore_index)
    # C-contiguous float arrays, integer labels, weights of the scores' dtype (if any):
    # checked and computed in one C call; anything else is converted first (below)
    r = _score_plain(scores, y, _SOFTMAX, 1.0, False, eps, red, grad, nt, sample_weight,
                     class_weight, ign)
    if r is not None:
        return r
    S, yl, Q, sw, cw, dt = _prepare(scores, y, sample_weight, class_weight, True, red, eps > 0,
                                    ign)
    return _finish(S, yl, Q, sw, cw, dt, _SOFTMAX, 1.0, False, eps, red, grad, nt, ign)


def _rowwise(scores, axis, log, n_threads):
    nt = v.threads(n_threads)
    a = v.float_array(scores, "scores")
    if a.ndim == 0:
        raise ValueError("scores must have at least one dimension")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int; got {v._show(axis)}")
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {a.ndim}")
    moved = np.moveaxis(a, axis, -1)
    shape = moved.shape
    S = v.rows_view(moved.reshape(math.prod(shape[:-1]), shape[-1]) if moved.ndim != 2 else moved)
    out = np.empty(S.shape, S.dtype)
    _core.softmax_rows(S, out, log, nt)
    return np.moveaxis(out.reshape(shape), -1, axis)


def softmax(scores: ArrayLike, axis: int = -1, *, n_threads: int | None = None) -> FloatArray:
    """Softmax along one axis, computed stably; the dtype is kept.

    Parameters
    ----------
    scores : array_like
        Real array of at least one dimension.
    axis : int, default -1
        The axis along which the probabilities sum to 1.
    n_threads : int, optional
        None or -1 for every core; the result is the same for every count.

    Returns
    -------
    ndarray
        ``exp(s - max) / sum(exp(s - max))`` along ``axis``, of the shape of ``scores``.
    """
    return _rowwise(scores, axis, False, n_threads)


def log_softmax(scores: ArrayLike, axis: int = -1, *, n_threads: int | None = None) -> FloatArray:
    """Log-softmax along one axis, computed stably; the dtype is kept.

    Parameters
    ----------
    scores, axis, n_threads
        As in ``softmax``.

    Returns
    -------
    ndarray
        ``s - max - log(sum(exp(s - max)))`` along ``axis``.
    """
    return _rowwise(scores, axis, True, n_threads)


def svm_loss(x: ArrayLike, y: ArrayLike) -> tuple[Loss, FloatArray]:
    """CS231n's ``layers.svm_loss``: the multiclass hinge, margin 1, mean over N.

    Parameters
    ----------
    x : array_like, shape (N, C)
        Class scores.
    y : array_like of int, shape (N,)
        Labels in ``[0, C)``.

    Returns
    -------
    loss : numpy scalar
        The mean hinge loss.
    dx : ndarray, shape (N, C)
        Its gradient with respect to ``x``.
    """
    return multiclass_hinge(x, y)


def softmax_loss(x: ArrayLike, y: ArrayLike) -> tuple[Loss, FloatArray]:
    """CS231n's ``layers.softmax_loss``: the softmax cross-entropy, mean over N.

    Parameters
    ----------
    x, y
        As in ``svm_loss``.

    Returns
    -------
    loss, dx
        The mean cross-entropy and its gradient with respect to ``x``.
    """
    return softmax_cross_entropy(x, y)
