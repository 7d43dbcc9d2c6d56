"""Adversarial inputs for every public function (issue 8).

Hypothesis draws arrays with NaN and +-inf anywhere, +-1e30, subnormals and the dtype's
extremes; every integer label dtype (signed, unsigned, byte-swapped); labels at the edges
of and outside [0, C); N = 0 and 1, C = 0, 1, 2 and very large; C-order, Fortran-order,
strided, negative-stride, read-only, misaligned and zero-stride (np.broadcast_to) arrays
and lists; zero, subnormal, huge, NaN and infinite weights; float16, integer, float32 and
float64 operands mixed. Every call either gives the reference's answer (fastloss.reference
or the feature oracles, computed in float64) or raises a ValueError/TypeError whose message
names the argument, and it never modifies an input. A hang is turned into a failure by
the watchdog fixture.

The size of a run is the hypothesis profile's (tests/conftest.py): "ci" in CI, "fuzz" for the
bounded-time fuzz run of .ci/fuzz.sh.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import math
import re
import warnings

import numpy as np
import pytest
from adversarial import (
    FLOAT_CODES,
    INT_CODES,
    LAYOUTS,
    Snapshot,
    api_float,
    assert_matches,
    is_f32_operand,
    pow2_normalised,
    present,
    row_max_abs,
    special_values,
)
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import fastloss as fl
import fastloss.features as F
import fastloss.reference as R
from fastloss import SGD, sgd_step


RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5}
WATCHDOG_S = 900  # a call that hangs fails the run instead of blocking it


@pytest.fixture(autouse=True)
def watchdog():
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ---------------------------------------------------------------- value generators


def fill_values(rng, shape, dtype, density, scale=3.0):
    """Normal values, with a fraction ``density`` replaced by special values."""
    v = rng.normal(scale=scale, size=shape)
    if density > 0 and v.size:
        sp = special_values(dtype).astype(np.float64)
        mask = rng.random(shape) < density
        v[mask] = rng.choice(sp, size=int(mask.sum()))
    return v


def float_operand(rng, shape, code, layout, density, nonneg=False, scale=3.0):
    """An operand of dtype ``code`` (integer codes get small integers, no specials)."""
    if code != "list" and np.dtype(code).kind in "iu":
        lo = 0 if (nonneg or np.dtype(code).kind == "u") else -100
        return present(rng.integers(lo, 100, shape), code, layout)
    dt = np.float32 if code in ("f4", ">f4") else np.float64
    v = fill_values(rng, shape, dt, density, scale)
    if nonneg:
        v = np.abs(v)
    return present(v, code, layout)


densities = st.sampled_from([0.0, 0.0, 0.02, 0.2, 1.0])
float_codes = st.sampled_from(FLOAT_CODES + ["f8", "f4", "f8", "f4"])
layouts = st.sampled_from(LAYOUTS + ["c", "c"])


def sizes_n():
    return st.sampled_from([0, 1, 1, 2, 3, 5, 8, 9, 17, 64, 300]) | st.just(3000)


def sizes_c():
    return st.sampled_from([1, 1, 2, 2, 3, 4, 5, 8, 15, 16, 17, 33, 100]) | st.sampled_from(
        [0, 5000, 40000]
    )


@st.composite
def int_labels(draw, rng, N, C):
    """(labels as given, their int values, first bad position or None)."""
    code = draw(st.sampled_from(INT_CODES + ["list", "<i8", "<i8"]))
    layout = draw(st.sampled_from(["c", "strided", "negative", "readonly", "unaligned",
                                   "broadcast_row", "c", "c"]))  # fmt: skip
    info = np.iinfo(np.int64 if code == "list" else np.dtype(code))
    hi = min(C, int(info.max) + 1)
    vals = rng.integers(0, max(hi, 1), N) if N else np.zeros(0, np.int64)
    if N and hi > 0:  # the edges
        vals[rng.integers(0, N)] = hi - 1
        vals[rng.integers(0, N)] = 0
    if hi <= 0:  # C == 0: no label is valid
        vals[:] = 0
    bad = draw(st.sampled_from([False, False, False, True]))
    if bad and N:
        cands = [v for v in (-1, C, C + 1, 2**31, 2**32, -(2**31), int(info.max), int(info.min))
                 if int(info.min) <= v <= int(info.max) and not 0 <= v < C]  # fmt: skip
        if cands:
            vals = vals.astype(object)
            vals[rng.integers(0, N)] = cands[draw(st.integers(0, len(cands) - 1))]
    if layout == "broadcast_row" and N:
        vals = np.full(N, vals[0], dtype=object)
    ints = np.array([int(v) for v in vals], dtype=object)
    if code == "list":
        y = [int(v) for v in ints]
    else:
        y = present(np.array(ints, dtype=np.dtype(code)), code,
                    "c" if layout == "broadcast_row" else layout)  # fmt: skip
        if layout == "broadcast_row" and N:
            y = np.broadcast_to(y[:1], (N,))
    badpos = [i for i, v in enumerate(ints) if not 0 <= v < C]
    return y, ints, (badpos[0] if badpos else None)


@st.composite
def weight_operand(draw, rng, n, what):
    """None, or n non-negative weights with zeros, subnormals, huge values, NaN, inf."""
    if not draw(st.booleans()):
        return None
    code = draw(st.sampled_from(["f8", "f4", ">f8", "list", "i4", "f2", "f8", "f4"]))
    layout = draw(st.sampled_from(["c", "negative", "readonly", "unaligned", "broadcast_row",
                                   "strided", "c"]))  # fmt: skip
    kinds = ["plain", "zeros", "subnormal", "huge", "mixed", "nonfinite"]
    if code in ("i4", "f2"):  # (no subnormal, huge or non-finite integers)
        kinds = ["plain", "zeros"]
    kind = draw(st.sampled_from(kinds))
    w = rng.random(n) + 0.1
    if kind == "zeros":
        w[rng.random(n) < 0.5] = 0.0
    elif kind == "subnormal":
        w = w * (1e-320 if code in ("f8", ">f8", "list") else 1e-44)
    elif kind == "huge":
        w = w * (1e300 if code in ("f8", ">f8", "list") else 1e30)
    elif kind == "mixed" and n:
        w[rng.integers(0, n)] = 0.0
        w[rng.integers(0, n)] = 1e30
        w[rng.integers(0, n)] = -0.0  # not negative
    elif kind == "nonfinite" and n:
        w[rng.integers(0, n)] = draw(st.sampled_from([np.nan, np.inf]))
    if code in ("i4",):
        w = np.round(w * 3)
    return present(w, code, layout)


def add_weights(draw, rng, N, C, kw):
    """Maybe a sample_weight and a class_weight in kw (weight_operand)."""
    for key, n in (("sample_weight", N), ("class_weight", C)):
        w = draw(weight_operand(rng, n, key))
        if w is not None:
            kw[key] = w


# ---------------------------------------------------------------- score-level losses


@st.composite
def loss_cases(draw, fn_name):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    N, C = draw(sizes_n()), draw(sizes_c())
    if N * max(C, 1) > 60_000:
        N = max(1, 60_000 // C) if C else N
    code, layout, density = draw(float_codes), draw(layouts), draw(densities)
    if N == 0 and code == "list":
        code = "f8"  # [] has no C
    scores = float_operand(rng, (N, C), code, layout, density)
    case = {"fn": fn_name, "N": N, "C": C, "scores": scores, "kw": {}}
    kw = case["kw"]
    soft = fn_name == "softmax_cross_entropy" and draw(st.integers(0, 3)) == 0
    if soft:
        qcode, qlayout = draw(float_codes), draw(layouts)
        if N == 0 and qcode == "list":
            qcode = "f8"  # [] would be labels
        p = R.softmax(rng.normal(size=(N, C))) if C else np.zeros((N, 0))
        qdens = draw(st.sampled_from([0.0, 0.0, 0.1]))
        if qdens:  # zeros, subnormals, NaN, inf, huge and big-but-valid entries
            sp = np.abs(special_values(np.float32)).astype(np.float64)
            mask = rng.random(p.shape) < qdens
            p[mask] = rng.choice(sp, size=int(mask.sum()))
        case["y"] = present(p, qcode, qlayout)
        case["ints"], case["badpos"] = None, None
    else:
        case["y"], case["ints"], case["badpos"] = draw(int_labels(rng, N, C))
    if fn_name in ("multiclass_hinge", "softmax_cross_entropy") and not soft and C:
        # ignore_index: a label present (valid or the bad one), PyTorch's -100, or none
        pick = draw(st.sampled_from([None, None, None, "present", "bad", -100]))
        ints = case["ints"]
        ign = None
        if pick == "present" and N:
            ign = int(ints[rng.integers(0, N)])
        elif pick == "bad" and case["badpos"] is not None:
            ign = int(ints[case["badpos"]])
        elif pick == -100:
            ign = -100
        if ign is not None and -(2**63) <= ign < 2**63:
            kw["ignore_index"] = ign
            bad = [i for i, v in enumerate(ints) if not 0 <= v < C and v != ign]
            case["badpos"] = bad[0] if bad else None
    if fn_name in ("multiclass_hinge", "softmax_cross_entropy"):
        kw["reduction"] = draw(st.sampled_from(["mean", "sum", "none"]))
        kw["grad"] = draw(st.booleans() | st.just(True))
        add_weights(draw, rng, N, C, kw)
        kw["n_threads"] = draw(st.sampled_from([None, None, 1, 2, 3, -1, 64, 10**6, 2**40]))
    if fn_name == "multiclass_hinge":
        kw["variant"] = draw(st.sampled_from(["weston_watkins", "crammer_singer"]))
        kw["squared"] = draw(st.booleans())
        kw["margin"] = draw(st.sampled_from([1.0, 1.0, 0.0, -1.0, 2.5, 1e-310, 1e30, np.float32(1)]))
    if fn_name == "softmax_cross_entropy":
        kw["label_smoothing"] = draw(st.sampled_from([0.0, 0.0, 0.1, 1.0, 5e-324, np.float32(0.25)]))
    case["error"] = draw(st.sampled_from([None] * 6 + BAD_KINDS.get(fn_name, [])))
    note(describe(case, seed, code, layout, density))
    return case


def describe(case, seed, code, layout, density):
    y = case["y"]
    ydesc = (f"{y.dtype.str} {y.shape} strides {y.strides}" if isinstance(y, np.ndarray)
             else f"list[{len(y)}]")  # fmt: skip
    kw = {k: (f"{v.dtype.str}{v.shape}" if isinstance(v, np.ndarray) else
              (f"list[{len(v)}]" if isinstance(v, list) else v)) for k, v in case["kw"].items()}  # fmt: skip
    return (f"{case['fn']} seed={seed} N={case['N']} C={case['C']} scores {code} {layout} "
            f"density={density}; y {ydesc} badpos={case['badpos']}; kw={kw}; "
            f"error={case['error']}")  # fmt: skip


# Injected errors: (kind) -> how to apply it and what the message must say.
BAD_KINDS = {
    "multiclass_hinge": ["y_len", "sw_neg", "cw_neg", "sw_len", "y_float", "y_bool",
                         "scores_complex", "scores_1d", "reduction", "margin", "n_threads0",
                         "n_threads_type", "variant", "squared"],
    "softmax_cross_entropy": ["y_len", "sw_neg", "cw_neg", "cw_len", "y_float_2d", "y_bool",
                              "scores_bool", "scores_3d", "reduction", "smoothing",
                              "n_threads_neg", "grad"],
    "svm_loss": ["y_len", "y_float", "scores_str"],
    "softmax_loss": ["y_len", "y_bool", "scores_object"],
}  # fmt: skip


def inject(case):
    """Apply case["error"]; return (exception type, regex its message must match)."""
    kind, kw, N, C = case["error"], case["kw"], case["N"], case["C"]
    if kind == "y_len":
        case["y"] = list(range(min(C, 1))) * (N + 1) if C else [0] * (N + 1)
        return ValueError, rf"y has shape \({N + 1},\) but scores has shape \({N}, {C}\)"
    if kind == "sw_neg":
        w = np.ones(max(N, 1))
        w[-1] = -0.5
        kw["sample_weight"] = w
        if N == 0:
            return ValueError, r"sample_weight must have shape \(0,\).*got \(1,\)"
        return ValueError, rf"sample_weight\[{N - 1}\] = -0.5 is negative"
    if kind == "cw_neg":
        w = np.ones(max(C, 1))
        w[0] = -2.0
        kw["class_weight"] = w
        if C == 0:
            return ValueError, r"class_weight must have shape \(0,\).*got \(1,\)"
        return ValueError, r"class_weight\[0\] = -2.0 is negative"
    if kind == "sw_len":
        kw["sample_weight"] = np.ones(N + 2)
        return ValueError, rf"sample_weight must have shape \({N},\).*got \({N + 2},\)"
    if kind == "cw_len":
        kw["class_weight"] = [1.0] * (C + 1)
        return ValueError, rf"class_weight must have shape \({C},\).*got \({C + 1},\)"
    if kind == "y_float":
        case["y"] = np.zeros(N, np.float32)
        return TypeError, r"y must hold integer class labels; got dtype float32"
    if kind == "y_float_2d":  # soft targets of the wrong shape
        case["y"] = np.zeros((N, C + 1))
        return ValueError, rf"soft targets y have shape \({N}, {C + 1}\).*\({N}, {C}\)"
    if kind == "y_bool":
        case["y"] = np.zeros(N, bool)
        return TypeError, r"y must hold integer class labels; got dtype bool"
    if kind == "scores_complex":
        case["scores"] = np.zeros((N, C), np.complex64)
        return TypeError, r"scores must hold real numbers.*got dtype complex64"
    if kind == "scores_bool":
        case["scores"] = np.zeros((N, C), bool)
        return TypeError, r"scores must hold real numbers.*got dtype bool"
    if kind == "scores_str":
        case["scores"] = np.full((N, C), "x")
        return TypeError, r"scores must hold real numbers.*got dtype <U1"
    if kind == "scores_object":
        case["scores"] = np.full((N, C), None)
        return TypeError, r"scores must hold real numbers.*got dtype object"
    if kind == "scores_1d":
        case["scores"] = np.zeros(N)
        return ValueError, rf"scores must be a 2-D \(N, C\) array; got shape \({N},\)"
    if kind == "scores_3d":
        case["scores"] = np.zeros((N, C, 1))
        return ValueError, rf"scores must be a 2-D \(N, C\) array; got shape \({N}, {C}, 1\)"
    if kind == "reduction":
        kw["reduction"] = "average"
        return ValueError, r"reduction must be one of 'mean', 'sum', 'none'; got 'average'"
    if kind == "margin":
        kw["margin"] = float("nan")
        return ValueError, r"margin must be a finite number; got nan"
    if kind == "smoothing":
        kw["label_smoothing"] = 1.5
        return ValueError, r"label_smoothing must be a finite number in \[0.0, 1.0\]; got 1.5"
    if kind == "n_threads0":
        kw["n_threads"] = 0
        return ValueError, r"n_threads must be a positive int.*got 0"
    if kind == "n_threads_neg":
        kw["n_threads"] = -3
        return ValueError, r"n_threads must be a positive int.*got -3"
    if kind == "n_threads_type":
        kw["n_threads"] = 2.0
        return TypeError, r"n_threads must be an int or None; got float 2.0"
    if kind == "variant":
        kw["variant"] = "one_vs_rest"
        return ValueError, r"variant must be one of .*got 'one_vs_rest'"
    if kind == "squared":
        kw["squared"] = "yes"
        return TypeError, r"squared must be True or False; got 'yes'"
    if kind == "grad":
        kw["grad"] = 1
        return TypeError, r"grad must be True or False; got 1"
    raise AssertionError(kind)


def ignored_rows(case):
    """The rows whose label equals ignore_index (none without it)."""
    ign = case["kw"].get("ignore_index")
    if ign is None or case["ints"] is None:
        return np.zeros(case["N"], bool)
    return np.array([v == ign for v in case["ints"]], bool).reshape(case["N"])


def expected_label_error(case):
    i = case["badpos"]
    return ValueError, rf"y\[{i}\] = {case['ints'][i]} is not a valid class label"


def loss_oracle(case, S64):
    """The reference's (loss, gradient) in float64, and per-row tolerance floors."""
    fn, kw, N, C = case["fn"], dict(case["kw"]), case["N"], case["C"]
    red = kw.pop("reduction", "mean")
    kw.pop("grad", None)
    kw.pop("n_threads", None)
    y = case["y"]
    soft = case["ints"] is None
    yv = api_float(y).astype(np.float64) if soft else np.array(case["ints"], np.int64)
    ign = ignored_rows(case)
    ys = yv if soft else np.where(ign, 0, yv)  # (labels that index: the floors below)
    if N == 0:  # (NumPy's max has no identity for the reference's (0, 0) arrays)
        zero = np.zeros(0) if red == "none" else 0.0
        return zero, np.zeros((0, C)), 0.0, np.zeros(0), np.zeros(0), 1.0
    if C == 0:  # soft targets of no class: each row's loss is the empty sum, 0
        sw0 = np.ones(N) if kw.get("sample_weight") is None else np.asarray(
            kw["sample_weight"], np.float64)  # fmt: skip
        with quiet():
            Lw = sw0 * 0.0
            loss = {"none": Lw, "sum": Lw.sum(), "mean": Lw.sum() / sw0.sum()}[red]
        return loss, np.zeros((N, 0)), 0.0, np.zeros(N), np.zeros(N), 1.0
    sw = kw.pop("sample_weight", None)
    cw = kw.pop("class_weight", None)
    sw = None if sw is None else np.asarray(sw, np.float64)
    cw = None if cw is None else np.asarray(cw, np.float64)
    if red == "mean":  # exact, and keeps the reference's sums in range
        sw = pow2_normalised(sw)
        if not soft:
            cw = pow2_normalised(cw)
    margin = float(kw.get("margin", 1.0))
    squared = bool(kw.get("squared", False))
    ref = {"multiclass_hinge": R.multiclass_hinge, "svm_loss": R.multiclass_hinge,
           "softmax_cross_entropy": R.softmax_cross_entropy,
           "softmax_loss": R.softmax_cross_entropy}[fn]  # fmt: skip
    with quiet():
        loss, grad = ref(S64, yv, sample_weight=sw, class_weight=cw, reduction=red, grad=True,
                         **kw)  # fmt: skip
        # tolerance floors: the size of the terms each row's loss and gradient are made of
        Rr = row_max_abs(S64)
        w = np.ones(N) if sw is None else np.abs(sw)
        w = np.where(ign, 0.0, w)  # (ignored rows: nothing)
        cwmax = 1.0 if cw is None or C == 0 else float(np.nanmax(np.abs(cw)))
        if fn in ("multiclass_hinge", "svm_loss"):
            K = np.ones(N) if cw is None else np.abs(cw[ys]) if N else np.ones(0)
            p = 2 if squared else 1
        else:
            K = np.full(N, cwmax)
            if soft and N:
                K = K * np.maximum(1.0, row_max_abs(yv)) * (1 + C)
            p = 1
        base = 1.0 + 2 * Rr + abs(margin) + math.log(C + 1)
        term = K * (C + 1) * base**p
        denom = 1.0
        if red == "mean":
            wy = w * (1.0 if cw is None or soft else np.abs(cw[ys]))
            denom = float(np.where(ign, 0.0, wy).sum()) if N else 1.0
        loss_floor = w * term
        grad_floor = w * K * (C + 1) * base ** (p - 1) / (denom if red == "mean" else 1.0)
        if red == "mean":
            tot_floor = loss_floor.sum() / denom if N else 0.0
        elif red == "sum":
            tot_floor = loss_floor.sum()
        else:
            tot_floor = loss_floor
    return loss, grad, tot_floor, grad_floor, term, denom


