"""fastloss.optim: SGD against PyTorch's documented rule, in-place semantics, state, the
CS231n drop-ins, errors, and random search against SGD."""

import itertools

import numpy as np
import pytest
from conftest import RTOL
from helpers import assert_close

import fastloss
from fastloss import SGD, random_search, reference, sgd_step
from fastloss.optim import sgd, sgd_momentum

# Every combination of options torch.optim.SGD accepts (Nesterov needs momentum > 0 and
# no dampening).
COMBOS = [
    dict(momentum=mu, dampening=damp, nesterov=nest, weight_decay=wd, maximize=mx)
    for mu, damp, nest, wd, mx in itertools.product(
        (0.0, 0.9), (0.0, 0.3), (False, True), (0.0, 0.01), (False, True)
    )
    if not (nest and (mu == 0.0 or damp != 0.0))
]
STEPS = 12


def _ids(c):
    return ",".join(f"{k}={v}" for k, v in c.items() if v)


def _grads(rng, shape, dtype, steps=STEPS):
    return [rng.standard_normal(shape).astype(dtype) for _ in range(steps)]


def written_out(p0, grads, lr, momentum, dampening, nesterov, weight_decay, maximize):
    """PyTorch's documented algorithm, element by element in plain Python floats (float64),
    step after step: the oracle does not share a line with the code under test."""
    p = [float(t) for t in np.ravel(p0)]
    b = None
    for g in grads:
        g = [float(t) for t in np.ravel(g)]
        new_b = []
        for i in range(len(p)):
            d = -g[i] if maximize else g[i]
            if weight_decay != 0:
                d = d + weight_decay * p[i]
            if momentum != 0:
                bi = d if b is None else momentum * b[i] + (1 - dampening) * d
                new_b.append(bi)
                d = d + momentum * bi if nesterov else bi
            p[i] = p[i] - lr * d
        b = new_b if momentum != 0 else None
    return np.array(p).reshape(np.shape(p0)), b


@pytest.mark.parametrize("opts", COMBOS, ids=_ids)
def test_sgd_equals_written_out_rule_float64(opts):
    rng = np.random.default_rng(1)
    p = rng.standard_normal((3, 5))
    p0 = p.copy()
    grads = _grads(rng, p.shape, np.float64)
    opt = SGD(p, lr=0.05, **opts)
    for g in grads:
        opt.step([g])
    want, want_b = written_out(p0, grads, 0.05, **opts)
    assert_close(p, want, RTOL[np.dtype(np.float64)], "param")
    if opts["momentum"]:
        assert_close(opt.state[0]["momentum_buffer"].ravel(), want_b, 1e-12, "buffer")
    else:
        assert opt.state[0]["momentum_buffer"] is None


@pytest.mark.parametrize("opts", COMBOS, ids=_ids)
def test_sgd_float32_and_sgd_step_equal_reference(opts):
    """float32 stays float32, within 1e-5 of the rule computed in float32 (the NumPy
    reference); sgd_step threads the buffer through calls the same way."""
    rng = np.random.default_rng(2)
    p = rng.standard_normal(1000).astype(np.float32)
    q = p.copy()
    ref, ref_b = p.copy(), None
    grads = _grads(rng, p.shape, np.float32)
    opt = SGD([p], lr=0.05, **opts)
    vel = None
    for g in grads:
        opt.step([g])
        vel = sgd_step(q, g, lr=0.05, velocity=vel, **opts)
        ref, ref_b = reference.sgd_update(ref, g, ref_b, lr=0.05, **opts)
    assert p.dtype == np.float32 and q.dtype == np.float32
    assert_close(p, ref, RTOL[np.dtype(np.float32)], "SGD")
    np.testing.assert_array_equal(q, p)
    if opts["momentum"]:
        assert vel.dtype == np.float32
        np.testing.assert_array_equal(vel, opt.state[0]["momentum_buffer"])
    else:
        assert vel is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd_equals_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    tol = RTOL[np.dtype(dtype)]
    for opts, fused in itertools.product(COMBOS, (False, True)):
        p = rng.standard_normal((4, 6)).astype(dtype)
        tp = torch.tensor(p.copy(), requires_grad=True)
        topt = torch.optim.SGD([tp], lr=0.05, fused=fused or None, **opts)
        opt = SGD([p], lr=0.05, **opts)
        for g in _grads(rng, p.shape, dtype):
            tp.grad = torch.from_numpy(g.copy())
            topt.step()
            opt.step([g])
        what = f"{opts} fused={fused}"
        assert_close(p, tp.detach().numpy(), tol, what)
        if opts["momentum"]:
            tb = topt.state[tp]["momentum_buffer"].numpy()
            assert_close(opt.state[0]["momentum_buffer"], tb, tol, what)


