"""Optimization: fused in-place SGD with PyTorch's semantics, the CS231n ``optim.py``
drop-ins, and the lecture's random-search baseline.

Every update runs as one C++ pass per parameter that reads the parameter, its gradient
and its momentum buffer once and writes the parameter and the buffer once (threaded above
a size threshold).

The update rule is ``torch.optim.SGD``'s, as PyTorch documents it::

    d = -g if maximize else g
    if weight_decay != 0:  d = d + weight_decay * p
    if momentum != 0:
        b = d                                   on the first step (no buffer yet)
        b = momentum * b + (1 - dampening) * d  afterwards
        d = d + momentum * b if nesterov else b
    p = p - lr * d

Arrays and dtypes: parameters (and momentum buffers given to ``sgd_step``) must be NumPy
arrays of float32 or float64 that can be written; they are updated in place, always in
their own memory. A parameter whose memory is not one contiguous block (a strided view,
misaligned or byte-swapped data) is updated through a contiguous copy whose result is
copied back into it before the call returns. The update computes in the parameter's
dtype: a gradient of another real dtype (float64 for a float32 parameter, integers) is
converted to it first, as PyTorch requires ``param.grad`` to have the parameter's dtype.
A gradient must have exactly the parameter's shape (no broadcasting).

Threads: the in-place updates (``SGD.step``, ``sgd_step``, ``sgd``, ``sgd_momentum``) hold
one process-wide lock, so concurrent calls on the same parameters are applied one whole
step after the other, never interleaved (the kernel releases the GIL, and two updates of
one array at once would lose steps). Each update is threaded inside already. ``os.fork()``
waits for the step in progress to finish, and the child starts with a free lock.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from typing import Any, Callable, Sequence

import numpy as np

from . import _core
from . import _validate as v
from ._typing import ArrayLike, FloatArray, NDArray

__all__ = ["SGD", "sgd_step", "sgd", "sgd_momentum", "random_search"]


# ---------------------------------------------------------------------------------------
# Arrays as the kernel's flat vectors

_UPDATE_LOCK = threading.RLock()


def _lock_before_fork():
    _UPDATE_LOCK.acquire()  # (a child never starts with a parameter half updated)


def _unlock_after_fork():
    _UPDATE_LOCK.release()


def _renew_lock_in_child():
    # The child has only the thread that forked: a lock held by any other thread of the
    # parent would never be released there.
    global _UPDATE_LOCK
    _UPDATE_LOCK = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_lock_before_fork, after_in_parent=_unlock_after_fork,
                        after_in_child=_renew_lock_in_child)


def _serialized(fn):
    """fn holds the update lock from its first read of a parameter, momentum buffer or
    velocity to its last write (copies written back included)."""

    @functools.wraps(fn)
    def locked(*args, **kwargs):
        with _UPDATE_LOCK:
            return fn(*args, **kwargs)

    return locked


def _order(a):
    """The order in which ``a`` is walked flat: its own when it is Fortran-contiguous
    only, else C."""
    return "F" if a.flags.f_contiguous and not a.flags.c_contiguous else "C"


def _no_overlap(a, name):
    if a.size > 1 and any(s == 0 and n > 1 for s, n in zip(a.strides, a.shape)):
        raise ValueError(
            f"{name} has overlapping elements (a broadcast view with a zero stride): "
            "it cannot be updated in place"
        )


def _target(a, order, dt, writebacks):
    """``a`` as a flat contiguous vector of dtype ``dt`` that the kernel may write: a view
    of a's own memory when possible, else a contiguous copy recorded in ``writebacks`` to be
    copied back into ``a`` after the kernel ran."""
    contiguous = a.flags.c_contiguous if order == "C" else a.flags.f_contiguous
    if contiguous and a.flags.aligned and a.dtype == dt:
        return a.ravel(order)
    flat = np.array(a, dtype=dt, order=order).ravel(order)
    writebacks.append((a, flat, order))
    return flat


class _Update:
    """One parameter's update, checked and laid out for the kernel before any kernel runs
    (so that a bad argument leaves every parameter untouched)."""

    __slots__ = ("param", "grad", "buf", "writebacks")

    def __init__(self, param, grad, buf, names):
        pname, gname, bname = names
        v.inplace_float_array(param, pname)
        _no_overlap(param, pname)
        dt = param.dtype.newbyteorder("=")
        order = _order(param)
        self.writebacks = []
        self.param = _target(param, order, dt, self.writebacks)
        g = v.float_array(grad, gname)
        v.same_shape(param, g, pname, gname)
        gf = np.ravel(g, order)
        if (
            gf.dtype != dt
            or not gf.flags.aligned
            or np.may_share_memory(gf, param)
            or (buf is not None and np.may_share_memory(gf, buf))
        ):
            gf = gf.astype(dt)  # a private copy: the kernel's inputs never alias its outputs
        self.grad = gf
        self.buf = None
        if buf is not None:
            v.inplace_float_array(buf, bname)
            if buf.dtype.newbyteorder("=") != dt:
                raise TypeError(
                    f"{bname} has dtype {buf.dtype} but {pname} has dtype {param.dtype}: "
                    "the momentum buffer must have the parameter's dtype"
                )
            v.same_shape(param, buf, pname, bname)
            _no_overlap(buf, bname)
            if np.may_share_memory(buf, param):
                raise ValueError(f"{bname} shares memory with {pname}")
            self.buf = _target(buf, order, dt, self.writebacks)

    def run(self, lr, momentum, grad_coef, weight_decay, nesterov, maximize, first, nt):
        _core.sgd_update(
            self.param,
            self.grad,
            self.buf,
            lr,
            momentum,
            grad_coef,
            weight_decay,
            nesterov,
            maximize,
            first,
            nt,
        )
        for a, flat, order in self.writebacks:
            np.copyto(a, flat.reshape(a.shape, order=order))


def _new_buffer(param):
    """A momentum buffer for ``param`` (uninitialised: the first step writes it)."""
    return np.empty(param.shape, param.dtype.newbyteorder("="), order=_order(param))


def _options(lr, momentum, dampening, nesterov, weight_decay, maximize):
    lr = v.real(lr, "lr", 0.0)
    momentum = v.real(momentum, "momentum", 0.0)
    dampening = v.real(dampening, "dampening")
    weight_decay = v.real(weight_decay, "weight_decay", 0.0)
    nesterov = v.flag(nesterov, "nesterov")
    maximize = v.flag(maximize, "maximize")
    if nesterov and (momentum <= 0.0 or dampening != 0.0):
        raise ValueError(
            "nesterov=True requires momentum > 0 and dampening == 0; "
            f"got momentum={momentum!r}, dampening={dampening!r}"
        )
    return lr, momentum, dampening, nesterov, weight_decay, maximize


# ---------------------------------------------------------------------------------------
# PyTorch's SGD


def _param_list(params):
    if isinstance(params, np.ndarray):
        params = [params]
    elif isinstance(params, dict):
        raise TypeError("params must be an array or a sequence of arrays (no parameter groups)")
    else:
        try:
            params = list(params)
        except TypeError:
            raise TypeError(
                f"params must be a NumPy array or a sequence of them; got {type(params).__name__}"
            ) from None
    if not params:
        raise ValueError("params is empty: SGD needs at least one parameter array")
    for i, p in enumerate(params):
        if isinstance(p, dict):
            raise TypeError(f"params[{i}] is a dict: parameter groups are not supported")
        v.inplace_float_array(p, f"params[{i}]")
        _no_overlap(p, f"params[{i}]")
        for j in range(i):
            if p is params[j] or (np.may_share_memory(p, params[j]) and _shares(p, params[j])):
                raise ValueError(f"params[{i}] and params[{j}] share memory")
    return params


def _shares(a, b):
    try:
        return np.shares_memory(a, b, max_work=100_000)
    except np.exceptions.TooHardError:
        return True


class SGD:
    """Stochastic gradient descent with momentum, exactly as ``torch.optim.SGD``.

    Parameters
    ----------
    params : ndarray or sequence of ndarray
        float32/float64 arrays, updated in place by ``step``.
    lr : float
        Learning rate, >= 0.
    momentum : float, default 0.0
        Momentum factor, >= 0 (0: plain SGD, no buffer).
    dampening : float, default 0.0
        The buffer takes ``1 - dampening`` of each new gradient.
    nesterov : bool, default False
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    weight_decay : float, default 0.0
        L2 penalty added to the gradient (``weight_decay * p``), >= 0.
    maximize : bool, default False
        Ascend instead of descend (the gradient is negated first).
    n_threads : int, optional
        None or -1 for every core, else a positive int (the same bits for every count).

    Attributes
    ----------
    state : list of dict
        ``state[i]["momentum_buffer"]`` is parameter i's buffer (None before its first
        step and without momentum).

    Notes
    -----
    The hyperparameters are plain attributes (``opt.lr *= 0.95`` is a learning-rate
    schedule); they are checked again at every step. ``reset()`` forgets every buffer, so
    the next step is a first step again.
    """

    def __init__(
        self,
        params: FloatArray | Sequence[FloatArray],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
        *,
        n_threads: int | None = None,
    ) -> None:
        opts = _options(lr, momentum, dampening, nesterov, weight_decay, maximize)
        self.lr, self.momentum, self.dampening, self.nesterov = opts[:4]
        self.weight_decay, self.maximize = opts[4:]
        v.threads(n_threads)
        self.n_threads = n_threads
        self.params = _param_list(params)
        self.state = [{"momentum_buffer": None} for _ in self.params]

    @property
    def momentum_buffers(self) -> list[FloatArray | None]:
        """The momentum buffer of each parameter (None where there is none yet)."""
        return [s["momentum_buffer"] for s in self.state]

    def reset(self) -> None:
        """Forget the momentum buffers: the next step starts them anew (b = gradient)."""
        for s in self.state:
            s["momentum_buffer"] = None

    @_serialized
    def step(self, grads: NDArray[Any] | Sequence[ArrayLike | None]) -> None:
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : ndarray or sequence of (ndarray or None)
            One gradient per parameter, in order (a single array when there is one
            parameter); a None gradient leaves its parameter and buffer as they are, as
            in PyTorch. Every argument is checked before any parameter changes.
        """
        lr, mom, damp, nest, wd, maxi = _options(
            self.lr,
            self.momentum,
            self.dampening,
            self.nesterov,
            self.weight_decay,
            self.maximize,
        )
        nt = v.threads(self.n_threads)
        n = len(self.params)
        if isinstance(grads, np.ndarray) and n == 1:
            grads = [grads]
        elif isinstance(grads, np.ndarray) or not hasattr(grads, "__len__"):
            raise TypeError(
                f"grads must be a sequence of {n} gradients (one per parameter); "
                f"got {type(grads).__name__}"
            )
        if len(grads) != n:
            raise ValueError(f"grads has {len(grads)} gradients but there are {n} parameters")
        todo = []
        for i, (p, g, st) in enumerate(zip(self.params, grads, self.state)):
            if g is None:
                continue
            buf = st["momentum_buffer"] if mom != 0.0 else None
            first = mom != 0.0 and buf is None
            if first:
                buf = _new_buffer(p)
            names = (f"params[{i}]", f"grads[{i}]", f"state[{i}]['momentum_buffer']")
            todo.append((_Update(p, g, buf, names), st, buf, first))
        for u, st, buf, first in todo:
            u.run(lr, mom, 1.0 - damp, wd, nest, maxi, first, nt)
            if first:
                st["momentum_buffer"] = buf

    def __repr__(self) -> str:
        return (
            f"SGD({len(self.params)} parameter(s), lr={self.lr}, momentum={self.momentum}, "
            f"dampening={self.dampening}, nesterov={self.nesterov}, "
            f"weight_decay={self.weight_decay}, maximize={self.maximize})"
        )