def hinge_near_tie_rows(S64, ints, margin):
    """Rows with a margin s_j - s_y + margin so close to 0 that float32 rounding may flip
    which side of the hinge it is on (their float32 gradient may differ by one step)."""
    N, C = S64.shape
    if N == 0 or C == 0:
        return np.zeros(N, bool)
    with np.errstate(all="ignore"):
        y = np.asarray(ints, np.int64)
        sy = S64[np.arange(N), y][:, None]
        m = S64 - sy + margin
        scale = 1.0 + np.abs(S64) + np.abs(sy) + abs(margin)
        near = np.abs(m) <= 1e-5 * scale
        near[np.arange(N), y] = False
        # Crammer-Singer: the max over j != y, ties decided in float32
        return near.any(axis=1)


def run_loss_case(case):
    fn = getattr(fl, case["fn"])
    expect = inject(case) if case["error"] else None
    if (expect and case["error"] in ("sw_neg", "cw_neg", "sw_len", "cw_len")
            and case["badpos"] is not None and case["ints"][case["badpos"]] >= 2**63):
        expect = expected_label_error(case)  # (uint64 labels out of int64's range are
        # checked with the labels, before the weights)
    if expect is None and case["badpos"] is not None:
        expect = expected_label_error(case)
    if expect is None and case["kw"].get("reduction", "mean") == "mean" and case["N"] == 0:
        expect = ValueError, r"reduction='mean' of an empty batch \(N == 0\)"
    if case["fn"] in ("svm_loss", "softmax_loss") and expect is None and case["N"] == 0:
        expect = ValueError, r"N == 0"
    args = (case["scores"], case["y"])
    snap = Snapshot(*args, *case["kw"].values())
    if expect is not None:
        exc, msg = expect
        with pytest.raises(exc, match=msg):
            fn(*args, **case["kw"])
        snap.check()
        return
    out = fn(*args, **case["kw"])
    snap.check()
    kw = case["kw"]
    grad = kw.get("grad", True)
    loss, g = out if grad else (out, None)
    # dtype: float32 only when every floating operand is float32
    ops = [case["scores"]] + [kw[k] for k in ("sample_weight", "class_weight") if k in kw]
    if case["ints"] is None:
        ops.append(case["y"])
    dt = np.dtype(np.float32 if all(is_f32_operand(o) for o in ops) else np.float64)
    N, C = case["N"], case["C"]
    red = kw.get("reduction", "mean")
    assert np.asarray(loss).dtype == dt
    assert np.shape(loss) == ((N,) if red == "none" else ())
    if grad:
        assert isinstance(g, np.ndarray) and g.dtype == dt and g.shape == (N, C)
        assert g.flags.writeable and g.flags.c_contiguous
        for a in ops:
            if isinstance(a, np.ndarray):
                assert not np.shares_memory(g, a)
    S64 = api_float(case["scores"]).astype(np.float64)
    want_loss, want_grad, tot_floor, grad_floor, term, denom = loss_oracle(case, S64)
    if red == "mean" and denom == 0:  # a division by 0: NaN or inf, as in NumPy, and
        assert_matches(loss, want_loss, rtol=0, floor=np.inf, what="loss")  # no finite
        ign = ignored_rows(case)  # gradient entry, except the ignored rows' zeros
        assert g is None or not np.isfinite(g[~ign]).any()
        assert g is None or (g[ign] == 0).all()
        return
    f32 = dt == np.float32
    # (the row's own terms, before its weight: a weight of 0 times an overflowed float32
    # row loss is NaN, as NumPy's float32 arithmetic gives it)
    raw = (1.0 + 2 * row_max_abs(S64) + abs(float(kw.get("margin", 1.0))) + math.log(C + 1)) ** (
        2 if kw.get("squared") else 1) * (C + 1) if N else np.zeros(0)  # fmt: skip
    if f32 and N and np.nanmax(np.where(np.isfinite(raw), raw, 0)) > 1e36:
        note("float32 intermediates may overflow: values not compared")
        return
    rtol = RTOL[dt]
    # Subnormal arithmetic (subnormal weights or targets) rounds to an absolute step, not a
    # relative one: each of a row's ~C products is off by up to half the smallest subnormal,
    # times what multiplies it (the log-probability, the sample weight). That absolute floor
    # (no relative slack) is added for "sum" and "none"; "mean" rescales tiny weights.
    sub_row = np.zeros(N)
    if red != "mean" and N:
        wabs = np.ones(N)
        if "sample_weight" in kw:
            with quiet():
                wabs = np.nan_to_num(np.abs(api_float(kw["sample_weight"]).astype(np.float64)))
        sub_row = np.finfo(dt).smallest_subnormal * 4 * (C + 1) * wabs
    with quiet():
        sub_loss = sub_row * (1 + 2 * np.nan_to_num(row_max_abs(S64)) + math.log(C + 1))
    sub_loss = sub_loss if red == "none" else sub_loss.sum()
    # Rows where only finiteness is compared: non-finite soft targets (A lse - sum a d is
    # NaN where -sum q log p is inf: inf * 0 for the max class) or weights (the kernel's
    # gs * (A p - a) is inf - inf where NumPy's (p A - a) * w is +-inf)
    qrows = np.zeros(N, bool)
    if case["ints"] is None and N:
        qrows |= ~np.isfinite(api_float(case["y"]).astype(np.float64)).all(axis=1)
    if "sample_weight" in kw:
        qrows |= ~np.isfinite(np.asarray(api_float(kw["sample_weight"]), np.float64))
    if "class_weight" in kw and not np.isfinite(api_float(kw["class_weight"])).all():
        qrows[:] = True
    loose = qrows if red == "none" else bool(qrows.any())
    assert_matches(loss, want_loss, rtol=rtol, floor=rtol * tot_floor + sub_loss, f32=f32,
                   what="loss", loose=loose)  # fmt: skip
    loose = qrows
    if grad:
        gfloor = rtol * grad_floor + sub_row
        if f32 and case["fn"] in ("multiclass_hinge", "svm_loss"):
            ints = np.where(ignored_rows(case), 0, np.array(case["ints"], np.int64))
            near = hinge_near_tie_rows(S64, ints, float(kw.get("margin", 1.0)))
            gfloor = np.where(near, np.inf, gfloor)
        assert_matches(g, want_grad, rtol=rtol, floor=gfloor, f32=f32, what="gradient",
                       loose=loose)  # fmt: skip


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_multiclass_hinge_adversarial(data):
    run_loss_case(data.draw(loss_cases("multiclass_hinge")))


