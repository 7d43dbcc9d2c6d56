"""Argument checks and normalisation shared by the public functions.

Every public function turns its arguments into plain NumPy arrays here, once, before it
calls one ``_core`` function: native float32/float64 data, int64 labels, float64 weights.
A fast path keeps a call on already-normal arrays within a few hundred nanoseconds.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from numpy.typing import NDArray

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
I64 = np.dtype(np.int64)

REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}


def _describe(x):
    return f"dtype {x.dtype}" if isinstance(x, np.ndarray) else f"type {type(x).__name__}"


def _show(x, limit=60):
    """The type and repr of x for an error message ("str '0.1'"), shortened."""
    r = repr(x)
    if len(r) > limit:
        r = r[: limit - 3] + "..."
    return f"{type(x).__name__} {r}"


INT_MAX = 2**31 - 1  # the kernels take sizes and counts as C ints
INT64_MAX = 2**63 - 1


def float_array(x: Any, name: str) -> NDArray[Any]:
    """``x`` as an ndarray of native float32 or float64, by the dtype rules of the API.

    float32/float64 stay as they are; other real numbers (integers, float16, longdouble)
    become float64; bool, complex, object and strings raise TypeError.
    """
    if type(x) is np.ndarray:
        dt = x.dtype
        if dt is F32 or dt is F64 or ((dt == F32 or dt == F64) and dt.isnative):
            return x
        a = x
    else:
        _not_sparse(x, name)
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{name} could not be read as a numeric array: {e}") from None
    k = a.dtype.kind
    if k == "f":
        if a.dtype.itemsize in (4, 8):
            return a.astype(a.dtype.newbyteorder("="), copy=False)
        return a.astype(F64)
    if k in "iu":
        return a.astype(F64)
    if k == "O" and not isinstance(x, np.ndarray):  # (an object ndarray: TypeError, as API.md)
        b = _object_reals(x, a)
        if b is not None:
            return b
    raise TypeError(
        f"{name} must hold real numbers (float32, float64 or integers); got {_describe(a)}"
    )


def _not_sparse(x, name):
    """TypeError for a SciPy sparse matrix or array (NumPy reads one as a 0-d object)."""
    mod = type(x).__module__ or ""
    if mod.startswith("scipy.sparse") and hasattr(x, "toarray"):
        raise TypeError(
            f"{name} is a sparse {type(x).__name__}, which is not supported: pass a dense "
            f"array ({name}.toarray())"
        )


def _object_reals(x, a):
    """float64 of nested lists whose elements are all real numbers (Python ints beyond
    int64, which the contract converts to float64 like every integer), or of a pandas
    object with nullable dtypes (Float64, Int64: missing values become NaN, as
    scikit-learn reads them); None for anything else (bool, complex, strings, ...)."""
    to_numpy = getattr(x, "to_numpy", None)
    if to_numpy is not None and (type(x).__module__ or "").startswith("pandas"):
        try:
            b = np.asarray(to_numpy(dtype=F64, na_value=np.nan))
        except (TypeError, ValueError):
            return None
        return b if b.dtype == F64 else None
    flat = a.ravel()
    if not all(isinstance(t, numbers.Real) and not isinstance(t, (bool, np.bool_)) for t in flat):
        return None
    try:
        return a.astype(F64)
    except (TypeError, ValueError, OverflowError):
        return None


def rows_view(a):
    """``a`` (2-D float) itself when its rows can be walked with unit column stride, else a
    C-contiguous copy (Fortran order, column-strided or misaligned views)."""
    if a.flags.carray or (a.flags.c_contiguous and a.flags.aligned):
        return a
    it = a.itemsize
    s0, s1 = a.strides
    if not a.flags.aligned:  # (ascontiguousarray keeps a contiguous misaligned view)
        return a.copy()
    if (s1 != it and a.shape[1] > 1) or s0 % it:
        return np.ascontiguousarray(a)
    return a


def scores_2d(x, name="scores"):
    a = float_array(x, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, C) array; got shape {a.shape}")
    return a


def labels(
    y: Any, n: int, name: str = "y", ref: Any = ("scores", None), n_classes: Any = None,
    rows: Any = None,
) -> NDArray[Any]:
    """``y`` as a contiguous int64 vector of length n (values are checked by the kernels,
    except uint64 values above int64's range, checked here among the labels of ``rows``
    (all by default), naming the first label >= n_classes when given, as the kernels do)."""
    if type(y) is np.ndarray and y.dtype is I64 and y.ndim == 1 and y.flags.carray:
        a = y
    else:
        try:
            a = np.asarray(y)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{name} could not be read as an array of labels: {e}") from None
        if a.size == 0 and not isinstance(y, np.ndarray):
            a = a.astype(I64)  # an empty list has no dtype of its own
        k = a.dtype.kind
        if k not in "iu":
            if a.ndim == 1 and (k == "O" or (k == "f" and not isinstance(y, np.ndarray))):
                _big_int_labels(y, n, name, n_classes, rows)  # (Python ints beyond int64)
            raise TypeError(f"{name} must hold integer class labels; got {_describe(a)}")
        if a.ndim != 1:
            raise ValueError(
                f"{name} must be a 1-D array of N labels; got shape {a.shape} "
                f"({ref[0]} has shape {ref[1]})"
            )
        if k == "u" and a.dtype.itemsize == 8 and a.size and a.max() > INT64_MAX:
            used = a if rows is None or a.shape[0] != n else a[rows]
            if used.size and used.max() > INT64_MAX:
                big = used > INT64_MAX if n_classes is None else used >= n_classes
                j = int(np.argmax(big))
                i = j if used is a else int(rows[j])
                rng = "" if n_classes is None else f": labels must be in [0, {n_classes})"
                raise ValueError(f"{name}[{i}] = {int(a[i])} is not a valid class label{rng}")
        a = np.ascontiguousarray(a, dtype=I64)
        if not a.flags.aligned:  # a view into a byte buffer at an odd offset
            a = a.copy()
    if a.shape[0] != n:
        rname, rshape = ref
        raise ValueError(
            f"{name} has shape {a.shape} but {rname} has shape {rshape}: "
            f"expected {name} of shape ({n},)"
        )
    return a


def _big_int_labels(y, n, name, n_classes, rows):
    """A sequence of n Python ints that NumPy could not hold as int64 (some beyond its
    range): ValueError naming the first label out of range, in the order of ``rows``."""
    vals = list(y)
    if len(vals) != n or not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in vals):
        return
    hi = INT64_MAX + 1 if n_classes is None else n_classes
    order = range(len(vals)) if rows is None or len(vals) == 0 else (int(r) for r in rows)
    for i in order:
        t = int(vals[i])
        if not 0 <= t < hi:
            rng = "" if n_classes is None else f": labels must be in [0, {n_classes})"
            raise ValueError(f"{name}[{i}] = {t} is not a valid class label{rng}")


def weights(w, n, name, what):
    """Optional non-negative weights as (float64 contiguous vector, original float dtype)."""
    if w is None:
        return None, None
    a = float_array(w, name)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) (one weight per {what}); got {a.shape}")
    neg = a < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise ValueError(f"{name}[{i}] = {a[i].item()!r} is negative: weights must be non-negative")
    out = np.ascontiguousarray(a, dtype=F64)
    return (out if out.flags.aligned else out.copy()), a.dtype


_MEAN_SAFE = (2.0**-64, 2.0**64)


def mean_weights(sw, cw, yl=None, C=0, idx=None, all_classes=False):
    """Sample weights ``sw`` and class weights ``cw`` (float64 vectors or None) with the
    same weighted mean. The mean is sum(w L) / sum(w) with w_i = sw_i cw[y_i], unchanged
    when every w_i is multiplied by the same power of two; when a positive weight lies
    outside [2**-64, 2**64] the weights are rescaled so that the denominator neither
    underflows (subnormal weights gave infinite gradients) nor overflows (weights near
    1e308 gave NaN). Only the weights that enter the mean decide: the rows taken (``idx``,
    or all) whose w_i > 0.

    With labels, the class weights are folded into the rows' weights: w_i from the exact
    product of the mantissas, scaled so that the largest w_i taken is in [1/4, 1], rows of
    weight 0 or not taken set to 0; the kernels then get (w, None) and compute the same
    mean (for hinge and hard-label cross-entropy a class weight is a row factor). Else
    (soft targets: ``cw`` None, their mean divides by sum(sw) alone; or label smoothing,
    ``all_classes``, which reads every class weight) each vector is scaled on its own by
    the power of two that brings its largest weight taken into [1, 2). ``yl`` may hold bad
    labels, which the kernels report."""
    if (sw is None and cw is None) or (_moderate(sw) and _moderate(cw)):
        return sw, cw
    if not all(w is None or np.isfinite(w).all() for w in (sw, cw)):
        return sw, cw  # (NaN or inf weights: what they touch is not finite, unscaled)
    if cw is not None and yl is not None and not all_classes:
        mc, ec = np.frexp(_label_weights(cw, yl, C)[1])
        if sw is None:
            m, e = mc, ec
        else:
            ms, es = np.frexp(sw)
            m, e = ms * mc, es + ec  # (m: one rounding, as sw_i * cw[y_i])
        live = _taken(m > 0.0, idx)
        if not live.any():
            return sw, cw  # (a total weight of 0: NaN, as NumPy)
        w = np.ldexp(m, e - int(e[live].max()))
        w[~live] = 0.0
        return w, None
    if sw is not None:
        live = sw > 0.0
        if cw is not None and yl is not None:
            # label smoothing: the scale from the rows of the denominator (class weight
            # cw[y_i] > 0), but a row of class weight 0 keeps its weight, which its
            # smoothing terms (every class's weight) still multiply
            den = live & (_label_weights(cw, yl, C)[1] > 0.0)
            sw = _scale_live(sw, _taken(den, idx), _taken(live, idx))
        else:
            sw = _scale_live(sw, _taken(live, idx))
    if cw is not None:
        cw = _scale_live(cw, np.ones(cw.shape[0], bool))
    return sw, cw


def _label_weights(cw, yl, C):
    """(labels in range, cw[y_i] per row with 1 where the label is bad: the kernels
    report it)."""
    ok = (yl >= 0) & (yl < C)
    if cw.shape[0] == 0:  # (C == 0: no label is valid)
        return ok, np.ones(yl.shape[0])
    return ok, np.where(ok, cw[np.where(ok, yl, 0)], 1.0)


def _moderate(w):
    """w is None, or its positive values lie in [2**-64, 2**64]."""
    if w is None or w.size == 0:
        return True
    hi = float(w.max())
    if not hi <= _MEAN_SAFE[1]:
        return False
    lo = float(w.min())
    if lo > 0.0:
        return lo >= _MEAN_SAFE[0]
    return not np.any((w > 0.0) & (w < _MEAN_SAFE[0]))  # (zeros: the smallest positive)


def _taken(live, idx):
    """live restricted to the rows taken by idx (all rows when idx is None)."""
    if idx is None:
        return live
    out = np.zeros(live.shape[0], bool)
    out[idx[live[idx]]] = True
    return out


def _scale_live(w, live, keep=None):
    """w times the power of two that brings its largest entry where ``live`` into [1, 2);
    the entries outside ``keep`` (default: ``live``) set to 0."""
    if w.size == 0 or not live.any():
        return w
    m = float(w[live].max())
    if not 0.0 < m < math.inf or _MEAN_SAFE[0] <= m <= _MEAN_SAFE[1]:
        return w
    with np.errstate(over="ignore"):  # (entries not taken may overflow: they become 0)
        out = np.ldexp(w, 1 - math.frexp(m)[1])  # (one 2**k would overflow for k > 1023)
    out[~(live if keep is None else keep)] = 0.0
    return out


def result_dtype(*dtypes):
    """float32 only when every floating operand is float32."""
    for dt in dtypes:
        if dt is not None and dt != F32:
            return F64
    return F32


def reduction(r):
    code = REDUCTIONS.get(r) if isinstance(r, str) else None
    if code is None:
        raise ValueError(f"reduction must be one of 'mean', 'sum', 'none'; got {r!r}")
    return code


def threads(n):
    """n_threads: None or -1 for all cores (0 to the kernels), else a positive int."""
    if n is None:
        return 0
    if type(n) is int and 0 < n <= INT_MAX:  # (the common case, without the ABC check)
        return n
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n_threads must be an int or None; got {_show(n)}")
    n = int(n)
    if n == -1:
        return 0
    if n <= 0:
        raise ValueError(f"n_threads must be a positive int, or -1/None for all cores; got {n}")
    return min(n, INT_MAX)  # more threads than blocks or cores are not started anyway


def real(x, name, lo=None, hi=None):
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {_show(x)}")
    try:
        v = float(x)
    except OverflowError:  # (an int beyond float's range)
        v = math.inf
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f" in [{lo}, {hi}]" if hi is not None else (f" >= {lo}" if lo is not None else "")
        raise ValueError(f"{name} must be a finite number{rng}; got {x!r}")
    return v


def flag(x, name):
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {x!r}")
    return bool(x)


def choice(x, name, options):
    code = options.get(x) if isinstance(x, str) else None
    if code is None:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {x!r}")
    return code


def integer(x, name, lo=None):
    """An int (not a bool) >= lo, as a Python int."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(x).__name__}")
    n = int(x)
    if lo is not None and n < lo:
        raise ValueError(f"{name} must be an int >= {lo}; got {n}")
    return n