@_serialized
def sgd_step(
    param: FloatArray,
    grad: ArrayLike,
    *,
    lr: float,
    velocity: FloatArray | None = None,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
    n_threads: int | None = None,
) -> FloatArray | None:
    """One fused in-place SGD update of ``param`` (``torch.optim.SGD``'s rule).

    Parameters
    ----------
    param : ndarray
        A writable float32/float64 array, updated in place.
    grad : array_like
        Its gradient, of ``param``'s shape.
    lr : float
        Learning rate.
    velocity : ndarray, optional
        The momentum buffer, updated in place; None means this is the first step, whose
        buffer is the (decayed) gradient itself.
    momentum, dampening, nesterov, weight_decay, maximize, n_threads
        As in ``SGD``.

    Returns
    -------
    ndarray or None
        The buffer to pass as ``velocity`` next time: ``velocity`` itself, or a new array
        when it was None (None without momentum).
    """
    lr, mom, damp, nest, wd, maxi = _options(
        lr, momentum, dampening, nesterov, weight_decay, maximize
    )
    nt = v.threads(n_threads)
    names = ("param", "grad", "velocity")
    if mom == 0.0:
        _Update(param, grad, None, names).run(lr, 0.0, 1.0, wd, False, maxi, False, nt)
        return velocity
    first = velocity is None
    if first:
        velocity = _new_buffer(v.inplace_float_array(param, "param"))
    _Update(param, grad, velocity, names).run(lr, mom, 1.0 - damp, wd, nest, maxi, first, nt)
    return velocity