# Known divergence (issue 8): soft targets with an infinite class weight on the row's
# largest score give NaN (the kernels form the loss as A * lse - sum a d, inf - inf) where
# the reference's -sum a log p gives inf; subnormal class weights round a gradient entry to
# 5e-324 where the reference has 0.
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_softmax_cross_entropy_adversarial(data):
    run_loss_case(data.draw(loss_cases("softmax_cross_entropy")))


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.sampled_from(["svm_loss", "softmax_loss"]))
def test_cs231n_dropins_adversarial(data, name):
    run_loss_case(data.draw(loss_cases(name)))


# ---------------------------------------------------------------- softmax, log_softmax


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.sampled_from([0, 1, 1, 2, 3, 5, 17, 40]), min_size=1, max_size=3),
    float_codes,
    layouts,
    densities,
    st.data(),
)
def test_softmax_log_softmax_adversarial(seed, shape, code, layout, density, data):
    rng = np.random.default_rng(seed)
    x = float_operand(rng, tuple(shape), code, layout, density)
    shape = np.shape(x)  # ([] from a list of an empty shape is 1-D)
    nd = len(shape)
    axis = data.draw(st.integers(-nd, nd - 1) | st.sampled_from([nd, -nd - 1, 1.0]), "axis")
    nt = data.draw(st.sampled_from([None, 1, 2, 10**6]), "n_threads")
    snap = Snapshot(x)
    for fn, ref in ((fl.softmax, R.softmax), (fl.log_softmax, R.log_softmax)):
        if not isinstance(axis, int):
            with pytest.raises(TypeError, match=r"axis must be an int; got float 1.0"):
                fn(x, axis=axis, n_threads=nt)
            continue
        if not -nd <= axis < nd:
            with pytest.raises(ValueError, match=rf"axis {axis} is out of bounds"):
                fn(x, axis=axis, n_threads=nt)
            continue
        out = fn(x, axis=axis, n_threads=nt)
        snap.check()
        a = api_float(x)
        assert out.dtype == a.dtype and out.shape == a.shape
        if isinstance(x, np.ndarray):
            assert not np.shares_memory(out, x)
        if a.size == 0:
            continue
        x64 = a.astype(np.float64)
        with np.errstate(all="ignore"):
            want = ref(x64, axis=axis)
            moved = np.moveaxis(x64, axis, -1)
            Rr = np.where(np.isfinite(moved), np.abs(moved), 0).max(axis=-1, keepdims=True)
            floor = np.moveaxis(
                (1.0 + (2 * Rr + math.log(shape[axis] + 1) if fn is fl.log_softmax else 0.0))
                * np.ones_like(moved) * shape[axis], -1, axis,
            )  # fmt: skip
        rtol = RTOL[out.dtype]
        assert_matches(out, want, rtol=rtol, floor=rtol * floor, f32=out.dtype == np.float32,
                       what=fn.__name__)  # fmt: skip


# ---------------------------------------------------------------- image features

try:  # the oracles: scikit-image, and CS231n's NumPy code (matplotlib, SciPy)
    import skimage.feature as skfeature
    from cs231n_features import (
        cs231n_color_histogram_hsv,
        cs231n_extract_features,
        cs231n_hog_feature,
        skimage_hog,
    )
except ImportError:  # pragma: no cover
    skfeature = None
needs_oracles = pytest.mark.skipif(skfeature is None, reason="scikit-image/matplotlib/scipy")

IMAGE_CODES = ["u1", "f8", "f4", ">f8", ">f4", "f2", "i2", "u2", "i8", "list", "u1", "f8"]


def pixels_for(code):
    """The array the feature kernels compute on: uint8 stays, the rest as api_float."""
    return lambda x: (np.asarray(x) if np.asarray(x).dtype == np.uint8 else api_float(x))


def image_operand(rng, shape, code, layout, density, hi=255.0):
    if code != "list" and np.dtype(code).kind in "iu":
        return present(rng.integers(0, int(hi) + 1, shape), code, layout)
    dt = np.float32 if code in ("f4", ">f4") else np.float64
    v = rng.random(shape) * hi
    if density and v.size:
        sp = special_values(dt).astype(np.float64)
        mask = rng.random(shape) < density
        v[mask] = rng.choice(sp, size=int(mask.sum()))
    return present(v, code, layout)


