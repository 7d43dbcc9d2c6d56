"""Scale-out on Dask (``pip install "fastloss[dask]"``): the fused linear loss over dask
arrays chunked along rows, and the classifiers' L-BFGS fit on them.

``linear_loss(W, X, y, ...)``: each row chunk's weighted loss sum, weight sum, dW and db
sums are computed by the fused kernel (``fastloss.linear_loss(..., reduction="sum")``)
where the chunk lives, as one (1, K) float64 row of partials (K = 2 + D*C + C); those
small rows are added in chunk order (on a distributed cluster by one task, each chunk's
task pinned to the worker holding the chunk, ``_pinned``; on the local schedulers by
dask's tree reduction ``sum(axis=0)``); the client divides by the weight sum and adds the
penalty once. The result is deterministic for a given chunking.

``Softmax(solver="lbfgs").fit(dask_X, dask_y)`` persists X, the label codes and the
weights once, then runs every L-BFGS iteration as one distributed ``linear_loss``
(``DaskObjective``): only W (and b) go to the workers, only the partials come back.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import _validate as v
from .linear import _PENALTIES
from .linear import linear_loss as _linear_loss

__all__ = ["linear_loss", "DaskObjective"]

_NOT_HERE = ("indices", "return_dX", "method", "memory_budget")


def _da():
    try:
        import dask.array as da
    except ImportError:
        raise ImportError('fastloss.dask needs Dask: pip install "fastloss[dask]"') from None
    return da


def _rows(X, name="X"):
    """X as a 2-D dask array of float32/float64, one chunk along the features (a
    column-chunked X is rechunked: each row chunk must hold whole rows)."""
    da = _da()
    X = X if isinstance(X, da.Array) else da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array; got shape {X.shape}")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes()")
    k = X.dtype.kind
    if k in "cbOSUV" or k not in "iuf":
        raise TypeError(f"{name} must hold real numbers; got dtype {X.dtype}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def _along(a, X, name, dtype=None):
    """A 1-D array (dask or NumPy) of X's length, chunked as X's rows."""
    da = _da()
    if not isinstance(a, da.Array):
        a = np.asarray(a)
        if dtype is not None and a.dtype.kind not in "iuf":
            raise TypeError(f"{name} must hold numbers; got dtype {a.dtype}")
    if a.ndim != 1 or a.shape[0] != X.shape[0]:
        raise ValueError(f"{name} has shape {a.shape} and X has shape {X.shape}: {name} must "
                         f"have shape ({X.shape[0]},)")
    if isinstance(a, da.Array):
        return a.rechunk((X.chunks[0],))
    return da.from_array(a, chunks=(X.chunks[0],))


def _chunk_partials(Xc, yc, swc, wv, off, *, D, C, has_b, cw, grad, opts):
    """One row chunk: [weighted loss sum, weight sum, dW sum (D*C), db sum (C)] as a
    (1, K) float64 row, by the fused kernel with reduction="sum"."""
    W = wv[: D * C].reshape(D, C)
    b = wv[D * C:] if has_b else None
    K = 2 + (D * C + (C if has_b else 0) if grad else 0)
    out = np.zeros((1, K))
    if Xc.shape[0] == 0:
        return out
    try:
        res = _linear_loss(W, Xc, yc, b=b, sample_weight=swc, class_weight=cw,
                           reduction="sum", grad=grad, **opts)
    except ValueError as e:  # name the row of the whole array, not of the chunk
        raise ValueError(f"{e} (in the row chunk that starts at row {int(off[0])})") from None
    w = np.ones(Xc.shape[0]) if swc is None else np.asarray(swc, np.float64)
    if cw is not None:
        w = w * cw[yc]
    if grad:
        out[0, 0] = res[0]
        out[0, 2:2 + D * C] = res[1].reshape(-1)
        if has_b:
            out[0, 2 + D * C:] = res[2]
    else:
        out[0, 0] = res
    out[0, 1] = w.sum()
    return out


def _client():
    """The distributed Client that dask's current scheduler is, or None."""
    try:
        import dask
        from distributed import get_client

        c = get_client()
    except (ImportError, ValueError):
        return None
    return c if dask.base.get_scheduler() == c.get else None