# ---------------------------------------------------------------------------------------
# CS231n optim.py drop-ins


def _config(config, **defaults):
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None; got {type(config).__name__}")
    for k, d in defaults.items():
        config.setdefault(k, d)
    return config


@_serialized
def sgd(
    w: FloatArray, dw: ArrayLike, config: dict[str, Any] | None = None
) -> tuple[FloatArray, dict[str, Any]]:
    """CS231n's ``optim.sgd``: vanilla SGD, ``w -= learning_rate * dw`` in place.

    Parameters
    ----------
    w : ndarray
        Writable float32/float64 weights, updated in place.
    dw : array_like
        Their gradient.
    config : dict, optional
        ``learning_rate`` (default 1e-2).

    Returns
    -------
    w : ndarray
        The updated weights (the same array).
    config : dict
        The configuration, with its defaults filled in.
    """
    config = _config(config, learning_rate=1e-2)
    lr = v.real(config["learning_rate"], "config['learning_rate']", 0.0)
    _Update(w, dw, None, ("w", "dw", None)).run(lr, 0.0, 1.0, 0.0, False, False, False, 0)
    return w, config


@_serialized
def sgd_momentum(
    w: ArrayLike, dw: ArrayLike, config: dict[str, Any] | None = None
) -> tuple[FloatArray, dict[str, Any]]:
    """CS231n's ``optim.sgd_momentum``: ``v = momentum * v - learning_rate * dw``,
    ``next_w = w + v``.

    Parameters
    ----------
    w : array_like
        Weights (not modified, as in CS231n).
    dw : array_like
        Their gradient.
    config : dict, optional
        ``learning_rate`` (default 1e-2), ``momentum`` (default 0.9), ``velocity``
        (default zeros like w).

    Returns
    -------
    next_w : ndarray
        The updated weights, a new array of w's dtype (float64 for non-float input).
    config : dict
        ``config["velocity"]`` is updated in place when it is a writable array of
        next_w's dtype and shape, else replaced by a new one.

    Notes
    -----
    This is the CS231n (Sutskever) form of momentum, not PyTorch's: the velocity carries
    the learning rate. With a constant learning rate, ``v = -learning_rate * b``, where b
    is ``SGD``'s momentum buffer.
    """
    config = _config(config, learning_rate=1e-2, momentum=0.9)
    lr = v.real(config["learning_rate"], "config['learning_rate']", 0.0)
    mu = v.real(config["momentum"], "config['momentum']", 0.0)
    w = v.float_array(w, "w")
    next_w = np.array(w, dtype=w.dtype.newbyteorder("="), order="C")
    vel = config.get("velocity")
    if not (
        isinstance(vel, np.ndarray)
        and vel.dtype == next_w.dtype
        and vel.shape == next_w.shape
        and vel.flags.writeable
    ):
        if vel is None:
            vel = np.zeros_like(next_w)
        else:
            vel = np.array(v.float_array(vel, "config['velocity']"), dtype=next_w.dtype)
            v.same_shape(next_w, vel, "w", "config['velocity']")
    if mu == 0.0:  # no buffer pass in the kernel without momentum: v = -lr * dw
        g = v.float_array(dw, "dw")
        v.same_shape(next_w, g, "w", "dw")
        np.multiply(g, -lr, out=vel, casting="same_kind")
        next_w += vel
    else:  # v = mu * v + (-lr) * dw ; next_w = next_w - (-1) * v
        _Update(next_w, dw, vel, ("w", "dw", "config['velocity']")).run(
            -1.0, mu, -lr, 0.0, False, False, False, 0
        )
    config["velocity"] = vel
    return next_w, config


