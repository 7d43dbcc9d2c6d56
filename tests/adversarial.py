"""Building blocks of the adversarial tests (tests/test_adversarial.py): arrays with the
same values in every layout NumPy can give them, special values, snapshots that prove an
input was not modified, and a comparison that knows NaN, inf and rounding."""

from __future__ import annotations

import copy
import math

import numpy as np

# ---------------------------------------------------------------- dtypes and layouts

FLOAT_CODES = ["f8", "f4", ">f8", ">f4", "f2", "i4", "u1", "i8", "list"]
# every integer dtype NumPy has, native and byte-swapped
INT_CODES = sorted(
    {np.dtype(c).str for c in "bBhHiIlLqQpP"} | {">i2", ">u2", ">i4", ">u4", ">i8", ">u8"}
)
LAYOUTS = [
    "c",
    "f",
    "strided",
    "negative",
    "readonly",
    "unaligned",
    "broadcast_row",
    "broadcast_col",
    "list",
]


def special_values(dtype):
    """NaN, +-inf, +-1e30, subnormals, signed zeros and the extremes of ``dtype``."""
    fi = np.finfo(dtype)
    return np.array(
        [np.nan, np.inf, -np.inf, 1e30, -1e30, fi.smallest_subnormal, -fi.smallest_subnormal,
         fi.tiny, 0.0, -0.0, fi.max, -fi.max, 1.0, -1.0],
        dtype,
    )  # fmt: skip