def test_first_step_and_nesterov_by_hand():
    p = np.array([1.0, -2.0])
    g = np.array([0.5, 0.25])
    b = sgd_step(p, g, lr=0.1, momentum=0.9, nesterov=True)
    # first step: b = g; d = g + 0.9 g
    np.testing.assert_array_equal(b, g)
    np.testing.assert_allclose(p, [1.0 - 0.1 * 1.9 * 0.5, -2.0 - 0.1 * 1.9 * 0.25], rtol=1e-15)
    sgd_step(p, g, lr=0.1, velocity=b, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(b, 1.9 * g, rtol=1e-15)


def test_maximize_negates_gradient_before_weight_decay():
    p = np.array([2.0])
    sgd_step(p, np.array([1.0]), lr=0.1, weight_decay=0.5, maximize=True)
    # d = -1 + 0.5 * 2 = 0: the decay still pulls towards 0 while the gradient is ascended
    assert p[0] == 2.0


def test_lr_schedule_and_many_params():
    rng = np.random.default_rng(4)
    ps = [rng.standard_normal(s) for s in [(3,), (2, 4), ()]]
    refs = [p.copy() for p in ps]
    bufs = [None] * 3
    opt = SGD(ps, lr=0.1, momentum=0.5)
    for t in range(10):
        gs = [rng.standard_normal(p.shape) for p in ps]
        opt.step(gs)
        for i, g in enumerate(gs):
            refs[i], bufs[i] = reference.sgd_update(refs[i], g, bufs[i], lr=opt.lr, momentum=0.5)
        opt.lr *= 0.9
    for p, r in zip(ps, refs):
        assert_close(p, r, 1e-12)
    assert ps[2].shape == ()


def test_none_gradient_skips_its_parameter():
    a, b = np.ones(3), np.ones(2)
    opt = SGD([a, b], lr=0.5, momentum=0.9)
    opt.step([None, np.ones(2)])
    np.testing.assert_array_equal(a, 1.0)
    np.testing.assert_array_equal(b, 0.5)
    assert opt.state[0]["momentum_buffer"] is None


# ---------------------------------------------------------------------------------------
# In place, state


def test_updates_in_place_same_object_same_memory():
    p = np.zeros((50, 7), np.float32)
    addr = p.ctypes.data
    opt = SGD(p, lr=1.0, momentum=0.9)
    assert opt.params[0] is p
    opt.step(np.ones_like(p))
    buf = opt.state[0]["momentum_buffer"]
    opt.step([np.ones_like(p)])
    assert opt.state[0]["momentum_buffer"] is buf
    assert p.ctypes.data == addr
    np.testing.assert_allclose(p, -1.0 - 1.9, rtol=1e-6)
    np.testing.assert_allclose(buf, 1.9, rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a[:, ::2],  # strided view
        lambda a: np.asfortranarray(a),  # Fortran order
        lambda a: a.T,  # transposed view
        lambda a: a[::-1],  # negative stride
        lambda a: a.astype(a.dtype.newbyteorder(">")),  # byte-swapped
    ],
    ids=["strided", "fortran", "transposed", "reversed", "byteswapped"],
)
def test_layouts_are_updated_in_their_own_memory(make):
    rng = np.random.default_rng(5)
    base = rng.standard_normal((6, 8))
    p = make(base)
    before_base = base.copy()
    p_ref = np.array(p, dtype=np.float64)
    ref_b = None
    vel = None
    for _ in range(3):
        g = rng.standard_normal(p.shape)
        vel = sgd_step(p, g, lr=0.1, velocity=vel, momentum=0.9, weight_decay=0.1)
        p_ref, ref_b = reference.sgd_update(p_ref, g, ref_b, lr=0.1, momentum=0.9, weight_decay=0.1)
    assert_close(p, p_ref, 1e-12)
    assert_close(vel, ref_b, 1e-12)
    if np.shares_memory(p, base):  # a view: the rest of its base is untouched
        touched = np.zeros(base.shape, bool)
        make(touched)[...] = True
        np.testing.assert_array_equal(base[~touched], before_base[~touched])


def test_misaligned_param():
    raw = np.zeros(8 * 10 + 1, np.uint8)
    p = raw[1:].view(np.float64)
    assert not p.flags.aligned
    p[:] = np.arange(10.0)
    sgd_step(p, np.ones(10), lr=0.5)
    np.testing.assert_array_equal(p, np.arange(10.0) - 0.5)