@contextlib.contextmanager
def quiet():
    """The oracles' warnings and floating-point errors (NaN, inf, 0 / 0) silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


@needs_oracles
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 40),
    st.integers(0, 40),
    st.sampled_from(IMAGE_CODES),
    layouts,
    st.sampled_from([0.0, 0.0, 0.02, 0.3]),
    st.integers(1, 12) | st.sampled_from([0, 2**31, 2**40]),
    st.tuples(st.integers(1, 9), st.integers(1, 9)) | st.just((0, 4)),
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.sampled_from(["L1", "L1-sqrt", "L2", "L2-Hys"]),
    st.booleans(),
    st.sampled_from([None, 0, 1, 5]),
)
def test_hog_adversarial(seed, H, W, code, layout, density, orient, ppc, cpb, norm, sqrt, nbatch):
    """hog and hog_batch: scikit-image's numbers, or a ValueError/TypeError naming the
    argument. nbatch: hog of one image (None), or hog_batch of a stack of that many."""
    rng = np.random.default_rng(seed)
    if code == "list" and (H == 0 or W == 0 or nbatch == 0):
        code = "f8"  # (a list of nothing has no shape)
    shape = (H, W) if nbatch is None else (nbatch, H, W)
    im = image_operand(rng, shape, code, layout, density)
    kw = dict(orientations=orient, pixels_per_cell=ppc, cells_per_block=cpb, block_norm=norm,
              transform_sqrt=sqrt)  # fmt: skip
    snap = Snapshot(im)
    call = (lambda: F.hog(im, **kw)) if nbatch is None else (lambda: F.hog_batch(im, **kw))
    a = pixels_for(code)(im)
    if not 1 <= orient <= 2**31 - 1:
        with pytest.raises(ValueError, match=rf"orientations must be a positive int.*got {orient}"):
            call()
        return snap.check()
    if ppc[0] < 1:
        with pytest.raises(ValueError, match=r"pixels_per_cell\[0\] must be a positive int"):
            call()
        return snap.check()
    Hs, Ws = a.shape[-2:]
    if Hs // ppc[0] < cpb[0] or Ws // ppc[1] < cpb[1]:
        with pytest.raises(ValueError, match=rf"images of {Hs} x {Ws} pixels are too small"):
            call()
        return snap.check()
    got = call()
    snap.check()
    out_dt = np.float32 if a.dtype == np.float32 else np.float64
    assert got.dtype == out_dt
    imgs = [a] if nbatch is None else list(a)
    assert got.shape[0] == len(imgs) if nbatch is not None else got.ndim == 1
    for i, img in enumerate(imgs):
        with quiet():
            want = skimage_hog(img, **kw)
        row = got if nbatch is None else got[i]
        assert_matches(row, want, rtol=0, floor=1e-6, what=f"hog of image {i}")


@needs_oracles
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([8, 9, 12, 16, 20, 24, 28, 32, 36] + [0, 7, 13, 23]),
    st.sampled_from([0, 1, 3, 3, 4]),
    st.sampled_from(IMAGE_CODES),
    layouts,
    st.sampled_from([0.0, 0.0, 0.02, 0.3]),
    st.booleans(),
)
def test_hog_feature_adversarial(seed, H, channels, code, layout, density, square):
    """CS231n's hog_feature, compared where CS231n's code works (square images whose side
    % 8 <= 4)."""
    rng = np.random.default_rng(seed)
    W = H if square else H + 5
    shape = (H, W) if channels == 0 else (H, W, channels)
    if code == "list" and H == 0:
        code = "f8"
    im = image_operand(rng, shape, code, layout, density)
    snap = Snapshot(im)
    a = pixels_for(code)(im)
    if channels in (1,):
        with pytest.raises(ValueError, match=r"im must be RGB \(H, W, 3\) or grayscale"):
            F.hog_feature(im)
        return snap.check()
    if H < 8:
        with pytest.raises(ValueError, match=rf"at least 8 x 8 pixels; got {H} x {W}"):
            F.hog_feature(im)
        return snap.check()
    got = F.hog_feature(im)
    snap.check()
    assert got.dtype == np.float64 and got.shape == ((H // 8) * (W // 8) * 9,)
    with np.errstate(all="ignore"):
        finite = bool(np.all(np.isfinite(a) | np.isnan(a))) and float(
            np.nanmax(np.abs(a.astype(np.float64)), initial=0)) < 1e150  # fmt: skip
    # CS231n's uniform_filter runs a sum along each row: an infinite gradient magnitude
    # makes it NaN for the rest of the row, so its numbers are the oracle for finite images
    if square and H % 8 <= 4 and finite:
        with np.errstate(all="ignore"):  # (CS231n's np.diff of a 2-D uint8 image wraps around)
            want = cs231n_hog_feature(a.astype(np.float64) if a.ndim == 2 and a.dtype == np.uint8
                                      else a)  # fmt: skip
            scale = float(np.nanmax(np.where(np.isfinite(want), np.abs(want), 0), initial=0))
            big = float(np.nanmax(np.where(np.isfinite(a), np.abs(a.astype(np.float64)), 0),
                                  initial=0))  # fmt: skip
        # CS231n's uniform_filter sums with running differences: its rounding is that of the
        # largest pixel, not of the result
        assert_matches(got, want, rtol=1e-12, floor=1e-12 * (scale + 1e3 * big), what="hog")


@needs_oracles
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 9),
    st.integers(0, 9),
    st.sampled_from(IMAGE_CODES),
    layouts,
    st.sampled_from([None, "nan", "subnormal", "high", "negative", "inf", "ninf"]),
    st.sampled_from([10, 1, 3, 7, 0, 2**31]),
    st.sampled_from([(0, 255), (30, 255), (0, 300), (-10.0, 255.0), (0, 1), (255, 255),
                     (0, 1e300), (0, float("nan"))]),
    st.booleans(),
)
def test_color_histogram_hsv_adversarial(seed, H, W, code, layout, special, nbin, lims, norm):
    rng = np.random.default_rng(seed)
    if code == "list" and (H == 0 or W == 0):
        code = "f8"
    xmin, xmax = lims
    hi = 255 if not 0 < xmax < 255 else xmax
    im = image_operand(rng, (H, W, 3), code, layout, 0.0, hi=min(hi, 255))
    a = pixels_for(code)(im)
    if special and a.size and a.dtype.kind == "f":
        a = a.copy()
        val = {"nan": np.nan, "subnormal": 5e-324, "high": 1000.0, "negative": -1.0,
               "inf": np.inf, "ninf": -np.inf}[special]  # fmt: skip
        a.reshape(-1)[rng.integers(0, a.size)] = val
        im = present(a, a.dtype.str, layout) if code != "list" else a.tolist()
        a = pixels_for(code)(im)
    snap = Snapshot(im)
    kw = dict(nbin=nbin, xmin=xmin, xmax=xmax, normalized=norm)
    if not 1 <= nbin <= 2**31 - 1:
        with pytest.raises(ValueError, match=rf"nbin must be a positive int.*got {nbin}"):
            F.color_histogram_hsv(im, **kw)
        return snap.check()
    if not (math.isfinite(xmax) and xmax > 0 and xmin < xmax):
        with pytest.raises(ValueError, match="xmax" if not math.isfinite(xmax) else "xmin"):
            F.color_histogram_hsv(im, **kw)
        return snap.check()
    with np.errstate(all="ignore"):
        r = a / xmax  # matplotlib checks im / xmax, in NumPy's dtype (float32 for float32 im)
        bad = (r < 0) | (r > 1)
        bad = bad.any(axis=-1) if a.size else np.zeros(a.shape[:2], bool)
    if bad.any():
        with pytest.raises(ValueError, match=r"im\[(\d+), (\d+)\] = .* is outside \[0, xmax="):
            F.color_histogram_hsv(im, **kw)
        return snap.check()
    if a.size == 0:  # a histogram of no pixels (0 / 0 with density): refused
        with pytest.raises(ValueError, match=f"im must have at least one pixel.*{H} x {W}"):
            F.color_histogram_hsv(im, **kw)
        return snap.check()
    got = F.color_histogram_hsv(im, **kw)
    snap.check()
    assert got.dtype == np.float64 and got.shape == (nbin,)
    with quiet():
        want = cs231n_color_histogram_hsv(a, **kw)
    assert_matches(got, want, rtol=1e-12, floor=1e-15, what="color_histogram_hsv")


@needs_oracles
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([0, 1, 3]),
    st.sampled_from([8, 12, 16]),
    st.sampled_from(["u1", "f8", "f4", ">f8", "i2"]),
    st.sampled_from(["c", "negative", "readonly", "unaligned", "broadcast_row", "strided"]),
    st.sampled_from([None, "nan", "high"]),
    st.sampled_from([None, 1, 2, 10**6]),
)
def test_extract_features_adversarial(seed, N, S, code, layout, special, nt):
    rng = np.random.default_rng(seed)
    imgs = image_operand(rng, (N, S, S, 3), code, layout, 0.0)
    a = pixels_for(code)(imgs)
    if special and a.size and a.dtype.kind == "f":
        a = a.copy()
        a.reshape(-1)[rng.integers(0, a.size)] = np.nan if special == "nan" else 300.0
        imgs = present(a, a.dtype.str, layout)
        a = pixels_for(code)(imgs)  # (a broadcast layout repeats the first image)
    fns = [F.hog_feature, F.color_histogram_hsv, functools.partial(F.color_histogram_hsv, nbin=4),
           lambda im: np.asarray(im, np.float64).mean(axis=(0, 1))]  # fmt: skip
    snap = Snapshot(imgs)
    with np.errstate(all="ignore"):
        bad = np.argwhere((a > 255).any(axis=-1))
    if len(bad):
        i, r, c = bad[0]
        with pytest.raises(ValueError, match=rf"imgs\[{i}\]\[{r}, {c}\] = .* is outside"):
            F.extract_features(imgs, fns, n_threads=nt)
        return snap.check()
    got = F.extract_features(imgs, fns, n_threads=nt)
    snap.check()
    ref_fns = [cs231n_hog_feature, cs231n_color_histogram_hsv,
               functools.partial(cs231n_color_histogram_hsv, nbin=4), fns[3]]  # fmt: skip
    if N == 0:  # the plain callable's size is unknown without an image: CS231n's np.array([])
        assert got.size == 0
        return
    with quiet():
        want = cs231n_extract_features(a, ref_fns)
    assert got.shape == want.shape and got.dtype == np.float64
    scale = float(np.nanmax(np.where(np.isfinite(want), np.abs(want), 0), initial=0))
    assert_matches(got, want, rtol=1e-12, floor=1e-12 * (scale + 1), what="extract_features")


# ---------------------------------------------------------------- model level


@st.composite
def linear_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    N = draw(st.sampled_from([0, 1, 2, 3, 17, 300]))
    D = draw(st.sampled_from([1, 2, 3, 20]))
    C = draw(st.sampled_from([1, 2, 3, 10, 17]))
    xcode, wcode = draw(float_codes), draw(float_codes)
    if N == 0 and xcode == "list":
        xcode = "f8"
    X = float_operand(rng, (N, D), xcode, draw(layouts), draw(densities), scale=1.0)
    W = float_operand(rng, (D, C), wcode, draw(layouts), draw(densities), scale=0.5)
    y, ints, badpos = draw(int_labels(rng, N, C))
    loss = draw(st.sampled_from(["softmax", "hinge"]))
    kw = dict(loss=loss, reduction=draw(st.sampled_from(["mean", "sum"])),
              reg=draw(st.sampled_from([0.0, 1e-3, 2.5, 1e30])),
              penalty=draw(st.sampled_from(["l2", "l1", "elasticnet"])),
              n_threads=draw(st.sampled_from([None, 1, 3, 10**6])))  # fmt: skip
    if loss == "hinge":
        kw["variant"] = draw(st.sampled_from(["weston_watkins", "crammer_singer"]))
        kw["squared"] = draw(st.booleans())
    else:
        kw["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 1.0]))
    if draw(st.booleans()):
        kw["b"] = float_operand(rng, (C,), draw(float_codes), draw(layouts), draw(densities))
    add_weights(draw, rng, N, C, kw)
    idx = draw(st.sampled_from([None, None, "repeats", "negative", "empty", "bad"]))
    if idx and N:
        k = int(rng.integers(1, 2 * N + 1))
        rows = rng.integers(0, N, k)
        if idx == "negative":
            rows = rows - N
        if idx == "empty":
            rows = rows[:0]
        if idx == "bad":
            rows[-1] = N
        codes = ["<i8", "i4", ">i8", "list"] + (["u4", ">u8"] if idx != "negative" else [])
        kw["indices"] = present(rows, draw(st.sampled_from(codes)),
                                draw(st.sampled_from(["c", "negative", "unaligned"])))  # fmt: skip
    note(f"linear_loss seed={seed} N={N} D={D} C={C} X {xcode} W {wcode} badpos={badpos} "
         f"kw={ {k: (getattr(v, 'shape', v)) for k, v in kw.items()} }")  # fmt: skip
    return dict(X=X, W=W, y=y, ints=ints, badpos=badpos, kw=kw, N=N, C=C, D=D, idx=idx)


def inf_products(X, W):
    """X @ W has an infinite (or overflowing) product x * w in it: the score is then NaN or
    +-inf by the order of the additions and by fused multiply-adds (NumPy's BLAS gives -inf
    where a sum of the rounded products is inf - inf = NaN), and the row's gradient is NaN
    or finite accordingly: the answer is the implementation's, so values are not compared
    (the call must still return, with the right shapes and dtypes, inputs unchanged)."""
    with quiet():
        return bool(X.size and W.size and not np.isfinite(X[:, :, None] * W[None]).all())


def linear_expected_error(case):
    kw, N = case["kw"], case["N"]
    if case["idx"] == "bad" and N:
        k = len(np.asarray(kw["indices"])) - 1
        return ValueError, rf"indices\[{k}\] = {N} is out of range for X with {N} rows"
    rows = None
    if "indices" in kw:
        rows = np.asarray(kw["indices"]).astype(np.int64) % max(N, 1)
    if kw["reduction"] == "mean" and (N == 0 if rows is None else rows.size == 0):
        return ValueError, r"reduction='mean' of an empty batch"
    if case["badpos"] is not None:  # the first bad label among the rows used
        used = np.arange(N) if rows is None else rows
        bad = [int(r) for r in used if not 0 <= case["ints"][r] < case["C"]]
        if bad:
            return ValueError, "is not a valid class label"
    return None


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(linear_cases())
def test_linear_loss_adversarial(case):
    """linear_loss: the NumPy reference (fastloss.reference.linear_loss, float64), or a
    ValueError/TypeError naming the argument; no input modified."""
    kw = case["kw"]
    args = (case["W"], case["X"], case["y"])
    snap = Snapshot(*args, *kw.values())
    err = linear_expected_error(case)
    if err:
        with pytest.raises(err[0], match=err[1]):
            fl.linear_loss(*args, **kw)
        return snap.check()
    out = fl.linear_loss(*args, **kw)
    snap.check()
    ops = [case["X"], case["W"]] + [kw[k] for k in ("b", "sample_weight", "class_weight")
                                    if k in kw]  # fmt: skip
    dt = np.dtype(np.float32 if all(is_f32_operand(o) for o in ops) else np.float64)
    loss, dW = out[0], out[1]
    assert np.asarray(loss).dtype == dt and dW.dtype == dt and dW.shape == (case["D"], case["C"])
    if "b" in kw:
        assert out[2].dtype == dt and out[2].shape == (case["C"],)
    X64 = api_float(case["X"]).astype(np.float64)
    W64 = api_float(case["W"]).astype(np.float64)
    rkw = {k: v for k, v in kw.items() if k != "n_threads"}
    for k in ("b", "sample_weight", "class_weight"):
        if k in rkw:
            rkw[k] = np.asarray(api_float(rkw[k]), np.float64)
    if "indices" in rkw:
        rkw["indices"] = np.asarray(rkw["indices"]).astype(np.int64)
    if kw["reduction"] == "mean":  # exact, and keeps the reference's sums in range
        for k in ("sample_weight", "class_weight"):
            if k in rkw:
                rkw[k] = pow2_normalised(rkw[k])
    # the labels as int64 (a uint64 label beyond int64's range is valid in a row the
    # indices do not take: an error is expected above when a row taken has one)
    yints = np.array([v if -(2**63) <= v < 2**63 else 0 for v in case["ints"]], np.int64)
    if kw["reduction"] == "mean" and case["N"]:  # a mean over a total weight of 0: x / 0,
        rr = np.arange(case["N"]) if "indices" not in rkw else rkw["indices"] % case["N"]
        yy = yints[rr]  # as at the score level: a non-finite
        tw = np.ones(rr.size) if "sample_weight" not in rkw else rkw["sample_weight"][rr]
        if "class_weight" in rkw:  # loss and no finite gradient entry
            tw = tw * rkw["class_weight"][yy]
        if rr.size and float(tw.sum()) == 0.0:
            assert not np.isfinite(loss) and not np.isfinite(dW).any()
            assert "b" not in kw or not np.isfinite(out[2]).any()
            return
    with quiet():
        want = R.linear_loss(W64, X64, yints, **rkw)
    with quiet():
        # the size of the numbers each result is made of
        rows = np.arange(case["N"]) if "indices" not in rkw else rkw["indices"] % case["N"]
        Xr = np.abs(np.nan_to_num(X64[rows], posinf=0, neginf=0))
        Wa = np.abs(np.nan_to_num(W64, posinf=0, neginf=0))
        smag = (Xr @ Wa).max(axis=1, initial=0) if rows.size else np.zeros(0)
        if "b" in rkw:
            smag = smag + np.nanmax(np.abs(np.nan_to_num(rkw["b"], posinf=0, neginf=0)),
                                    initial=0)  # fmt: skip
        sw = np.ones(rows.size) if "sample_weight" not in rkw else rkw["sample_weight"][rows]
        cwm = 1.0 if "class_weight" not in rkw else float(np.nanmax(rkw["class_weight"]))
        p = 2 if kw.get("squared") else 1
        C = case["C"]
        term = np.abs(sw) * cwm * (C + 1) * (2 + 2 * smag) ** p * (case["D"] + 1)
        denom = 1.0
        if kw["reduction"] == "mean":
            denom = float(np.abs(sw).sum()) if "class_weight" not in rkw else 1.0
        reg = kw["reg"]
        Rmag = float(np.sum(Wa * Wa) + np.sum(Wa))
        loss_floor = term.sum() / (denom or 1.0) + reg * Rmag * (Wa.size + 1)
        gscale = np.abs(sw) * cwm * (C + 1) * (2 + 2 * smag) ** (p - 1) * (case["D"] + 1)
        dW_floor = (Xr.T @ gscale)[:, None] / (denom or 1.0) + reg * (2 * Wa + 1) * 4
        # subnormal arithmetic (tiny weights) rounds to an absolute step: each gradient
        # entry is off by up to ~C smallest subnormals times the sample weight (no relative
        # slack: added after rtol below; "mean" rescales tiny weights)
        sub = np.zeros(rows.size)
        if kw["reduction"] != "mean":
            sub = np.finfo(dt).smallest_subnormal * 4 * (C + 1) * np.abs(sw)
        sub_loss = float((sub * (1 + 2 * smag + math.log(C + 1))).sum())
        sub_dW = (Xr.T @ sub)[:, None] + sub.sum()
    if dt == np.float32 and (smag.max(initial=0) > 1e15 or reg * Rmag > 1e30):
        note("float32 intermediates may overflow: values not compared")
        return
    rtol = RTOL[dt] * 10
    f32 = dt == np.float32
    if inf_products(X64[rows], W64):
        note("an infinite product in X @ W: values not compared")
        return
    lo = any(  # (non-finite weights: as the score level)
        not np.isfinite(rkw[k]).all() for k in ("sample_weight", "class_weight") if k in rkw)
    assert_matches(loss, want[0], rtol=rtol, floor=rtol * loss_floor + sub_loss, f32=f32,
                   what="loss", loose=lo)  # fmt: skip
    near = False
    if kw["loss"] == "hinge" and rows.size:  # a margin within rounding of the hinge's kink
        with quiet():
            S = X64[rows] @ W64 + (rkw["b"] if "b" in rkw else 0)
            yy = yints[rows]
            m = S - S[np.arange(rows.size), yy][:, None] + 1.0
            near = bool((np.abs(m) <= 1e-6 * (1 + 2 * smag[:, None])).sum(axis=1).max() > 1)
    if not near:
        assert_matches(dW, want[1], rtol=rtol, floor=rtol * dW_floor + sub_dW, f32=f32,
                       what="dW", loose=lo)  # fmt: skip
        if "b" in kw:
            bf = rtol * (gscale.sum() / (denom or 1.0)) + sub.sum()
            assert_matches(out[2], want[2], rtol=rtol, floor=bf, f32=f32, what="db", loose=lo)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from(["svm_loss_naive", "svm_loss_vectorized",
       "softmax_loss_naive", "softmax_loss_vectorized"]), layouts, layouts, densities,
       st.sampled_from([0.0, 5e-6, 1e30, -1.0, float("nan")]))  # fmt: skip
def test_cs231n_linear_dropins_adversarial(seed, name, xl, wl, density, reg):
    rng = np.random.default_rng(seed)
    X = float_operand(rng, (20, 6), "f8", xl, density, scale=1.0)
    W = float_operand(rng, (6, 4), "f8", wl, density, scale=0.1)
    y = rng.integers(0, 4, 20)
    snap = Snapshot(X, W, y)
    fn = getattr(fl, name)
    if not (reg >= 0 and math.isfinite(reg)):
        with pytest.raises(ValueError, match=r"reg must be a finite number >= 0.0"):
            fn(W, X, y, reg)
        return snap.check()
    loss, dW = fn(W, X, y, reg)
    snap.check()
    X64, W64 = np.asarray(X, np.float64), np.asarray(W, np.float64)
    with quiet():  # the stable formula (CS231n's code takes log(p) of an underflowed p = 0)
        wl_, wd_ = R.linear_loss(W64, X64, y, loss="hinge" if "svm" in name else "softmax",
                                 reg=reg)  # fmt: skip
    scale = 1 + np.nan_to_num(np.abs(X64), posinf=0).sum() * np.nan_to_num(
        np.abs(W64), posinf=0).max() + reg * np.nansum(W64 * W64)  # fmt: skip
    assert np.shape(loss) == () and dW.shape == W64.shape and dW.dtype == np.float64
    if inf_products(X64, W64):
        note("an infinite product in X @ W: values not compared")
        return
    assert_matches(loss, wl_, rtol=1e-10, floor=1e-12 * scale, what="loss")
    assert_matches(dW, wd_, rtol=1e-10, floor=1e-12 * (scale + reg * np.abs(W64) * 4),
                   what="dW")  # fmt: skip


# ---------------------------------------------------------------- optimization

PARAM_LAYOUTS = ["c", "f", "strided", "negative", "unaligned", "byteswapped", "c",
                 "readonly", "broadcast", "list", "int"]  # fmt: skip


def make_param(rng, shape, code, layout, density):
    """(param, its parent array, the expected error or None). A strided param is every
    other element of its parent: the others must stay as they were."""
    dt = np.dtype(code)
    vals = fill_values(rng, shape, dt, density, scale=1.0).astype(dt)
    if shape == () and layout in ("strided", "broadcast"):
        layout = "c"  # (a 0-d array has no element to skip or repeat)
    if layout == "strided":
        parent = np.full(tuple(2 * n + 1 for n in shape), 7.0, dt)
        p = parent[tuple(slice(1, None, 2) for _ in shape)]
        p[...] = vals
        return p, parent, None
    if layout == "byteswapped":
        p = vals.astype(dt.newbyteorder(">"))
        return p, p, None
    if layout == "broadcast":  # writable, with a zero stride: elements that overlap
        if not shape[0] > 1:
            return make_param(rng, shape, code, "c", density)
        p = np.lib.stride_tricks.as_strided(vals, shape, (0,) + vals.strides[1:])
        return p, vals, (ValueError, "has overlapping elements")
    if layout == "readonly":
        vals.flags.writeable = False
        return vals, vals, (ValueError, "is read-only")
    if layout == "list":
        return vals.tolist(), None, (TypeError, "must be a NumPy array of float32 or float64")
    if layout == "int":
        p = np.round(vals * 3).astype(np.int32) if np.isfinite(vals).all() else np.zeros(shape, int)
        return p, p, (TypeError, "must be a NumPy array of float32 or float64")
    p = present(vals, code, layout)
    return p, p, None


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(), (0,), (1,), (7,), (3, 5), (40_000,), (2, 3, 4)]),
    st.sampled_from(["f8", "f4"]),
    st.sampled_from(PARAM_LAYOUTS),
    st.sampled_from(FLOAT_CODES + ["f8", "f4", "bad_shape", "bool"]),
    st.sampled_from(LAYOUTS),
    densities,
    st.sampled_from([0.0, 0.9]),
    st.sampled_from([(0.0, False), (0.3, False), (0.0, True)]),
    st.sampled_from([0.0, 0.01, 1e30]),
    st.booleans(),
    st.sampled_from([0.1, 0.0, 1e-310, 1e30, float("nan"), -1.0]),
    st.sampled_from(["SGD", "sgd_step"]),
    st.sampled_from([None, 1, 2, 10**6]),
)
def test_sgd_adversarial(seed, shape, code, playout, gcode, glayout, density, mom, damp_nest,
                         wd, maximize, lr, api, nt):  # fmt: skip
    """SGD.step and sgd_step: torch.optim.SGD's rule (fastloss.reference.sgd_update) step
    after step in the parameter's own memory, or a ValueError/TypeError naming the
    argument that leaves every array as it was."""
    rng = np.random.default_rng(seed)
    damp, nest = damp_nest
    p, parent, perr = make_param(rng, shape, code, playout, density)
    pname = "params[0]" if api == "SGD" else "param"
    if gcode == "bad_shape":
        g, gerr = np.zeros(tuple(shape) + (2,)), (ValueError, r"has shape .* but .* has shape")
    elif gcode == "bool":
        g, gerr = np.zeros(shape, bool), (TypeError, "must hold real numbers")
    else:
        g, gerr = float_operand(rng, shape, gcode, glayout, density), None
    if isinstance(g, list) and np.shape(g) != tuple(shape):
        g = np.asarray(g, np.float64).reshape(shape)  # (a list of nothing has no shape)
    opts = dict(lr=lr, momentum=mom, dampening=damp, nesterov=nest, weight_decay=wd,
                maximize=maximize)  # fmt: skip
    err = None
    if not (math.isfinite(lr) and lr >= 0):
        err = ValueError, rf"lr must be a finite number >= 0.0; got {lr!r}"
    elif nest and mom == 0:
        err = ValueError, "nesterov=True requires momentum > 0"
    elif perr:
        err = perr[0], re.escape(pname) + " " + perr[1]
    elif gerr:
        err = gerr
    snap_g = Snapshot(g)
    before = None if parent is None else np.array(parent, copy=True)
    if err:
        with pytest.raises(err[0], match=err[1]):
            if api == "SGD":
                SGD([p], **opts, n_threads=nt).step([g])
            else:
                sgd_step(p, g, **opts, n_threads=nt)
        snap_g.check()
        if parent is not None:
            assert np.array_equal(before, np.asarray(parent), equal_nan=True)
        return
    ndt = p.dtype.newbyteorder("=")
    gd = np.asarray(api_float(g)).astype(ndt)  # the gradient in the param's dtype, as the kernel
    opt = SGD([p], **opts, n_threads=nt) if api == "SGD" else None
    vel = None
    rtol = RTOL[ndt] * 10
    for _ in range(3):  # each step against the rule applied to the state before it
        pb = np.array(p, dtype=ndt)
        bb = opt.state[0]["momentum_buffer"] if opt else vel
        bb = None if bb is None else np.array(bb, dtype=ndt)
        if opt:
            opt.step([g])
            buf = opt.state[0]["momentum_buffer"]
        else:
            vel = buf = sgd_step(p, g, velocity=vel, **opts, n_threads=nt)
        snap_g.check()
        with np.errstate(all="ignore"):  # the reference in the param's dtype (API.md)
            want_p, want_b = fl.reference.sgd_update(pb, gd, bb, **opts)
            a = lambda z: 0.0 if z is None else np.abs(z.astype(np.float64))  # noqa: E731
            dmag = a(gd) + wd * a(pb) + mom * a(bb)
            pscale = a(pb) + abs(lr) * dmag * (1 + mom) * 2
            # an infinite term: g + wd p is NaN in two steps, +-inf fused (fma)
            lo = ~np.isfinite(np.broadcast_to(pscale, np.shape(want_p)))
        assert_matches(p, want_p, rtol=rtol, floor=rtol * pscale, what="param", loose=lo)
        if mom:
            assert isinstance(buf, np.ndarray) and buf.shape == tuple(shape)
            assert_matches(buf, want_b, rtol=rtol, floor=rtol * dmag * 2, what="buffer",
                           loose=lo)  # fmt: skip
    if playout == "strided":  # the elements between the param's stayed as they were
        inner = tuple(slice(1, None, 2) for _ in shape)
        keep = np.ones(parent.shape, bool)
        keep[inner] = False
        assert np.array_equal(before[keep], parent[keep])


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(), (0,), (4,), (3, 2)]),
    st.sampled_from(FLOAT_CODES),
    layouts,
    densities,
    st.sampled_from([None, 1e-2, 0.0, 0.9, float("nan"), "0.9", -0.5]),
    st.sampled_from([None, "keep", "wrong_shape", "list", "f4"]),
)
def test_cs231n_optim_adversarial(seed, shape, code, layout, density, mu, vel):
    """CS231n's optim.sgd (in place, w must be a writable float array) and sgd_momentum
    (w never modified): the rule as written in the assignment, or a clear error."""
    from fastloss.optim import sgd, sgd_momentum

    rng = np.random.default_rng(seed)
    w = float_operand(rng, shape, code, layout, density)
    dw = float_operand(rng, shape, "f8", "c", density)
    config = {"learning_rate": 1e-2}
    if mu is not None:
        config["momentum"] = mu
    if vel == "keep":
        config["velocity"] = np.zeros(np.shape(w))
    elif vel == "wrong_shape":
        config["velocity"] = np.zeros(np.shape(w) + (2,))
    elif vel == "list":
        config["velocity"] = np.zeros(np.shape(w)).tolist()
    elif vel == "f4":
        config["velocity"] = np.zeros(np.shape(w), np.float32)
    snap = Snapshot(w, dw)
    wa = api_float(w).astype(np.float64)
    if isinstance(mu, str):
        with pytest.raises(TypeError, match=r"config\['momentum'\] must be a real number"):
            sgd_momentum(w, dw, dict(config))
        return snap.check()
    if mu is not None and not (math.isfinite(mu) and mu >= 0):
        with pytest.raises(ValueError, match=rf"config\['momentum'\] must be a finite number"):
            sgd_momentum(w, dw, dict(config))
        return snap.check()
    if vel == "wrong_shape":
        with pytest.raises(ValueError, match=r"config\['velocity'\] has shape"):
            sgd_momentum(w, dw, dict(config))
        return snap.check()
    v0 = np.array(config.get("velocity", np.zeros(np.shape(w))), np.float64)  # (updated in place)
    next_w, cfg = sgd_momentum(w, dw, dict(config))
    snap.check()
    m = 0.9 if mu is None else mu
    f32 = next_w.dtype == np.float32
    with np.errstate(all="ignore"):  # dw in w's dtype, as the kernel takes it (a float64
        dwc = dw.astype(next_w.dtype).astype(np.float64)  # 1e308 is inf for a float32 w)
        v1 = m * v0 - 1e-2 * dwc
        want = wa + v1
    rtol = 1e-5 if f32 else 1e-12
    with np.errstate(all="ignore"):
        floor = rtol * (np.abs(wa) + np.abs(v0) + 1e-2 * np.abs(dwc))
    assert_matches(next_w, want, rtol=rtol, floor=floor, f32=f32, what="next_w")
    # sgd: in place, so only a writable float32/float64 array is a w
    if not (isinstance(w, np.ndarray) and w.dtype.kind == "f" and w.dtype.itemsize in (4, 8)):
        with pytest.raises(TypeError, match="w must be a NumPy array of float32 or float64"):
            sgd(w, dw)
        return snap.check()
    if not w.flags.writeable or any(st_ == 0 for st_ in w.strides if w.size > 1):
        with pytest.raises(ValueError, match="w "):
            sgd(w, dw)
        return snap.check()
    w2, _ = sgd(w, dw)
    assert w2 is w
    with np.errstate(all="ignore"):
        dws = dw.astype(w.dtype).astype(np.float64)  # dw in w's dtype, as above
        want = wa - 1e-2 * dws
        floor = rtol * (np.abs(wa) + 1e-2 * np.abs(dws))
    assert_matches(w, want, rtol=rtol, floor=floor, f32=w.dtype.itemsize == 4, what="sgd")


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([(3,), 4, (2, 3), (), (0,), (-1,), (2.5,), "ab", None]),
    st.sampled_from(["finite", "nan", "inf", "tuple", "array1", "array2", "str", "raise"]),
    st.sampled_from([1, 3, 0, -1, 2.0, True]),
    st.sampled_from([1e-4, 0.0, float("nan"), -1.0]),
    st.sampled_from([None, 0, "seed"]),
)
def test_random_search_adversarial(shape, kind, num_tries, scale, seed):
    """random_search: the best of num_tries losses (a NaN never beats a number), or a
    ValueError/TypeError naming the argument; loss_fn's own error propagates."""
    calls = []
    rng = np.random.default_rng(0)

    def loss_fn(W):
        calls.append(W.copy())
        r = float(rng.random())
        return {"finite": r, "nan": float("nan") if len(calls) % 2 else r, "inf": float("inf"),
                "tuple": (r, W), "array1": np.array([r]), "array2": np.array([r, r]),
                "str": "0.5"}.get(kind) if kind != "raise" else 1 / 0  # fmt: skip

    def call():
        return fl.random_search(loss_fn, shape, num_tries=num_tries, scale=scale, seed=seed)

    dims = (shape,) if isinstance(shape, int) else shape
    if not isinstance(dims, tuple) or any(not isinstance(d, int) for d in dims):
        with pytest.raises(TypeError, match="shape must be"):
            call()
        return
    if any(d < 0 for d in dims):
        with pytest.raises(ValueError, match=r"shape must be an int >= 0; got -1"):
            call()
        return
    if isinstance(num_tries, (bool, float)):
        with pytest.raises(TypeError, match="num_tries must be an int"):
            call()
        return
    if num_tries < 1:
        with pytest.raises(ValueError, match=rf"num_tries must be an int >= 1; got {num_tries}"):
            call()
        return
    if not (scale >= 0 and math.isfinite(scale)):
        with pytest.raises(ValueError, match="scale must be a finite number >= 0.0"):
            call()
        return
    if isinstance(seed, str):
        with pytest.raises((TypeError, ValueError)):
            call()
        return
    if kind == "raise":
        with pytest.raises(ZeroDivisionError):
            call()
        return
    if kind in ("array2", "str"):
        with pytest.raises(TypeError, match="loss_fn must return a scalar loss"):
            call()
        return
    W, best = call()
    assert len(calls) == num_tries and W.shape == dims and W.dtype == np.float64
    assert any(np.array_equal(W, c) for c in calls)
    if kind == "inf":
        assert best == math.inf
    elif kind == "nan" and num_tries > 1:
        assert not math.isnan(best)