def present(values, code, layout):
    """``values`` (an ndarray) as dtype ``code`` in ``layout``: a view, a copy or a list that
    holds the same numbers. broadcast_* layouts repeat the first row / column (zero
    strides), so the numbers change: read them back with ``np.asarray``."""
    if (code == "list" or layout == "list") and np.size(values) == 0:
        layout = "c"  # (a list of nothing has no shape, nor a dtype)
        code = np.asarray(values).dtype.str if code == "list" else code
    if code == "list":
        layout = "list"
        a = np.asarray(values)
    else:
        with np.errstate(all="ignore"):
            a = np.asarray(values).astype(code)
    if layout == "c" or a.ndim == 0:
        return a
    if layout == "f":
        return np.asfortranarray(a)
    if layout == "strided":  # every other element along every axis
        big = np.zeros(tuple(2 * n + 1 for n in a.shape), a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if layout == "negative":  # every axis reversed
        rev = tuple(slice(None, None, -1) for _ in a.shape)
        return np.ascontiguousarray(a[rev])[rev]
    if layout == "readonly":
        r = a.copy()
        r.flags.writeable = False
        return r
    if layout == "unaligned":  # a view into a byte buffer at an odd offset
        buf = np.zeros(a.nbytes + a.itemsize + 1, np.uint8)
        u = np.ndarray(a.shape, a.dtype, buffer=buf, offset=1)
        u[...] = a
        return u
    if layout == "broadcast_row":
        return np.broadcast_to(a[:1], a.shape)
    if layout == "broadcast_col":
        return np.broadcast_to(a[..., :1], a.shape) if a.ndim >= 1 else a
    if layout == "list":
        return a.tolist()
    raise ValueError(layout)


def api_float(x):
    """The array fastloss computes on, by the dtype rules of API.md: float32 and float64
    stay (native byte order), other real numbers become float64."""
    a = np.asarray(x)
    if a.dtype.kind == "f" and a.dtype.itemsize in (4, 8):
        return a.astype(a.dtype.newbyteorder("="))
    return a.astype(np.float64)


def is_f32_operand(x):
    return isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.dtype.itemsize == 4


# ---------------------------------------------------------------- inputs left alone


def _root(a):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


class Snapshot:
    """Every argument's bytes (and, for a view, the bytes of the whole buffer under it),
    shape, strides, dtype and flags, to check that a call left them all alone."""

    def __init__(self, *args):
        self.items = [(a, self._state(a)) for a in args]

    @staticmethod
    def _state(a):
        if isinstance(a, np.ndarray):
            root = _root(a)
            return (
                a.dtype.str, a.shape, a.strides, a.flags.writeable, a.tobytes(),
                root.tobytes() if root.flags.c_contiguous or root.flags.f_contiguous else None,
            )  # fmt: skip
        return copy.deepcopy(a)

    def check(self):
        for a, before in self.items:
            after = self._state(a)
            if isinstance(a, np.ndarray):
                assert before == after, "an input array was modified"
            else:
                assert repr(before) == repr(after), "an input object was modified"


# ---------------------------------------------------------------- comparison


def row_max_abs(a):
    """The largest finite |value| of each row (0 for a row without one)."""
    a = np.asarray(a, np.float64)
    if a.size == 0:
        return np.zeros(a.shape[:1])
    f = np.where(np.isfinite(a), np.abs(a), 0.0)
    return f.max(axis=tuple(range(1, a.ndim))) if a.ndim > 1 else f


def assert_matches(got, want, *, rtol, floor=0.0, f32=False, what="", loose=None):
    """got == want up to rtol * |want| + floor (floor broadcasts against the leading axis:
    one absolute tolerance per row); NaN where want is NaN and only there, the same infinities.
    With f32, ``want`` (exact, float64) is first rounded to float32, as the answer
    of a float32 computation is (overflow to inf included). Where ``loose`` (a row mask) is
    true (a row mask, or one of got's shape), only finiteness must agree (NaN for inf:
    two formulas of one value at infinity, or a fused multiply-add that does not round
    an infinite product)."""
    g = np.asarray(got, np.float64)
    w = np.asarray(want, np.float64)
    assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
    if g.size == 0:
        return
    if f32:
        with np.errstate(over="ignore"):
            w = w.astype(np.float32).astype(np.float64)
    fl = np.asarray(floor, np.float64)
    fl = np.nan_to_num(fl, nan=np.inf, posinf=np.inf)
    if fl.ndim == 1 and g.ndim > 1:
        fl = fl.reshape((-1,) + (1,) * (g.ndim - 1))
    fl = np.broadcast_to(fl, g.shape)
    if loose is not None:
        lo = np.asarray(loose, bool)
        if lo.shape != g.shape:  # a row mask
            lo = lo.reshape((-1,) + (1,) * (g.ndim - 1)) if lo.ndim else lo
        lo = np.broadcast_to(lo, g.shape)
        bad = lo & (np.isfinite(g) != np.isfinite(w))
        assert not bad.any(), f"{what}: finite / not finite at {np.argwhere(bad)[:5].tolist()}"
        g, w = np.where(lo, 0.0, g), np.where(lo, 0.0, w)
    bad_nan = np.isnan(g) != np.isnan(w)
    assert not bad_nan.any(), (
        f"{what}: NaN at {np.argwhere(bad_nan)[:5].tolist()}: got {g[bad_nan][:5]}, "
        f"want {w[bad_nan][:5]}"
    )
    inf = np.isinf(w) | np.isinf(g)
    bad_inf = inf & (g != w) & ~np.isinf(fl)
    assert not bad_inf.any(), (
        f"{what}: inf at {np.argwhere(bad_inf)[:5].tolist()}: got {g[bad_inf][:5]}, "
        f"want {w[bad_inf][:5]}"
    )
    fin = np.isfinite(w) & np.isfinite(g)
    tiny = 4 * np.finfo(np.float32 if f32 else np.float64).smallest_subnormal  # last-bit
    with np.errstate(all="ignore"):  # rounding of subnormal results
        err = np.abs(g - w)
        tol = rtol * np.abs(w) + fl + tiny
    bad = fin & ~(err <= tol)
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} values differ, first at {np.argwhere(bad)[0].tolist()}: "
        f"got {g[bad][:4]}, want {w[bad][:4]} (tolerance {tol[bad][:4]})"
    )


def pow2_normalised(w):
    """w scaled by the power of two that brings its largest value into [1, 2): a weighted
    mean is exactly the same with these weights, and its sums neither under- nor overflow."""
    if w is None or w.size == 0:
        return w
    m = float(np.max(w))
    if not 0.0 < m < math.inf:
        return w
    return np.ldexp(w, 1 - math.frexp(m)[1])