def test_user_velocity_is_updated_in_place():
    p = np.zeros(4)
    vel = np.full(4, 2.0)
    out = sgd_step(p, np.ones(4), lr=1.0, velocity=vel, momentum=0.5)
    assert out is vel
    np.testing.assert_array_equal(vel, 2.0)  # 0.5 * 2 + 1
    np.testing.assert_array_equal(p, -2.0)


def test_gradient_aliasing_parameter_or_mixed_dtype():
    p = np.array([1.0, 2.0])
    sgd_step(p, p, lr=0.5)  # d = p (read before the write)
    np.testing.assert_array_equal(p, [0.5, 1.0])
    q = np.ones(3, np.float32)
    g = np.array([0.1, 0.2, 0.3])  # float64 gradient: rounded to float32 first
    sgd_step(q, g, lr=1.0)
    assert q.dtype == np.float32
    np.testing.assert_array_equal(q, np.float32(1) - g.astype(np.float32))
    sgd_step(q, [1, 2, 3], lr=0.0)  # integers and lists are gradients too
    np.testing.assert_array_equal(q, np.float32(1) - g.astype(np.float32))


def test_reset_and_state():
    rng = np.random.default_rng(6)
    p = rng.standard_normal(10)
    q = p.copy()
    opt = SGD(p, lr=0.1, momentum=0.9, dampening=0.5)
    gs = _grads(rng, p.shape, np.float64, 6)
    for g in gs[:3]:
        opt.step([g])
    assert opt.momentum_buffers[0] is opt.state[0]["momentum_buffer"]
    opt.reset()
    assert opt.momentum_buffers == [None]
    fresh = SGD(q, lr=0.1, momentum=0.9, dampening=0.5)
    np.copyto(q, p)
    for g in gs[3:]:
        opt.step([g])
        fresh.step([g])
    np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], fresh.momentum_buffers[0])
    assert "SGD(1 parameter(s), lr=0.1, momentum=0.9" in repr(opt)


def test_threads_give_identical_bits():
    rng = np.random.default_rng(7)
    n = 300_001  # above the parallel threshold, not a multiple of the block size
    p0 = rng.standard_normal(n).astype(np.float32)
    outs = []
    for nt in (1, 2, None):
        p = p0.copy()
        opt = SGD(p, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4, n_threads=nt)
        for s in range(3):
            opt.step([np.random.default_rng(s).standard_normal(n).astype(np.float32)])
        outs.append(p)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


# ---------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(lr=-0.1), ValueError, r"lr must be a finite number >= 0.0; got -0.1"),
        (dict(lr=float("nan")), ValueError, r"lr must be a finite number"),
        (dict(lr="0.1"), TypeError, r"lr must be a real number; got str"),
        (dict(lr=0.1, momentum=-1), ValueError, r"momentum must be a finite number >= 0.0"),
        (dict(lr=0.1, weight_decay=-1e-3), ValueError, r"weight_decay must be a finite"),
        (
            dict(lr=0.1, nesterov=True),
            ValueError,
            r"nesterov=True requires momentum > 0 and dampening == 0; got momentum=0.0",
        ),
        (
            dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            ValueError,
            r"nesterov=True requires .* got momentum=0.9, dampening=0.1",
        ),
        (dict(lr=0.1, nesterov=1), TypeError, r"nesterov must be True or False; got 1"),
        (dict(lr=0.1, n_threads=0), ValueError, r"n_threads must be a positive int"),
    ],
)
def test_option_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        SGD(np.zeros(3), **kwargs)
    with pytest.raises(exc, match=msg):
        sgd_step(np.zeros(3), np.zeros(3), **kwargs)