def _blocks(client, a):
    """The futures of a row-chunked array's blocks, in order (persisted when it is not)."""
    from distributed import futures_of

    a = client.persist(a)
    fm = {str(f.key): f for f in futures_of(a)}
    return [fm[str(k)] for k in a.__dask_keys__()] if a.ndim == 1 else \
        [fm[str(k[0])] for k in a.__dask_keys__()]


def _sum_rows(parts):
    return np.concatenate(parts).sum(axis=0)


def _pinned(client, xf, fn, others, kw):
    """fn(X block i, *others[i], **kw) for every block, each task on a worker that holds
    X's block (no work stealing: X never moves), then their (1, K) rows summed in order
    by one task. When a pinned worker is gone (it died), the evaluation is retried with
    the blocks' new homes (dask recomputes lost blocks from the graph)."""
    from distributed import TimeoutError as _Timeout
    from distributed import wait

    for _ in range(10):
        live = set(client.scheduler_info()["workers"])
        who = {str(k): v for k, v in client.who_has(xf).items()}
        homes = [[w for w in who.get(str(f.key), ()) if w in live] or sorted(live)
                 for f in xf]
        parts = [client.submit(fn, f, *o, workers=h, allow_other_workers=False, pure=False,
                               **kw) for f, o, h in zip(xf, others, homes)]
        tot = client.submit(_sum_rows, parts, pure=False)
        pinned = {w for h in homes for w in h}
        while True:
            try:
                wait([tot], timeout=1)
                return tot.result()
            except _Timeout:
                if pinned - set(client.scheduler_info()["workers"]):
                    client.cancel(parts + [tot])
                    break
    raise RuntimeError("workers kept leaving the cluster during the evaluation")


def _finite_rows(c):
    return np.array([[float(np.isfinite(c).all())]])


def _partials(X, y, sw, wv, *, D, C, has_b, cw, grad, opts):
    """The dask array of the summed partials (K,) float64 (a tree reduction; the local
    schedulers)."""
    da = _da()
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.int64)
    offs = da.from_array(starts, chunks=1)
    K = 2 + (D * C + (C if has_b else 0) if grad else 0)
    args = [X, "ij", y, "i", sw, "i" if sw is not None else None, wv, "z", offs, "i"]
    parts = da.blockwise(
        _chunk_partials, "ik", *args, new_axes={"k": K}, adjust_chunks={"i": 1},
        align_arrays=False, concatenate=True, dtype=np.float64, meta=np.empty((0, 0)),
        D=D, C=C, has_b=has_b, cw=cw, grad=grad, opts=opts)
    return parts.sum(axis=0)