# ---------------------------------------------------------------- gradient checks


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(), (0,), (1,), (3,), (2, 3)]),
    st.sampled_from(["f8", "f4", ">f8", "list", "i4"]),
    st.sampled_from(["c", "f", "strided", "negative", "readonly", "unaligned", "broadcast_row"]),
    densities,
    st.sampled_from([1e-5, 1e-3, 0.0, float("nan"), 1e-300, "1e-5"]),
    st.booleans(),
)
def test_numerical_gradient_adversarial(seed, shape, code, layout, density, h, raises):
    """numerical_gradient perturbs x in place and puts every entry back bit for bit (NaN
    payloads and -0.0 included), even when f raises; bad x and h are named."""
    from fastloss.gradcheck import numerical_gradient

    rng = np.random.default_rng(seed)
    x = float_operand(rng, shape, code, layout, density)
    calls = []

    def f(z):
        calls.append(1)
        if raises and len(calls) == 2:
            raise RuntimeError("f failed")
        return float(np.sum(np.asarray(z, np.float64) ** 2))

    snap = Snapshot(x)
    err = None
    if not (isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.dtype.itemsize in (4, 8)):
        err = TypeError, "x must be a NumPy array of float32 or float64"
    elif not x.flags.writeable:
        err = ValueError, "x is read-only"
    elif isinstance(h, str):
        err = TypeError, r"h must be a real number; got str '1e-5'"
    elif not (h > 0 and math.isfinite(h)):
        err = ValueError, "h must be a finite number"
    if err:
        with pytest.raises(err[0], match=err[1]):
            numerical_gradient(f, x, h=h)
        return snap.check()
    try:
        g = numerical_gradient(f, x, h=h)
    except RuntimeError:
        assert raises and len(calls) == 2
        return snap.check()
    except ValueError as e:  # h too small for an entry: named, with the entry
        assert re.search(r"h=.* is too small for x\[", str(e)), str(e)
        return snap.check()
    snap.check()
    assert g.shape == x.shape and g.dtype == x.dtype
    assert len(calls) == 2 * x.size or (raises and x.size)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["hinge", "softmax", "svm", "bogus"]),
    st.sampled_from(FLOAT_CODES),
    st.sampled_from(LAYOUTS),
    st.sampled_from([0.0, 0.0, 0.02]),
    st.sampled_from([1, 10, 2**40, 0, -1, 2.5]),
    st.sampled_from([None, 0, 2**63, "seed"]),
)
def test_gradient_checks_adversarial(seed, loss, code, layout, density, num_checks, gseed):
    """check_gradient never perturbs the caller's x; grad_check_sparse names bad
    arguments; both give a relative error (NaN when the gradient is)."""
    rng = np.random.default_rng(seed)
    x = float_operand(rng, (5, 4), code, layout, density)
    y = np.array([0, 3, 1, 2, 0])
    snap = Snapshot(x, y)
    kw = dict(num_checks=num_checks, seed=gseed, verbose=False)
    if loss == "bogus":
        with pytest.raises(ValueError, match="loss must be one of .*got 'bogus'"):
            fl.check_gradient(loss, x, y, **kw)
        return snap.check()
    if isinstance(num_checks, float):
        with pytest.raises(TypeError, match="num_checks must be an int"):
            fl.check_gradient(loss, x, y, **kw)
        return snap.check()
    if num_checks < 1:
        with pytest.raises(ValueError, match=rf"num_checks must be an int >= 1; got {num_checks}"):
            fl.check_gradient(loss, x, y, **kw)
        return snap.check()
    if isinstance(gseed, str):
        with pytest.raises((TypeError, ValueError)):
            fl.check_gradient(loss, x, y, **kw)
        return snap.check()
    try:
        err = fl.check_gradient(loss, x, y, **kw)
    except ValueError as e:  # h too small for a huge entry: named, with the entry
        assert re.search(r"h=1e-05 is too small for x\[\d+, \d+\] = ", str(e)), str(e)
        return snap.check()
    snap.check()
    assert isinstance(err, float) and (math.isnan(err) or 0.0 <= err <= 1.0)
    xa = np.array(api_float(x))
    # moderate scores: with |x| up to 12 a softmax gradient entry can be ~1e-11, below what
    # centred differences with h = 1e-5 resolve (seed=2599 gave 3.5e-4 from rounding alone)
    if np.isfinite(xa).all() and np.abs(xa).max() < 4 and xa.dtype == np.float64:
        assert err < 1e-4 or loss in ("hinge", "svm")  # a kink of the hinge may be near


