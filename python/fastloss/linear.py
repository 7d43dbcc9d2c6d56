"""Model-level losses of a linear classifier: loss(X[indices] @ W + b, y[indices]) +
reg * R(W) and its gradients, fused in one pass over X."""

from __future__ import annotations

import numpy as np

from . import _core
from . import _validate as v

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
    W,
    X,
    y,
    *,
    loss="softmax",
    reg=0.0,
    penalty="l2",
    l1_ratio=0.5,
    b=None,
    sample_weight=None,
    class_weight=None,
    indices=None,
    margin=1.0,
    squared=False,
    variant="weston_watkins",
    label_smoothing=0.0,
    reduction="mean",
    grad=True,
    return_dX=False,
    method="auto",
    memory_budget=32 << 20,
    n_threads=None,
):
    """Loss and gradient of a linear classifier with scores X[indices] @ W + b.

    loss = data_loss(X[indices] @ W + b, y[indices]) + reg * R(W), where data_loss is the
    score-level ``softmax_cross_entropy`` (loss="softmax") or ``multiclass_hinge``
    (loss="hinge", with margin, squared, variant) with the same weights and reduction
    ("mean" or "sum"), and R(W) = sum W**2 (penalty="l2", gradient 2 reg W, as CS231n),
    sum |W| ("l1"), or l1_ratio sum |W| + (1 - l1_ratio) sum W**2 ("elasticnet"). The bias
    is never regularized. ``indices`` picks a minibatch of rows (repeats allowed) without
    copying X[indices]. sample_weight and y are indexed along with X.

    Two paths give the same results (method="auto" picks by shape):
    - "fused" (C < 256): one pass over X in C++; each block of rows' scores, loss rows and
      X_b^T dS are computed while the block is in cache; no N x C array exists.
    - "chunked" (C >= 256, or return_dX): rows in chunks of at most ``memory_budget``
      bytes of scores; each chunk's scores by a BLAS matrix product (NumPy's), its loss
      and gradient rows by the C++ kernels in place in that buffer, dW (and dX) chunk by
      chunk. Extra memory: one chunk of scores plus one (D, C) buffer.

    Returns (loss, dW), or (loss, dW, db) when b is given, with dX (the gradient with
    respect to X[indices], shape (M, D)) appended when return_dX=True; loss alone when
    grad=False.
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
    budget = v.integer(memory_budget, "memory_budget", 1)
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
    if meth == 2 or (meth == 0 and (C >= 256 or return_dX)):
        return _chunked(Wa, Xa, yl, Q, ba, idx, sw, cw, code, margin, squared, eps, red, reg,
                        pen, l1_ratio, grad, return_dX, budget, nt, dt)
    if return_dX:
        raise ValueError("return_dX=True needs method='chunked' (or 'auto')")
    dW = np.empty((D, C), dt) if grad else None
    db = np.empty(C, dt) if grad and ba is not None else None
    total, _, _ = _core.linear_loss(
        Wa, Xa, yl, Q, ba, idx, sw, cw, code, margin, squared, eps, red, reg, pen, l1_ratio,
        dW, db, nt,
    )
    out = dt.type(total)
    if not grad:
        return out
    return (out, dW, db) if db is not None else (out, dW)


def _add_regularizer(W, reg, pen, l1_ratio, dW, tmp):
    """Returns reg * R(W) and adds its gradient to dW (when given), through the scratch
    tmp of W's shape: no temporary of W's size is allocated."""
    if reg == 0.0:
        return 0.0
    l1 = 1.0 if pen == 1 else (l1_ratio if pen == 2 else 0.0)
    l2 = 1.0 if pen == 0 else (1.0 - l1_ratio if pen == 2 else 0.0)
    r = 0.0
    if l1:
        np.abs(W, out=tmp)
        r += l1 * float(tmp.sum(dtype=np.float64))
        if dW is not None:
            np.sign(W, out=tmp)
            tmp *= reg * l1
            dW += tmp
    if l2:  # (float32: the squares summed in double, as the fused kernel does)
        if W.dtype == np.float64:
            r += l2 * float(np.vdot(W, W))
        else:
            r += l2 * float(np.square(W, out=tmp).sum(dtype=np.float64))
        if dW is not None:
            np.multiply(W, 2.0 * reg * l2, out=tmp)
            dW += tmp
    return reg * r


def _chunked(W, X, yl, Q, b, idx, sw, cw, code, margin, squared, eps, red, reg, pen,
             l1_ratio, grad, return_dX, budget, nt, dt):
    """The large-C path: BLAS scores chunk by chunk, the loss rows in place."""
    N, D = X.shape
    C = W.shape[1]
    M = N if idx is None else idx.shape[0]
    if yl is not None and M:
        yy = yl if idx is None else yl[idx]
        bad = (yy < 0) | (yy >= C)
        if bad.any():
            i = int(np.argmax(bad))
            pos = i if idx is None else int(idx[i])
            raise ValueError(f"y[{pos}] = {int(yy[i])} is not a valid class label: labels "
                             f"must be in [0, {C})")
    # The mean's denominator over the rows taken, as the kernels define it.
    if red == 2:
        w = np.ones(M) if sw is None else (sw if idx is None else sw[idx])
        if cw is not None and yl is not None:
            w = w * cw[yl if idx is None else yl[idx]]
        denom = float(w.sum())
        with np.errstate(divide="ignore"):  # (a total weight of 0: NaN or inf, as NumPy)
            scale = float(np.float64(1.0) / denom)
    else:
        denom, scale = 1.0, 1.0
    rows = max(1, min(M, budget // max(1, C * dt.itemsize)))
    Sbuf = np.empty((rows, C), dt)
    dW = np.zeros((D, C), dt) if grad else None
    # dW += X_c^T S in column blocks through a scratch of at most `budget` bytes
    cb = max(1, min(C, budget // max(1, D * dt.itemsize)))
    tmp = np.empty((D, cb), dt)
    db = np.zeros(C) if grad and b is not None else None  # (summed in double)
    dX = np.empty((M, D), dt) if grad and return_dX else None
    total = 0.0
    for r0 in range(0, M, rows):
        r1 = min(M, r0 + rows)
        sel = slice(r0, r1) if idx is None else idx[r0:r1]
        Xc = X[sel]
        S = Sbuf[: r1 - r0]
        np.matmul(Xc, W, out=S)
        if b is not None:
            S += b
        total += _core.score_loss(
            S,
            None if yl is None else np.ascontiguousarray(yl[sel]),
            None if Q is None else Q[sel],
            None if sw is None else np.ascontiguousarray(sw[sel]),
            cw, code, margin, squared, eps, 1, S if grad else None, None, nt, scale, None,
        )
        if grad:
            for c0 in range(0, C, cb):
                c1 = min(C, c0 + cb)
                t = tmp[:, : c1 - c0]
                np.matmul(Xc.T, S[:, c0:c1], out=t)
                dW[:, c0:c1] += t
            if db is not None:
                db += S.sum(axis=0, dtype=np.float64)
            if dX is not None:
                np.matmul(S, W.T, out=dX[r0:r1])
    r = 0.0
    for c0 in range(0, C, cb):  # the regularizer, column block by column block
        c1 = min(C, c0 + cb)
        r += _add_regularizer(W[:, c0:c1], reg, pen, l1_ratio,
                              None if dW is None else dW[:, c0:c1], tmp[:, : c1 - c0])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = dt.type(np.float64(total) / denom + r)
    if not grad:
        return out
    res = [out, dW]
    if db is not None:
        res.append(db.astype(dt))
    if dX is not None:
        res.append(dX)
    return tuple(res)


def svm_loss_vectorized(W, X, y, reg):
    """CS231n ``linear_svm.svm_loss_vectorized``: (loss, dW), margin 1, mean, reg * sum W^2."""
    return linear_loss(W, X, y, loss="hinge", reg=reg)


def svm_loss_naive(W, X, y, reg):
    """CS231n ``linear_svm.svm_loss_naive``: the same numbers as the vectorized version."""
    return linear_loss(W, X, y, loss="hinge", reg=reg)


def softmax_loss_vectorized(W, X, y, reg):
    """CS231n ``softmax.softmax_loss_vectorized``: (loss, dW), mean, reg * sum W^2."""
    return linear_loss(W, X, y, loss="softmax", reg=reg)


def softmax_loss_naive(W, X, y, reg):
    """CS231n ``softmax.softmax_loss_naive``: the same numbers as the vectorized version."""
    return linear_loss(W, X, y, loss="softmax", reg=reg)
