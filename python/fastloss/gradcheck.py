"""Gradients, checked: the numerical gradient (slow, approximate, easy) against the
analytic one (fast, exact, error-prone), as in CS231n's ``gradient_check.py``.

``x`` is perturbed in place, one entry at a time, so that a function that reads ``x``
through a closure (CS231n's ``f = lambda w: loss(W, X, y)[0]`` with ``W is x``) sees the
change; each entry is put back bit for bit afterwards, even when ``f`` raises.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import _validate as v
from . import losses as _losses
from ._typing import ArrayLike, FloatArray

__all__ = ["numerical_gradient", "grad_check_sparse", "check_gradient"]

_TINY = np.finfo(np.float64).tiny


def _step(h):
    h = v.real(h, "h", 0.0)
    if h == 0.0:
        raise ValueError("h must be a finite number > 0; got 0")
    return h


def _centred(f, x, ix, h):
    """(f(x + h e_ix) - f(x - h e_ix)) / (2h), with x[ix] restored bitwise. The step is
    the one actually taken in x's dtype (x[ix] + h - (x[ix] - h) after rounding)."""
    old = x[ix]
    try:
        x[ix] = old + h
        xp = float(x[ix])
        fp = v.scalar_result(f(x), "f")
        x[ix] = old - h
        xm = float(x[ix])
        fm = v.scalar_result(f(x), "f")
    finally:
        x[ix] = old
    if xp == xm:
        raise ValueError(
            f"h={h!r} is too small for x{[int(i) for i in ix]} = {float(old)!r} in {x.dtype}: "
            "x + h and x - h round to the same number; use a larger h"
        )
    return (fp - fm) / (xp - xm)


def numerical_gradient(f: Callable[[FloatArray], Any], x: FloatArray, *, h: float = 1e-5) -> FloatArray:
    """The centred-difference gradient of ``f`` at ``x``, at every entry.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns a float (or a NumPy scalar).
    x : ndarray
        A writable float32/float64 array; it is perturbed in place, one entry at a time,
        and left exactly as it was found.
    h : float, default 1e-5
        The step.

    Returns
    -------
    ndarray
        ``(f(x + h e_k) - f(x - h e_k)) / 2h`` for every entry k, of x's shape and dtype.
        Costs ``2 * x.size`` calls of f.
    """
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}")
    x = v.inplace_float_array(x, "x")
    h = _step(h)
    grad = np.zeros(x.shape, x.dtype)
    for ix in np.ndindex(x.shape):
        grad[ix] = _centred(f, x, ix, h)
    return grad


def _relative_error(a, n):
    return abs(a - n) / max(abs(a) + abs(n), _TINY)


def grad_check_sparse(
    f: Callable[[FloatArray], Any],
    x: FloatArray,
    analytic_grad: ArrayLike,
    *,
    num_checks: int = 10,
    h: float = 1e-5,
    seed: int | np.random.Generator | None = None,
    verbose: bool = False,
) -> float:
    """Compare ``analytic_grad`` with the centred difference at random entries of ``x``.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns a float.
    x : ndarray
        A writable float32/float64 array, perturbed in place and restored.
    analytic_grad : array_like
        The gradient to check, of x's shape.
    num_checks : int, default 10
        Number of distinct entries (all of them when x has fewer).
    h : float, default 1e-5
        The step.
    seed : None, int or numpy.random.Generator
        Which entries.
    verbose : bool, default False
        Print each entry, as CS231n's version does.

    Returns
    -------
    float
        The largest relative error ``abs(a - n) / max(abs(a) + abs(n), tiny)`` over those
        entries (NaN if any is NaN). Rules of thumb (CS231n's notes): below 1e-7 the
        gradient is right; 1e-7 to 1e-4 is suspicious unless the loss has kinks (the
        hinge) near the point; above 1e-2 it is wrong.
    """
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}")
    x = v.inplace_float_array(x, "x")
    a = v.float_array(analytic_grad, "analytic_grad")
    v.same_shape(x, a, "x", "analytic_grad")
    num_checks = v.integer(num_checks, "num_checks", 1)
    h = _step(h)
    if x.size == 0:
        raise ValueError("x is empty: there is no entry to check")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        if not isinstance(seed, (np.random.Generator, np.random.SeedSequence,
                                 np.random.BitGenerator)):
            raise TypeError(f"seed must be None, a non-negative int or a NumPy Generator; "
                            f"got {v._show(seed)}")
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed}")
    rng = np.random.default_rng(seed)
    picks = rng.choice(x.size, size=min(num_checks, x.size), replace=False)
    errors = []
    for flat in picks:
        ix = np.unravel_index(int(flat), x.shape)
        n = _centred(f, x, ix, h)
        an = float(a[ix])
        err = _relative_error(an, n)
        errors.append(err)
        if verbose:
            print(f"numerical: {n:f} analytic: {an:f}, relative error: {err:e}")
    return float(np.max(errors))