def linear_loss(W: Any, X: Any, y: Any, *, loss: str = "softmax", reg: float = 0.0,
                penalty: str = "l2", l1_ratio: float = 0.5, b: Any = None,
                sample_weight: Any = None, class_weight: Any = None, reduction: str = "mean",
                grad: bool = True, n_threads: int | None = None, **options: Any) -> Any:
    """``fastloss.linear_loss`` over a dask array X (N, D) chunked along rows (a
    column-chunked X is rechunked to whole rows), with y (and sample_weight) dask or NumPy
    vectors of length N (rechunked as X's rows). Returns what the in-memory call returns
    ((loss, dW) or (loss, dW, db); loss alone with grad=False), as NumPy values of the
    same dtype, equal to it to rounding (1e-12 float64, 1e-5 float32).

    Options: those of ``fastloss.linear_loss`` except indices, return_dX, method and
    memory_budget; reduction "mean" or "sum"; hard labels (soft targets are not
    distributed). The work runs on the current dask scheduler (a distributed Client
    when one is active). Each chunk's kernel runs on one thread unless n_threads says
    otherwise (dask runs one task per worker thread; the results are the same)."""
    for k in _NOT_HERE:
        if k in options:
            raise TypeError(f"fastloss.dask.linear_loss does not take {k}= (index the dask "
                            "array instead)")
    red = v.reduction(reduction)
    if red == 0:
        raise ValueError("fastloss.dask.linear_loss supports reduction='mean' or 'sum'")
    reg = v.real(reg, "reg", 0.0)
    v.choice(penalty, "penalty", _PENALTIES)
    l1_ratio = v.real(l1_ratio, "l1_ratio", 0.0, 1.0)
    grad = v.flag(grad, "grad")
    v.threads(n_threads)
    Wa = v.float_array(W, "W")
    if Wa.ndim != 2:
        raise ValueError(f"W must be a 2-D (D, C) array; got shape {Wa.shape}")
    X = _rows(X)
    if X.shape[1] != Wa.shape[0]:
        raise ValueError(f"X has shape {X.shape} and W has shape {Wa.shape}: X.shape[1] must "
                         "equal W.shape[0]")
    D, C = Wa.shape
    if getattr(y, "ndim", 1) != 1:
        raise ValueError(f"y must be a 1-D vector of labels (soft targets are not "
                         f"distributed); got shape {y.shape}")
    y = _along(y, X, "y")
    if y.dtype.kind not in "iu":
        raise TypeError(f"y must hold integer labels; got dtype {y.dtype}")
    sw, swdt = None, None
    if sample_weight is not None:
        sw = _along(sample_weight, X, "sample_weight", dtype=True)
        swdt = sw.dtype if sw.dtype in (np.float32, np.float64) else None
    cw, cwdt = v.weights(class_weight, C, "class_weight", "class")
    ba = None
    if b is not None:
        ba = v.float_array(b, "b")
        if ba.shape != (C,):
            raise ValueError(f"b must have shape ({C},) (one bias per class); got {ba.shape}")
    dt = v.result_dtype(X.dtype, Wa.dtype, None if ba is None else ba.dtype, swdt, cwdt)
    if red == 2 and X.shape[0] == 0:
        raise ValueError("reduction='mean' of an empty batch (no rows) is undefined; use "
                         "reduction='sum'")
    da = _da()
    wv = np.concatenate([Wa.astype(dt).reshape(-1)] + ([ba.astype(dt)] if ba is not None else []))
    opts = dict(loss=loss, n_threads=1 if n_threads is None else n_threads, **options)
    kw = dict(D=D, C=C, has_b=ba is not None, cw=cw, grad=grad, opts=opts)
    client = _client()
    if client is None:
        tot = _partials(X, y, sw, da.from_array(wv, chunks=-1), **kw).compute()
    else:
        xf, yf = _blocks(client, X), _blocks(client, y)
        sf = _blocks(client, sw) if sw is not None else [None] * len(xf)
        wvf = wv  # (sent with each chunk's task: a scatter to a worker that just died can
        # wait forever, where a task of a dead worker is resubmitted by _pinned)
        starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.int64)
        others = [(yi, si, wvf, starts[i:i + 1]) for i, (yi, si) in enumerate(zip(yf, sf))]
        tot = _pinned(client, xf, _chunk_partials, others, kw)
    denom = tot[1] if red == 2 else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 / denom
    # the penalty, once, on the client: the fused kernel's own, over no rows, in float64
    # (added to the float64 sums before the one rounding to the result dtype)
    r, dR = 0.0, None
    if reg != 0.0:
        pr = _linear_loss(Wa.astype(np.float64), np.empty((0, D)), np.empty(0, np.int64),
                          loss=loss, reg=reg, penalty=penalty, l1_ratio=l1_ratio,
                          reduction="sum", grad=grad)
        r, dR = (float(pr[0]), pr[1]) if grad else (float(pr), None)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = dt.type(tot[0] * scale + r)
    if not grad:
        return out
    dW = tot[2:2 + D * C].reshape(D, C) * scale
    if dR is not None:
        dW += dR
    dW = dW.astype(dt)
    if ba is None:
        return out, dW
    return out, dW, (tot[2 + D * C:] * scale).astype(dt)


class DaskObjective:
    """The L-BFGS objective (``fastloss._solvers``) over persisted dask arrays: one
    distributed ``linear_loss`` per evaluation."""

    def __init__(self, X: Any, y: Any, *, loss: str, reg: float, squared: bool = False,
                 sample_weight: Any = None, class_weight: Any = None,
                 n_threads: int | None = None) -> None:
        self.X, self.y, self.dtype = X, y, X.dtype
        self.kw = dict(loss=loss, reg=reg, sample_weight=sample_weight,
                       class_weight=class_weight, n_threads=n_threads)
        if loss == "hinge":
            self.kw["squared"] = squared
        self.evaluations = 0

    def __call__(self, W, b):
        self.evaluations += 1
        out = linear_loss(W, self.X, self.y, b=b, **self.kw)
        return out[0], out[1], (out[2] if b is not None else None)