def inplace_float_array(x: Any, name: str) -> NDArray[Any]:
    """``x`` itself, checked to be a NumPy array of float32/float64 that can be written in
    place: an array that will be updated must be the caller's own, never a converted copy.
    """
    if not (isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.dtype.itemsize in (4, 8)):
        raise TypeError(
            f"{name} must be a NumPy array of float32 or float64 (it is updated in place); "
            f"got {_describe(x)}"
        )
    if not x.flags.writeable:
        raise ValueError(f"{name} is read-only: it must be a writable array to be updated in place")
    return x


def same_shape(a, b, aname, bname):
    if a.shape != b.shape:
        raise ValueError(
            f"{bname} has shape {b.shape} but {aname} has shape {a.shape}: they must match"
        )


def scalar_result(out, name):
    """The float that a user's function returned: a number, a 0-d/size-1 array, or the
    first element of a tuple such as fastloss's (loss, grad)."""
    if isinstance(out, tuple) and out:
        out = out[0]
    a = np.asarray(out) if isinstance(out, (numbers.Real, np.ndarray, np.generic)) else None
    if a is None or a.size != 1 or a.dtype.kind not in "fiu":
        what = f"an array of shape {a.shape}" if a is not None else f"{type(out).__name__}"
        raise TypeError(f"{name} must return a scalar loss (a float); got {what}")
    return float(a.reshape(()))