# The losses check_gradient knows by name. Each is a fastloss function called as
# fn(x, *args, **kwargs) -> (loss, dx, ...) and differentiated in its first argument, so a
# model-level loss such as linear_loss(W, X, y) -> (loss, dW) is one more entry here.
_LOSSES = {
    "multiclass_hinge": _losses.multiclass_hinge,
    "hinge": _losses.multiclass_hinge,
    "svm": _losses.multiclass_hinge,
    "softmax_cross_entropy": _losses.softmax_cross_entropy,
    "softmax": _losses.softmax_cross_entropy,
    "cross_entropy": _losses.softmax_cross_entropy,
}


def _loss_function(loss):
    if callable(loss):
        return loss, getattr(loss, "__name__", "loss")
    fn = _LOSSES.get(loss) if isinstance(loss, str) else None
    if fn is None:
        raise ValueError(f"loss must be one of {', '.join(map(repr, _LOSSES))}; got {loss!r}")
    return fn, fn.__name__


def _verdict(err):
    if err < 1e-7:
        return "ok (below 1e-7)"
    if err < 1e-4:
        return "suspicious (1e-7 to 1e-4: fine only near a kink of the hinge)"
    return "WRONG (1e-4 or more)"


def check_gradient(
    loss: str | Callable[..., Any],
    x: ArrayLike,
    /,
    *args: Any,
    num_checks: int = 10,
    h: float = 1e-5,
    seed: int | np.random.Generator | None = None,
    verbose: bool = True,
    **kwargs: Any,
) -> float:
    """Check a loss's analytic gradient against centred differences.

    Parameters
    ----------
    loss : str or callable
        A name (``"multiclass_hinge"``/``"hinge"``/``"svm"``,
        ``"softmax_cross_entropy"``/``"softmax"``/``"cross_entropy"``) or any function
        called as ``loss(x, *args, **kwargs)`` that returns ``(loss, dx, ...)``, the
        gradient in its first argument.
    x : array_like
        The point (the scores); copied, so the caller's array is never perturbed
        (float32/float64 kept, other numbers as float64; use float64 for errors below
        1e-7).
    *args, **kwargs
        Passed to the function (``loss=`` among the keywords: ``check_gradient(
        fl.linear_loss, W, X, y, loss="hinge")``).
    num_checks, h, seed
        As in ``grad_check_sparse``.
    verbose : bool, default True
        Print a short report.

    Returns
    -------
    float
        The largest relative error over ``num_checks`` random entries.
    """
    fn, name = _loss_function(loss)
    x0 = v.float_array(x, "x")
    xc = np.array(x0, dtype=x0.dtype.newbyteorder("="))
    out = fn(xc, *args, **kwargs)
    if not (isinstance(out, tuple) and len(out) >= 2):
        raise TypeError(f"{name} must return (loss, gradient, ...); got {type(out).__name__}")
    analytic = np.array(out[1], dtype=np.float64)

    def f(z):
        return fn(z, *args, **kwargs)

    err = grad_check_sparse(f, xc, analytic, num_checks=num_checks, h=h, seed=seed)
    if verbose:
        k = min(v.integer(num_checks, "num_checks", 1), xc.size)
        print(
            f"check_gradient({name}): x {xc.shape} {xc.dtype}, {k} entries, h={h:g}\n"
            f"  largest relative error {err:.2e}: {_verdict(err)}"
        )
    return err