# ---------------------------------------------------------------- every public name


COVERED = {
    "multiclass_hinge", "softmax_cross_entropy", "svm_loss", "softmax_loss", "softmax",
    "log_softmax", "features.hog", "features.hog_batch", "features.hog_feature",
    "features.color_histogram_hsv", "features.extract_features",
    "linear_loss", "svm_loss_naive", "svm_loss_vectorized", "softmax_loss_naive",
    "softmax_loss_vectorized", "linear.linear_loss", "linear.svm_loss_naive",
    "linear.svm_loss_vectorized", "linear.softmax_loss_naive", "linear.softmax_loss_vectorized",
    "SGD", "sgd_step", "optim.SGD", "optim.sgd_step", "optim.sgd", "optim.sgd_momentum",
    "numerical_gradient", "gradcheck.numerical_gradient", "check_gradient",
    "gradcheck.check_gradient", "grad_check_sparse", "gradcheck.grad_check_sparse",
    "random_search", "optim.random_search",
    "classifiers.LinearSVM", "classifiers.Softmax",  # test_classifier_inputs, check_estimator
    "features.BagOfWords",  # test_bag_of_words_inputs (and tests/test_bow.py)
    # not array functions: no adversarial arrays to give them
    "build_info", "show_config", "__version__",
}  # fmt: skip