# ---------------------------------------------------------------------------------------
# The lecture's baseline


def _shape(shape):
    dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
    try:
        dims = tuple(dims)
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of ints; got {shape!r}") from None
    return tuple(v.integer(d, "shape", 0) for d in dims)


def random_search(
    loss_fn: Callable[[FloatArray], Any],
    shape: int | Sequence[int],
    *,
    num_tries: int = 1000,
    scale: float = 1e-4,
    seed: int | np.random.Generator | None = None,
) -> tuple[FloatArray, float]:
    """The lecture's baseline: try random weights ``scale * randn(*shape)``, keep the best.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(W)`` returns the loss (a float, or a tuple whose first element is the
        loss, such as fastloss's ``(loss, grad)``); it is called exactly ``num_tries``
        times.
    shape : int or tuple of int
        The shape of W.
    num_tries : int, default 1000
        Number of random weights tried.
    scale : float, default 1e-4
        Standard deviation of the weights.
    seed : None, int or numpy.random.Generator
        The random numbers.

    Returns
    -------
    best_W : ndarray
        The best weights, float64.
    best_loss : float
        Their loss. A NaN loss never counts as the best while a number does.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable; got {type(loss_fn).__name__}")
    dims = _shape(shape)
    num_tries = v.integer(num_tries, "num_tries", 1)
    scale = v.real(scale, "scale", 0.0)
    rng = np.random.default_rng(seed)
    best_W, best_loss, best_key = None, math.nan, math.inf
    for _ in range(num_tries):
        W = rng.standard_normal(dims) * scale
        loss = v.scalar_result(loss_fn(W), "loss_fn")
        key = loss if loss == loss else math.inf
        if best_W is None or key < best_key:
            best_W, best_loss, best_key = W, loss, key
    return best_W, best_loss  # type: ignore[return-value]
