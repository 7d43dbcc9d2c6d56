"""Model-level losses of a linear classifier: ``loss(X[indices] @ W + b, y[indices]) +
reg * R(W)`` and its gradients, fused in one pass over X."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from . import _validate as v
from ._typing import ArrayLike, FloatArray, Loss

__all__ = [
    "linear_loss",
    "svm_loss_naive",
    "svm_loss_vectorized",
    "softmax_loss_naive",
    "softmax_loss_vectorized",
]

_LOSSES = {"softmax": 2, "hinge": 0}
_VARIANTS = {"weston_watkins": 0, "crammer_singer": 1}
_PENALTIES = {"l2": 0, "l1": 1, "elasticnet": 2}


def _indices(indices, N):
    """Row indices as a contiguous int64 vector in [0, N) (negatives count from the end,
    as in NumPy); repeats are allowed."""
    try:
        a = np.asarray(indices)
    except (ValueError, TypeError) as e:
        raise ValueError(f"indices could not be read as an array: {e}") from None
    if a.size == 0 and not isinstance(indices, np.ndarray):
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"indices must hold integers; got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"indices must be a 1-D array of row numbers; got shape {a.shape}")
    if a.dtype.kind == "u" and a.dtype.itemsize == 8 and a.size and a.max() >= N:
        bad = a >= N
    else:
        a = a.astype(np.int64, copy=False)
        bad = (a < -N) | (a >= N)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"indices[{i}] = {int(a[i])} is out of range for X with {N} rows")
    a = a.astype(np.int64, copy=False)
    if a.size and a.min() < 0:
        a = np.where(a < 0, a + N, a)
    a = np.ascontiguousarray(a)
    return a if a.flags.aligned else a.copy()  # (a view into a byte buffer at an odd offset)


def linear_loss(
    W: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "softmax",
    reg: float = 0.0,
    penalty: str = "l2",
    l1_ratio: float = 0.5,
    b: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    class_weight: ArrayLike | None = None,
    indices: ArrayLike | None = None,
    margin: float = 1.0,
    squared: bool = False,
    variant: str = "weston_watkins",
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    grad: bool = True,
    return_dX: bool = False,
    method: str = "auto",
    memory_budget: int = 32 << 20,
    n_threads: int | None = None,
    out: Any = None,
) -> Any:
    r"""Loss and gradients of a linear classifier with scores ``X[indices] @ W + b``.

    :math:`\mathrm{loss} = \mathrm{data\_loss}(X W + b, y) + \mathrm{reg} \cdot R(W)`,
    where the data loss is ``softmax_cross_entropy`` (``loss="softmax"``) or
    ``multiclass_hinge`` (``loss="hinge"``) of the rows taken, with the same weights and
    reduction, and :math:`R(W) = \sum W^2` (``"l2"``, gradient :math:`2\,\mathrm{reg}\,W`
    as in CS231n), :math:`\sum |W|` (``"l1"``) or
    :math:`\rho \sum |W| + (1 - \rho) \sum W^2` (``"elasticnet"``, :math:`\rho` =
    ``l1_ratio``). The bias is never regularized.

    Parameters
    ----------
    W : array_like, shape (D, C)
        Weights.
    X : array_like, shape (N, D)
        Data, one row per sample.
    y : array_like, shape (N,) or (N, C)
        Integer labels in ``[0, C)`` (or soft targets for ``loss="softmax"``).
    loss : {"softmax", "hinge"}, default "softmax"
        The data loss.
    reg : float, default 0.0
        Regularization strength, >= 0.
    penalty : {"l2", "l1", "elasticnet"}, default "l2"
        The penalty :math:`R(W)`.
    l1_ratio : float, default 0.5
        The l1 share of ``"elasticnet"``.
    b : array_like, shape (C,), optional
        A bias; when given, its gradient ``db`` is returned too.
    sample_weight : array_like, shape (N,), optional
        Weights of the rows of X, indexed along with X.
    class_weight : array_like, shape (C,), optional
        Weights of the classes, as in the score-level losses.
    indices : array_like of int, shape (M,), optional
        Rows of a minibatch (repeats allowed, negatives count from the end), read in
        place without copying ``X[indices]``.
    margin, squared, variant : optional
        Options of ``multiclass_hinge`` (``loss="hinge"``).
    label_smoothing : float, default 0.0
        Option of ``softmax_cross_entropy``.
    reduction : {"mean", "sum"}, default "mean"
        ``"none"`` is rejected: a vector of losses has no single dW.
    grad : bool, default True
        Return the gradients; with False, the loss alone.
    return_dX : bool, default False
        Also return the gradient with respect to ``X[indices]``, shape (M, D).
    method : {"auto", "fused", "chunked"}, default "auto"
        Accepted for compatibility: every shape runs one pass over X in C++ (each block
        of rows' scores, loss rows, ``X_b^T dS`` and ``dS W^T`` computed while the block
        is in cache; no (N, C) array of scores; no BLAS, every product summed in a fixed
        order, so the bits do not depend on any thread count). ``return_dX=True`` needs
        ``"auto"`` or ``"chunked"``.
    memory_budget : int, default 32 MiB
        Accepted for compatibility (the kernel bounds its own memory).
    n_threads : int, optional
        None or -1 for every core; the result is the same for every count.
    out : ndarray or tuple of ndarrays, optional
        The gradients written in place, as NumPy's ``out=``: dW's array, or the tuple
        (dW, db) when ``b`` is given; each writable, C-contiguous, of the result dtype
        and the gradient's shape, sharing no memory with the inputs. The returned dW
        (db) is that array, so an SGD loop allocates nothing per step.

    Returns
    -------
    loss : numpy scalar
        The regularized loss.
    dW : ndarray, shape (D, C)
        Its gradient with respect to W (when ``grad``).
    db : ndarray, shape (C,)
        Its gradient with respect to b (when ``b`` is given).
    dX : ndarray, shape (M, D)
        Its gradient with respect to ``X[indices]`` (when ``return_dX``).
    """
    code = v.choice(loss, "loss", _LOSSES)
    hinge_code = v.choice(variant, "variant", _VARIANTS)  # (checked for every loss)
    if code == 0:
        code = hinge_code
    red = v.reduction(reduction)
    if red == 0:
        raise ValueError(
            "linear_loss supports reduction='mean' or 'sum' (the gradient with respect to W "
            "of a vector of losses is not a matrix); for per-sample losses call "
            "multiclass_hinge / softmax_cross_entropy on X @ W + b"
        )
    reg = v.real(reg, "reg", 0.0)
    pen = v.choice(penalty, "penalty", _PENALTIES)
    l1_ratio = v.real(l1_ratio, "l1_ratio", 0.0, 1.0)
    margin = v.real(margin, "margin")
    squared = v.flag(squared, "squared")
    eps = v.real(label_smoothing, "label_smoothing", 0.0, 1.0)
    grad = v.flag(grad, "grad")
    return_dX = v.flag(return_dX, "return_dX")
    meth = v.choice(method, "method", {"auto": 0, "fused": 1, "chunked": 2})
    v.integer(memory_budget, "memory_budget", 1)  # (checked: the kernel bounds its memory)
    nt = v.threads(n_threads)
    if code != 2 and eps != 0.0:
        raise ValueError("label_smoothing applies to loss='softmax' only")

    Wa = v.float_array(W, "W")
    if Wa.ndim != 2:
        raise ValueError(f"W must be a 2-D (D, C) array; got shape {Wa.shape}")
    Xa = v.float_array(X, "X")
    if Xa.ndim != 2:
        raise ValueError(f"X must be a 2-D (N, D) array; got shape {Xa.shape}")
    if Xa.shape[1] != Wa.shape[0]:
        raise ValueError(
            f"X has shape {Xa.shape} and W has shape {Wa.shape}: X.shape[1] must equal "
            "W.shape[0]"
        )
    N, D = Xa.shape
    C = Wa.shape[1]
    idx = None if indices is None else _indices(indices, N)
    dtypes = [Xa.dtype, Wa.dtype]
    Q = None
    yl = None
    ya = y if isinstance(y, np.ndarray) else np.asarray(y)
    if ya.ndim == 2:
        if code != 2:
            raise ValueError("soft (N, C) targets apply to loss='softmax' only")
        Q = v.float_array(ya, "y")
        if Q.shape != (N, C):
            raise ValueError(f"soft targets y have shape {Q.shape}; expected ({N}, {C})")
        dtypes.append(Q.dtype)
    else:
        yl = v.labels(y, N, "y", ("X", Xa.shape), C, idx)
    ba = None
    if b is not None:
        ba = v.float_array(b, "b")
        if ba.shape != (C,):
            raise ValueError(f"b must have shape ({C},) (one bias per class); got {ba.shape}")
        dtypes.append(ba.dtype)
    sw, swdt = v.weights(sample_weight, N, "sample_weight", "row of X")
    cw, cwdt = v.weights(class_weight, C, "class_weight", "class")
    if red == 2:  # the mean is the same for weights scaled by a power of two
        # (with soft targets "mean" divides by sum(sw) alone: cw as given)
        sw, cw_m = v.mean_weights(sw, cw if Q is None else None, yl, C, idx,
                                  code == 2 and eps > 0)
        cw = cw if Q is not None else cw_m
    M = N if idx is None else idx.shape[0]
    if red == 2 and M == 0:
        raise ValueError(
            "reduction='mean' of an empty batch (no rows) is undefined; use reduction='sum'"
        )
    dt = v.result_dtype(*dtypes, swdt, cwdt)
    Xa = v.rows_view(Xa.astype(dt, copy=False))
    Wa = v.rows_view(Wa.astype(dt, copy=False))
    if Q is not None:
        Q = v.rows_view(Q.astype(dt, copy=False))
    if ba is not None:
        ba = np.ascontiguousarray(ba, dtype=dt)
        if not ba.flags.aligned:  # (ascontiguousarray keeps a misaligned vector)
            ba = ba.copy()
    dW, db = _out(out, grad, (D, C), ba is not None, dt, (W, X, y, b, sample_weight,
                                                          class_weight, indices))
    if return_dX and meth == 1:
        raise ValueError("return_dX=True needs method='chunked' (or 'auto')")
    if grad and dW is None:
        dW = np.empty((D, C), dt)
    if grad and ba is not None and db is None:
        db = np.empty(C, dt)
    args = (Wa, Xa, yl, Q, ba, idx, sw, cw, code, margin, squared, eps, red, reg, pen,
            l1_ratio, dW, db)
    if grad and return_dX:
        dX = np.empty((M, D), dt)
        total, _, _ = _core.linear_loss_dx(*args, dX, nt)
    else:
        dX = None
        total, _, _ = _core.linear_loss(*args, nt)
    res = dt.type(total)
    if not grad:
        return res
    res = (res, dW) if db is None else (res, dW, db)
    return res if dX is None else (*res, dX)


def _out(out, grad, shape, has_b, dt, inputs):
    """The caller's gradient buffers (dW, db), checked; (None, None) without ``out``."""
    if out is None:
        return None, None
    if not grad:
        raise ValueError("out= holds the gradients: it needs grad=True")
    if isinstance(out, tuple):
        want = 2 if has_b else 1
        if len(out) != want:
            raise ValueError(
                f"out must be (dW, db) when b is given, else dW (or (dW,)); got a tuple of "
                f"{len(out)}")
        bufs = out
    elif has_b:
        raise ValueError("out must be the tuple (dW, db) when b is given")
    else:
        bufs = (out,)
    names = ("out[0] (dW)", "out[1] (db)") if isinstance(out, tuple) else ("out (dW)",)
    shapes = (shape, (shape[1],))
    for a, name, shp in zip(bufs, names, shapes):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array; got {type(a).__name__}")
        if a.dtype != dt or not a.dtype.isnative:
            raise TypeError(f"{name} must have the result dtype {dt}; got dtype {a.dtype}")
        if a.shape != shp:
            raise ValueError(f"{name} must have shape {shp}; got {a.shape}")
        if not (a.flags.c_contiguous and a.flags.aligned):
            raise ValueError(f"{name} must be a C-contiguous (aligned) array")
        if not a.flags.writeable:
            raise ValueError(f"{name} is read-only: the gradient is written into it")
        for x in inputs:
            if isinstance(x, np.ndarray) and np.may_share_memory(a, x):
                raise ValueError(f"{name} shares memory with an input: the gradient must go "
                                 "to a buffer of its own")
    if len(bufs) == 2 and np.may_share_memory(bufs[0], bufs[1]):
        raise ValueError("out[0] (dW) and out[1] (db) share memory")
    return bufs[0], (bufs[1] if len(bufs) == 2 else None)