def test_bag_of_words_inputs():
    """BagOfWords.transform on adversarial layouts and dtypes: views, Fortran order,
    read-only, big-endian, other integer and float types and lists give the features of
    the contiguous array of the same values (float32 input: float32 features); inputs are
    never modified; non-finite pixels, too-small images, a wrong channel count and
    unfitted models are clear errors."""
    pytest.importorskip("sklearn")
    from fastloss.features import BagOfWords

    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (6, 9, 10, 3)).astype(np.float64)
    with pytest.raises(Exception, match="(?i)fit"):
        BagOfWords(n_words=4, patch_size=3).transform(imgs)
    bow = BagOfWords(n_words=4, patch_size=3, random_state=0).fit(imgs)
    want = bow.transform(imgs)
    want32 = bow.transform(imgs.astype(np.float32))
    big = np.zeros((6, 9, 21, 3))
    big[:, :, ::2][:, :, :10] = imgs
    ro = imgs.copy()
    ro.flags.writeable = False
    cases = [np.asfortranarray(imgs), big[:, :, ::2][:, :, :10], ro, imgs.astype(">f8"),
             imgs.astype(np.int16), imgs.astype(np.uint8), imgs.tolist(),
             imgs[::-1][::-1]]
    for x in cases:
        keep = np.array(x, copy=True)
        got = bow.transform(x)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(x), keep)
    np.testing.assert_allclose(bow.transform(imgs.astype(np.float32)), want32, rtol=0, atol=0)
    np.testing.assert_allclose(want32, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    for bad in (np.nan, np.inf, -np.inf):
        xb = imgs.copy()
        xb[2, 4, 5, 1] = bad
        with pytest.raises(ValueError, match="(?i)nan|inf|finite"):
            bow.transform(xb)
    with pytest.raises(ValueError):
        bow.transform(imgs[:, :2, :2])  # smaller than a patch
    with pytest.raises(ValueError):
        bow.transform(imgs[..., 0])  # grayscale images for a colour model
    with pytest.raises((TypeError, ValueError)):
        bow.transform(imgs.astype(np.complex128))


@pytest.mark.parametrize("name", ["LinearSVM", "Softmax"])
def test_classifier_inputs(name):
    """The estimators on adversarial arrays (scikit-learn's check_estimator, run in
    tests/test_classifiers.py, covers the rest): NaN/inf rejected naming the problem,
    read-only, strided and Fortran inputs give the contiguous input's model, inputs are
    not modified."""
    from fastloss import classifiers

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = np.repeat(["a", "b", "c"], 20)
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 2] = bad
        with pytest.raises(ValueError, match="(?i)nan|inf"):
            getattr(classifiers, name)(num_iters=5, random_state=0).fit(Xb, y)
    ref = getattr(classifiers, name)(num_iters=20, random_state=0).fit(X, y)
    ro = X.copy()
    ro.flags.writeable = False
    big = np.zeros((60, 11))
    big[:, ::2][:, :5] = X
    for Xv in (ro, np.asfortranarray(X), big[:, ::2][:, :5]):
        keep = np.array(Xv, copy=True)
        m = getattr(classifiers, name)(num_iters=20, random_state=0).fit(Xv, y)
        np.testing.assert_allclose(m.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(Xv, keep)
    assert list(ref.predict(X[:3])) == list(m.predict(X[:3]))


def test_every_public_function_is_covered():
    """A public function added to fastloss needs its adversarial test here."""
    names = set(fl.__all__) | {f"features.{n}" for n in F.__all__}
    for sub in ("optim", "gradcheck", "linear", "classifiers"):
        mod = getattr(fl, sub, None)
        if mod is not None and hasattr(mod, "__all__"):
            names |= {f"{sub}.{n}" for n in mod.__all__}
    missing = sorted(names - COVERED)
    assert not missing, f"public names without adversarial tests: {missing}"


# ---------------------------------------------------------------- regressions
# The bugs these tests found, each with the input that showed it.


def test_regression_huge_n_threads():
    """n_threads=200_000 on a 100_000 x 10 input crashed the process (OpenMP could not
    create the threads); above 2**31 - 1 it raised pybind11's TypeError."""
    rng = np.random.default_rng(0)
    s, y = rng.normal(size=(100_000, 10)), rng.integers(0, 10, 100_000)
    want = as_bits(fl.multiclass_hinge(s, y, n_threads=1))
    for nt in (200_000, 2**31 - 1, 2**40):
        assert as_bits(fl.multiclass_hinge(s, y, n_threads=nt)) == want
    W = rng.normal(size=(8, 10))
    assert as_bits(fl.linear_loss(W, s[:, :8], y, n_threads=200_000)) == as_bits(
        fl.linear_loss(W, s[:, :8], y, n_threads=1))  # fmt: skip


def as_bits(out):
    return [np.asarray(o).tobytes() for o in (out if isinstance(out, tuple) else (out,))]


def test_regression_misaligned_views():
    """Views into a byte buffer at an odd offset were passed to the kernels as they were
    (ascontiguousarray keeps them), a misaligned read (undefined behaviour, UBSan)."""
    rng = np.random.default_rng(1)
    s, y = rng.normal(size=(40, 5)), rng.integers(0, 5, 40)
    sw, q = rng.random(40), fl.softmax(rng.normal(size=(40, 5)))
    u = lambda a: present(a, a.dtype.str, "unaligned")  # noqa: E731
    assert not u(s).flags.aligned
    assert as_bits(fl.softmax_cross_entropy(u(s), u(y), sample_weight=u(sw))) == as_bits(
        fl.softmax_cross_entropy(s, y, sample_weight=sw))  # fmt: skip
    assert as_bits(fl.softmax_cross_entropy(u(s), u(q))) == as_bits(fl.softmax_cross_entropy(s, q))
    assert as_bits(fl.softmax(u(s))) == as_bits(fl.softmax(s))
    W = rng.normal(size=(5, 3))
    idx = np.array([3, 1, 1, 0])
    assert as_bits(fl.linear_loss(u(W), u(s), y % 3, b=u(np.ones(3)), indices=u(idx))) == \
        as_bits(fl.linear_loss(W, s, y % 3, b=np.ones(3), indices=idx))  # fmt: skip
    img = rng.random((16, 16))
    assert as_bits(F.hog(u(img), pixels_per_cell=(4, 4))) == as_bits(
        F.hog(img, pixels_per_cell=(4, 4)))  # fmt: skip


@pytest.mark.parametrize("scale", [1e-320, 1e-45, 1e300])
def test_regression_extreme_weights_mean(scale):
    """reduction='mean' with sample_weight=[5e-324, 5e-324] gave an infinite gradient
    (1 / sum(w) overflowed) and with weights near 1e308 a NaN loss (sum(w) = inf)."""
    s, y = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]]), np.array([0, 1])
    for fn in (fl.multiclass_hinge, fl.softmax_cross_entropy):
        for kw in ({"sample_weight": [scale, 2 * scale]}, {"class_weight": [scale] * 3}):
            want = fn(s, y, **{k: np.array(v) / scale for k, v in kw.items()})
            got = fn(s, y, **kw)
            np.testing.assert_allclose(got[0], want[0], rtol=1e-15)
            np.testing.assert_allclose(got[1], want[1], rtol=1e-15)
    W, X = np.ones((3, 3)), s
    np.testing.assert_allclose(fl.linear_loss(W, X, y, sample_weight=[scale, scale])[1],
                               fl.linear_loss(W, X, y)[1], rtol=1e-15)  # fmt: skip