def _fit(est, X, y, sample_weight):
    """``est.fit`` on dask arrays (solver="lbfgs")."""
    import dask

    da = _da()
    from sklearn.utils.class_weight import compute_class_weight

    solver = est._check_params()
    if solver != "lbfgs":
        raise ValueError('fit on dask arrays needs solver="lbfgs" (minibatch SGD draws rows '
                         "from the whole data set at every step); got solver="
                         f"{solver!r}")
    X = _rows(X)
    N, D = X.shape
    if N == 0:
        raise ValueError(f"X has 0 samples (shape {X.shape}): at least one is required")
    if D == 0:
        raise ValueError(f"X has 0 features (shape {X.shape}): at least one is required")
    if getattr(y, "ndim", 1) != 1:
        raise ValueError(f"y must be a 1-D vector of labels; got shape {y.shape}")
    y = _along(y, X, "y")
    # one pass: the labels' set (per chunk, then merged; y itself stays where it is) and
    # the finiteness of X
    client = _client()
    if client is None:
        classes, finite = dask.compute(da.unique(y), da.isfinite(X).all())
    else:  # (the finiteness pass where X's chunks are)
        X = client.persist(X)
        finite = _pinned(client, _blocks(client, X), _finite_rows,
                         [()] * X.numblocks[0], {})[0] == X.numblocks[0]
        classes = da.unique(y).compute()
    if not finite:
        raise ValueError("Input X contains NaN or infinity.")
    classes = np.asarray(classes)
    C = len(classes)
    yi = y.map_blocks(lambda c: np.searchsorted(classes, c).astype(np.int64), dtype=np.int64)
    sw = None
    if sample_weight is not None:
        sw = _along(sample_weight, X, "sample_weight", dtype=True).astype(np.float64)
        if bool((sw < 0).any().compute()):
            raise ValueError("sample_weight has negative values: weights must be "
                             "non-negative")
    cw = None
    if est.class_weight is not None:
        if isinstance(est.class_weight, dict):
            missing = [k for k in est.class_weight if not np.isin(k, classes)]
            if missing:
                raise ValueError(f"class_weight has the label {missing[0]!r}, which is not "
                                 f"among the classes {classes.tolist()!r}")
            cw = compute_class_weight(est.class_weight, classes=classes, y=classes)
        else:  # "balanced": n / (C * count), the counts from the chunks
            counts = da.bincount(yi, minlength=C).compute()
            cw = compute_class_weight(est.class_weight, classes=classes,
                                      y=np.repeat(classes, counts))
        cw = np.ascontiguousarray(cw, dtype=np.float64)
    X, yi, sw = dask.persist(X, yi, sw)
    W, b, _ = est._init_model(classes, D, X.dtype, zeros=True)
    t0 = time.perf_counter()
    obj = DaskObjective(X, yi, loss=est._loss, reg=est.reg, squared=est._squared(),
                        sample_weight=sw, class_weight=cw, n_threads=est.n_threads)
    W, b, n_iter, hist, _ = est._lbfgs(obj, W, b)
    est._set_model(classes, W, b, hist, n_iter, time.perf_counter() - t0, None)
    est.__dict__.update(n_features_in_=D, _passes=0)
    est.__dict__.pop("feature_names_in_", None)
    return est


def _scores(est, X):
    """X @ coef_.T + intercept_ as a dask array, block by block."""
    X = _rows(X)
    if X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input")
    coef, icpt = est.coef_, est.intercept_
    dt = np.result_type(X.dtype, coef.dtype)
    return X.map_blocks(lambda x: x @ coef.T + icpt, chunks=(X.chunks[0], (coef.shape[0],)),
                        dtype=dt)


def _score(est, X, y, sample_weight=None):
    """Accuracy as a float, computed on the workers."""
    import dask

    pred = est.predict(X)
    y = _along(y, _rows(X), "y")
    hit = (pred == y).astype(np.float64)
    if sample_weight is None:
        return float(hit.mean().compute())
    sw = _along(sample_weight, _rows(X), "sample_weight", dtype=True).astype(np.float64)
    num, den = dask.compute((hit * sw).sum(), sw.sum())
    return float(num / den)