def test_parameter_errors():
    ro = np.zeros(3)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        SGD(ro, lr=0.1)
    with pytest.raises(ValueError, match=r"param is read-only"):
        sgd_step(ro, np.zeros(3), lr=0.1)
    with pytest.raises(ValueError, match=r"param is read-only"):
        sgd_step(np.broadcast_to(np.zeros(1), (3,)), np.zeros(3), lr=0.1)
    with pytest.raises(
        TypeError,
        match=r"params\[1\] must be a NumPy array of float32 or "
        r"float64 \(it is updated in place\); got dtype int64",
    ):
        SGD([np.zeros(2), np.zeros(2, np.int64)], lr=0.1)
    with pytest.raises(TypeError, match=r"param must be a NumPy array .* got type list"):
        sgd_step([1.0, 2.0], [1.0, 1.0], lr=0.1)
    with pytest.raises(TypeError, match=r"got dtype float16"):
        sgd_step(np.zeros(2, np.float16), np.zeros(2), lr=0.1)
    over = np.lib.stride_tricks.as_strided(np.zeros(1), (3,), (0,), writeable=True)
    with pytest.raises(ValueError, match=r"param has overlapping elements"):
        sgd_step(over, np.zeros(3), lr=0.1)
    w = np.zeros(4)
    with pytest.raises(ValueError, match=r"params\[1\] and params\[0\] share memory"):
        SGD([w, w[1:]], lr=0.1)
    with pytest.raises(ValueError, match=r"params is empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match=r"parameter groups are not supported"):
        SGD([{"params": [w]}], lr=0.1)
    with pytest.raises(TypeError, match=r"params must be a NumPy array or a sequence"):
        SGD(3.0, lr=0.1)


def test_gradient_and_velocity_errors():
    p = np.zeros((2, 3))
    with pytest.raises(
        ValueError,
        match=r"grad has shape \(3, 2\) but param has shape "
        r"\(2, 3\): they must match",
    ):
        sgd_step(p, np.zeros((3, 2)), lr=0.1)
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but param has shape"):
        sgd_step(p, np.zeros(3), lr=0.1)  # no broadcasting
    with pytest.raises(TypeError, match=r"grad must hold real numbers .* got dtype bool"):
        sgd_step(p, np.zeros(p.shape, bool), lr=0.1)
    with pytest.raises(TypeError, match=r"velocity has dtype float32 but param has dtype float64"):
        sgd_step(p, p.copy(), lr=0.1, momentum=0.9, velocity=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"velocity has shape \(6,\) but param has shape"):
        sgd_step(p, p.copy(), lr=0.1, momentum=0.9, velocity=np.zeros(6))
    vro = np.zeros((2, 3))
    vro.setflags(write=False)
    with pytest.raises(ValueError, match=r"velocity is read-only"):
        sgd_step(p, p.copy(), lr=0.1, momentum=0.9, velocity=vro)
    with pytest.raises(ValueError, match=r"velocity shares memory with param"):
        sgd_step(p, p.copy(), lr=0.1, momentum=0.9, velocity=p)


def test_step_errors_leave_every_parameter_untouched():
    a, b = np.ones(3), np.ones(2)
    opt = SGD([a, b], lr=0.5, momentum=0.9)
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(3,\) but params\[1\] has"):
        opt.step([np.ones(3), np.ones(3)])
    np.testing.assert_array_equal(a, 1.0)
    assert opt.momentum_buffers == [None, None]
    with pytest.raises(ValueError, match=r"grads has 1 gradients but there are 2 parameters"):
        opt.step([np.ones(3)])
    with pytest.raises(TypeError, match=r"grads must be a sequence of 2 gradients"):
        opt.step(np.ones(3))
    opt.lr = -1.0
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0.0; got -1.0"):
        opt.step([np.ones(3), np.ones(2)])


# ---------------------------------------------------------------------------------------
# CS231n drop-ins


def test_cs231n_sgd_matches_assignment_code():
    rng = np.random.default_rng(8)
    w = rng.standard_normal((5, 4))
    ref = w.copy()
    cfg, rcfg = None, None
    for _ in range(5):
        dw = rng.standard_normal(w.shape)
        out, cfg = sgd(w, dw, cfg)
        ref, rcfg = reference.sgd_cs231n(ref, dw, rcfg)
        assert out is w
    assert cfg == {"learning_rate": 1e-2}
    assert_close(w, ref, 1e-12)
    with pytest.raises(ValueError, match=r"dw has shape \(3,\) but w has shape \(5, 4\)"):
        sgd(w, np.zeros(3))
    with pytest.raises(ValueError, match=r"config\['learning_rate'\] must be a finite number"):
        sgd_momentum(w, w, {"learning_rate": -1.0})


@pytest.mark.parametrize("mu", [0.9, 0.0])
def test_cs231n_sgd_momentum_matches_assignment_code(mu):
    rng = np.random.default_rng(9)
    w = rng.standard_normal((5, 4))
    w0 = w.copy()
    cfg = {"momentum": mu} if mu != 0.9 else None
    rcfg = dict(cfg) if cfg else None
    rw = w.copy()
    for t in range(12):
        dw = rng.standard_normal(w.shape)
        w_next, cfg = sgd_momentum(w, dw, cfg)
        np.testing.assert_array_equal(w, w0 if t == 0 else w)  # the input is not modified
        rw, rcfg = reference.sgd_momentum_cs231n(rw, dw, rcfg)
        w = w_next
        cfg["learning_rate"] *= 0.95  # the CS231n solver's decay
        rcfg["learning_rate"] *= 0.95
    assert cfg["momentum"] == mu
    assert_close(w, rw, 1e-12)
    assert_close(cfg["velocity"], rcfg["velocity"], 1e-12)


def test_cs231n_sgd_momentum_assignment_check():
    """The numbers of the CS231n FullyConnectedNets notebook's sgd_momentum check."""
    N, D = 4, 5
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    cfg = {"learning_rate": 1e-3, "velocity": v}
    next_w, _ = sgd_momentum(w, dw, config=cfg)
    want_w, want_cfg = reference.sgd_momentum_cs231n(
        w, dw, {"learning_rate": 1e-3, "velocity": np.linspace(0.6, 0.9, num=N * D).reshape(N, D)}
    )
    assert_close(next_w, want_w, 1e-12)
    assert_close(cfg["velocity"], want_cfg["velocity"], 1e-12)


# ---------------------------------------------------------------------------------------
# Random search


def test_random_search_keeps_the_best_and_counts_calls():
    calls = []

    def loss(W):
        calls.append(W.copy())
        return float(((W - 1e-4) ** 2).sum()), None  # a (loss, grad) tuple is fine

    W, L = random_search(loss, (3, 2), num_tries=50, seed=0)
    assert len(calls) == 50 and W.shape == (3, 2) and W.dtype == np.float64
    losses = [float(((c - 1e-4) ** 2).sum()) for c in calls]
    assert L == min(losses)
    np.testing.assert_array_equal(W, calls[int(np.argmin(losses))])
    W2, L2 = random_search(loss, (3, 2), num_tries=50, seed=0)
    np.testing.assert_array_equal(W, W2)


def test_random_search_ignores_nan_and_checks_arguments():
    it = iter([float("nan"), 2.0, 1.0, float("nan")])
    _, L = random_search(lambda W: next(it), 4, num_tries=4, seed=1)
    assert L == 1.0
    with pytest.raises(ValueError, match=r"num_tries must be an int >= 1; got 0"):
        random_search(lambda W: 0.0, 3, num_tries=0)
    with pytest.raises(ValueError, match=r"scale must be a finite number >= 0.0; got -1"):
        random_search(lambda W: 0.0, 3, scale=-1)
    with pytest.raises(TypeError, match=r"loss_fn must return a scalar loss \(a float\); got str"):
        random_search(lambda W: "x", 3, num_tries=1)
    with pytest.raises(TypeError, match=r"loss_fn must be callable"):
        random_search(None, 3)
    with pytest.raises(ValueError, match=r"shape must be an int >= 0; got -2"):
        random_search(lambda W: 0.0, (3, -2))


def _linear_problem():
    rng = np.random.default_rng(10)
    N, D, C = 400, 20, 5
    W_true = rng.standard_normal((D, C))
    X = rng.standard_normal((N, D))
    y = np.argmax(X @ W_true + 0.3 * rng.standard_normal((N, C)), axis=1)
    return X, y, D, C


@pytest.mark.parametrize("scale", [1e-4, 0.3, 1.0])
def test_random_search_loses_to_sgd_at_equal_loss_evaluations(scale):
    """The lecture's point: with the same number of loss evaluations, following the
    gradient beats guessing (random search even gets the full data set each time, SGD a
    minibatch)."""
    X, y, D, C = _linear_problem()
    budget = 150

    def full_loss(W):
        return fastloss.softmax_cross_entropy(X @ W, y, grad=False)

    evals = {"random": 0, "sgd": 0}

    def counted(W):
        evals["random"] += 1
        return full_loss(W)

    _, rs_loss = random_search(counted, (D, C), num_tries=budget, scale=scale, seed=11)

    rng = np.random.default_rng(12)
    W = 1e-4 * rng.standard_normal((D, C))
    opt = SGD(W, lr=0.5, momentum=0.9)
    for _ in range(budget):
        idx = rng.integers(0, X.shape[0], 32)
        _, dS = fastloss.softmax_cross_entropy(X[idx] @ W, y[idx])
        evals["sgd"] += 1
        opt.step([X[idx].T @ dS])
    sgd_loss = full_loss(W)
    assert evals["random"] == evals["sgd"] == budget
    assert sgd_loss < 0.5 * rs_loss, (sgd_loss, rs_loss)


def test_empty_parameters_are_updated_like_torch():
    for shape in ((0, 3), (3, 0), (0,)):
        p = np.zeros(shape)
        sgd_step(p, np.zeros(shape), lr=0.1)
        opt = SGD([np.zeros(shape)], lr=0.1, momentum=0.9)
        opt.step([np.zeros(shape)])
        assert p.shape == shape