def test_regression_empty_inputs():
    """softmax_cross_entropy(np.zeros((0, 3)), [], reduction='sum') raised TypeError (the
    [] became a float64 array); softmax of a 1-D empty array raised NumPy's reshape
    error; soft targets with C = 0 gave a NaN loss (0 * log 0) instead of the empty sum 0."""
    l, g = fl.softmax_cross_entropy(np.zeros((0, 3)), [], reduction="sum")
    assert l == 0.0 and g.shape == (0, 3)
    for x, ax in ((np.zeros(0), -1), (np.zeros((2, 0, 3)), 1), (np.zeros((2, 3, 0)), -1)):
        assert fl.softmax(x, axis=ax).shape == x.shape == fl.log_softmax(x, axis=ax).shape
    l, g = fl.softmax_cross_entropy(np.zeros((3, 0)), np.zeros((3, 0)), reduction="none")
    np.testing.assert_array_equal(l, np.zeros(3))
    assert g.shape == (3, 0)


def test_regression_nonfinite_extremes():
    """Crammer-Singer with C >= 17 took the largest non-NaN score where a NaN one is the
    max (hmax of a -1/0 mask); label_smoothing=1 with s_y = -inf gave NaN (0 * -inf), not
    +inf; its other gradient entries were 0 beside a NaN loss; linear_loss's l2 penalty of
    an infinite weight was NaN (0 * |w| of the absent l1 term), its l1 subgradient of a NaN
    weight 0, not NaN."""
    for C in (3, 11, 16, 17, 40, 1000):
        s = np.tile(np.linspace(0, 1, C), (9, 1))
        s[:, C // 2] = np.nan
        y = np.zeros(9, np.int64)
        for dt in (np.float64, np.float32):
            loss = fl.multiclass_hinge(s.astype(dt), y, variant="crammer_singer", grad=False,
                                       reduction="none")  # fmt: skip
            assert np.isnan(loss).all(), C
    s = np.array([[-np.inf, 0.0, 1.0]])
    assert fl.softmax_cross_entropy(s, [0], label_smoothing=1.0, grad=False) == np.inf
    _, g = fl.multiclass_hinge(np.zeros((2, 3)), [0, 1], variant="crammer_singer",
                               sample_weight=[0.0, 0.0])  # fmt: skip
    assert np.isnan(g).all()
    W = np.array([[np.inf, 1.0], [np.nan, -1.0]])
    X, y = np.zeros((0, 2)), np.zeros(0, np.int64)
    assert fl.linear_loss(W[:1], X[:, :1], y, reg=0.5, penalty="l2", reduction="sum")[0] == np.inf
    dW = fl.linear_loss(W, X, y, reg=0.5, penalty="l1", reduction="sum")[1]
    np.testing.assert_array_equal(dW, [[0.5, 0.5], [np.nan, -0.5]])


def test_regression_feature_int_bounds():
    """orientations, cell and block sizes and nbin above 2**31 - 1 reached the bindings'
    C ints: pybind11's TypeError, or 'out must be a writable (1, -2147483648) array'."""
    with pytest.raises(ValueError, match=r"orientations must be a positive int.*got 2147483648"):
        F.hog(np.zeros((24, 24)), orientations=2**31, cells_per_block=(1, 1))
    with pytest.raises(ValueError, match=r"nbin must be a positive int.*got 2147483648"):
        F.color_histogram_hsv(np.zeros((2, 2, 3)), nbin=2**31)


def test_regression_reference_squared_hinge_at_inf():
    """The reference's squared-hinge gradient (m > 0) * 2m was 0 * -inf = NaN for a term
    whose margin is -inf: such a term does not count (API.md)."""
    s = np.array([[np.inf, 0.0, 1.0]])
    _, d = R.multiclass_hinge(s, [0], squared=True)
    np.testing.assert_array_equal(d, [[0.0, 0.0, 0.0]])
    _, d = fl.multiclass_hinge(s, [0], squared=True)
    np.testing.assert_array_equal(d, [[0.0, 0.0, 0.0]])


@pytest.mark.parametrize("C", [2, 10, 40])  # the lanes (C <= 16) and the long-row forms
@pytest.mark.parametrize("dt,big,gap", [(np.float64, 1e200, 600.0), (np.float32, 1e20, 60.0)])
def test_regression_softmax_gradient_huge_weights(C, dt, big, gap):
    """sample_weight * class_weight beyond the dtype's range: the gradient is
    (A p - a) * w as NumPy orders it, finite where p is small (it was gs * A * p - gs * a:
    inf * p - inf = NaN at the label, inf elsewhere)."""
    s = np.full((2, C), -gap, dt)
    s[0, 0] = s[1, 1] = 0.0
    y = np.array([0, 1])
    sw = np.full(2, big, dt)
    cw = np.full(C, big, dt)
    for target in (y, np.eye(C, dtype=dt)[y]):  # hard labels, one-hot soft targets
        _, g = fl.softmax_cross_entropy(s, target, sample_weight=sw, class_weight=cw,
                                        reduction="none")
        with quiet():  # the reference in the same dtype
            _, want = R.softmax_cross_entropy(s, target, sample_weight=sw, class_weight=cw,
                                              reduction="none")
        assert g.dtype == dt and np.isfinite(want).all()  # e.g. 2.6e139 for p = e^-600
        assert want[0, 0] == 0 and want[0, 1] > 0
        assert_matches(g, want, rtol=1e-12 if dt == np.float64 else 1e-5, what="gradient")