def svm_loss_vectorized(
    W: ArrayLike, X: ArrayLike, y: ArrayLike, reg: float
) -> tuple[Loss, FloatArray]:
    """CS231n's ``linear_svm.svm_loss_vectorized``: hinge, margin 1, mean, ``reg * sum(W**2)``.

    Parameters
    ----------
    W : array_like, shape (D, C)
        Weights.
    X : array_like, shape (N, D)
        Data.
    y : array_like of int, shape (N,)
        Labels in ``[0, C)``.
    reg : float
        Regularization strength.

    Returns
    -------
    loss : numpy scalar
        The regularized loss.
    dW : ndarray, shape (D, C)
        Its gradient with respect to W.
    """
    return linear_loss(W, X, y, loss="hinge", reg=reg)


def svm_loss_naive(
    W: ArrayLike, X: ArrayLike, y: ArrayLike, reg: float
) -> tuple[Loss, FloatArray]:
    """CS231n's ``linear_svm.svm_loss_naive``: the numbers of ``svm_loss_vectorized``.

    Parameters
    ----------
    W, X, y, reg
        As in ``svm_loss_vectorized``.

    Returns
    -------
    loss, dW
        As in ``svm_loss_vectorized``.
    """
    return linear_loss(W, X, y, loss="hinge", reg=reg)


def softmax_loss_vectorized(
    W: ArrayLike, X: ArrayLike, y: ArrayLike, reg: float
) -> tuple[Loss, FloatArray]:
    """CS231n's ``softmax.softmax_loss_vectorized``: cross-entropy, mean, ``reg * sum(W**2)``.

    Parameters
    ----------
    W, X, y, reg
        As in ``svm_loss_vectorized``.

    Returns
    -------
    loss, dW
        The regularized mean cross-entropy and its gradient with respect to W.
    """
    return linear_loss(W, X, y, loss="softmax", reg=reg)


def softmax_loss_naive(
    W: ArrayLike, X: ArrayLike, y: ArrayLike, reg: float
) -> tuple[Loss, FloatArray]:
    """CS231n's ``softmax.softmax_loss_naive``: the numbers of ``softmax_loss_vectorized``.

    Parameters
    ----------
    W, X, y, reg
        As in ``softmax_loss_vectorized``.

    Returns
    -------
    loss, dW
        As in ``softmax_loss_vectorized``.
    """
    return linear_loss(W, X, y, loss="softmax", reg=reg)
