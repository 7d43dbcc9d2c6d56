"""Many Python threads calling the kernels at once (issue 8).

The kernels release the GIL, so calls from several Python threads really run at the same
time (each may also start its own OpenMP threads). On shared read-only inputs every call
must give the bits a sequential call gives, and large outputs, which come from a shared
pool, must never be handed to two callers.
"""

from __future__ import annotations

import faulthandler
import functools
import os
import select
import signal
import threading
import time

import numpy as np
import pytest

import fastloss as fl
import fastloss.features as F

N_THREADS = 8
ROUNDS = 6
WATCHDOG_S = 600


@pytest.fixture(autouse=True)
def watchdog():
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def readonly(a):
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@pytest.fixture(scope="module")
def calls():
    """(name, zero-argument call) pairs over shared read-only inputs: small inputs (one
    kernel thread), large ones (OpenMP threads inside) and gradients from the pool."""
    rng = np.random.default_rng(0)
    small = readonly(rng.normal(size=(37, 10)))
    y_small = readonly(rng.integers(0, 10, 37))
    big = readonly(rng.normal(size=(20_000, 10)))  # 1.6 MB gradient: the output pool
    y_big = readonly(rng.integers(0, 10, 20_000))
    big32 = readonly(big.astype(np.float32))
    wide = readonly(rng.normal(size=(300, 700)).astype(np.float32))
    y_wide = readonly(rng.integers(0, 700, 300))
    sw = readonly(rng.random(20_000))
    cw = readonly(rng.random(10) + 0.5)
    soft = readonly(fl.softmax(rng.normal(size=(20_000, 10))))
    X = readonly(rng.normal(size=(5_000, 64)))
    W = readonly(rng.normal(size=(64, 10)) * 0.01)
    y_X = readonly(rng.integers(0, 10, 5_000))
    images = readonly(rng.integers(0, 256, (40, 32, 32, 3)).astype(np.uint8))
    gray = readonly(rng.random((40, 32, 32)))
    out = [
        ("hinge small", functools.partial(fl.multiclass_hinge, small, y_small)),
        ("hinge big", functools.partial(fl.multiclass_hinge, big, y_big, sample_weight=sw)),
        ("hinge cs f32", functools.partial(fl.multiclass_hinge, big32, y_big,
                                           variant="crammer_singer", squared=True)),
        ("hinge wide", functools.partial(fl.multiclass_hinge, wide, y_wide, n_threads=2)),
        ("ce small", functools.partial(fl.softmax_cross_entropy, small, y_small)),
        ("ce big", functools.partial(fl.softmax_cross_entropy, big, y_big, class_weight=cw,
                                     label_smoothing=0.1)),
        ("ce soft", functools.partial(fl.softmax_cross_entropy, big, soft, reduction="none")),
        ("ce wide", functools.partial(fl.softmax_cross_entropy, wide, y_wide, n_threads=3)),
        ("softmax", functools.partial(fl.softmax, big32)),
        ("log_softmax", functools.partial(fl.log_softmax, wide, axis=0)),
        ("svm_loss", functools.partial(fl.svm_loss, small, y_small)),
        ("softmax_loss", functools.partial(fl.softmax_loss, big, y_big)),
        ("linear_loss", functools.partial(fl.linear_loss, W, X, y_X, reg=1e-3)),
        ("linear hinge", functools.partial(fl.linear_loss, W, X, y_X, loss="hinge",
                                           b=np.zeros(10), indices=y_X[:2000])),
        ("svm_loss_vectorized", functools.partial(fl.svm_loss_vectorized, W, X[:50],
                                                  y_X[:50], 1e-3)),
        ("hog_batch", functools.partial(F.hog_batch, gray, pixels_per_cell=(4, 4))),
        ("hog", functools.partial(F.hog, gray[0], pixels_per_cell=(4, 4))),
        ("hog_feature", functools.partial(F.hog_feature, images[0])),
        ("color_histogram_hsv", functools.partial(F.color_histogram_hsv, images[1])),
        ("extract_features", functools.partial(F.extract_features, images,
                                               [F.hog_feature, F.color_histogram_hsv])),
    ]  # fmt: skip
    return out


def as_bytes(result):
    if isinstance(result, tuple):
        return tuple(as_bytes(r) for r in result)
    a = np.asarray(result)
    return a.dtype.str, a.shape, a.tobytes()


def run_threads(target, n=N_THREADS):
    """Runs target(k) in n threads started together; re-raises the first error."""
    barrier = threading.Barrier(n)
    errors = []

    def body(k):
        try:
            barrier.wait()
            target(k)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_threads_give_the_sequential_bits(calls):
    want = {name: as_bytes(call()) for name, call in calls}
    got = [[] for _ in range(N_THREADS)]

    def work(k):
        order = calls[k % len(calls):] + calls[: k % len(calls)]  # different mixes at once
        for _ in range(ROUNDS):
            for name, call in order:
                got[k].append((name, as_bytes(call())))

    run_threads(work)
    for k in range(N_THREADS):
        assert len(got[k]) == ROUNDS * len(calls)
        for name, b in got[k]:
            assert b == want[name], f"thread {k}: {name} differs from the sequential call"


def test_threads_same_call_at_once(calls):
    """All 8 threads on the same call at the same moment, for every call."""
    for name, call in calls:
        want = as_bytes(call())
        results = [None] * N_THREADS

        def work(k, call=call):
            results[k] = as_bytes(call())

        run_threads(work)
        assert all(r == want for r in results), name


def test_pooled_outputs_are_never_shared():
    """Large gradients come from a pool shared by all threads: each live gradient is a
    distinct block, filled with its own call's numbers."""
    rng = np.random.default_rng(1)
    s = readonly(rng.normal(size=(20_000, 10)))
    y = readonly(rng.integers(0, 10, 20_000))
    _, want = fl.softmax_cross_entropy(s, y)
    held = [[] for _ in range(N_THREADS)]

    def work(k):
        for i in range(20):
            _, g = fl.softmax_cross_entropy(s, y)
            mark, g[0, 0] = g[0, 0], -(k + 1)  # a caller's own mark in its own array ...
            _, other = fl.softmax_cross_entropy(s, y)  # ... while the others make theirs
            assert g[0, 0] == -(k + 1) and other[0, 0] == want[0, 0]
            g[0, 0] = mark
            if i % 3 == 0:
                held[k].append(g)  # some stay alive while others return to the pool

    run_threads(work)
    live = [g for h in held for g in h]
    ptrs = {g.__array_interface__["data"][0] for g in live}
    assert len(ptrs) == len(live)
    for g in live:
        np.testing.assert_array_equal(g, want)


def test_errors_from_many_threads():
    """Bad labels found inside the kernel, raised in 8 threads at once: each gets its own
    ValueError with its own first bad position."""
    s = readonly(np.zeros((50_000, 4)))

    def work(k):
        y = np.zeros(50_000, np.int64)
        y[1000 * (k + 1)] = 4 + k
        for _ in range(5):
            with pytest.raises(ValueError, match=rf"y\[{1000 * (k + 1)}\] = {4 + k} "):
                fl.multiclass_hinge(s, y)

    run_threads(work)


# ---------------------------------------------------------------- in-place updates

STEPS_PER_THREAD = 10


def _sequential(make, steps):
    p, run = make()
    for _ in range(steps):
        run()
    return p


@pytest.mark.parametrize("kind", ["SGD", "SGD strided", "sgd_step", "cs231n sgd"])
def test_concurrent_steps_are_serialized(kind):
    """8 threads calling step() on the same parameters at once: every step is applied
    whole, one after the other (the same gradient each time, so the order does not
    matter): the parameters and momentum buffers equal 80 sequential steps, bit for bit.
    Without serialization the threads' reads and writes of the parameter interleave (a
    torn update) and steps are lost."""
    from fastloss.optim import sgd

    rng = np.random.default_rng(5)
    p0 = rng.standard_normal(400_000)  # large: OpenMP threads inside each update
    g = readonly(rng.standard_normal(400_000))

    def make():
        if kind == "SGD":
            p = p0.copy()
            opt = fl.SGD([p], lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
            return (p, opt), lambda: opt.step([g])
        if kind == "SGD strided":  # updated through a contiguous copy, copied back
            parent = np.zeros(2 * p0.size)
            p = parent[::2]
            p[:] = p0
            opt = fl.SGD([p], lr=1e-3, momentum=0.5)
            return (parent, opt), lambda: opt.step([g])
        if kind == "sgd_step":
            p = p0.copy()
            vel = np.zeros_like(p)
            return (p, vel), lambda: fl.sgd_step(p, g, lr=1e-3, velocity=vel, momentum=0.9)
        p = p0.copy()
        return (p,), lambda: sgd(p, g, {"learning_rate": 1e-3})

    want = _sequential(make, N_THREADS * STEPS_PER_THREAD)
    got, run = make()

    def work(k):
        for _ in range(STEPS_PER_THREAD):
            run()

    run_threads(work)
    for a, b in zip(got, want):
        if isinstance(a, np.ndarray):
            assert a.tobytes() == b.tobytes(), f"{kind}: a torn or lost update"
        else:  # the optimizer: its momentum buffers
            for x, y in zip(a.momentum_buffers, b.momentum_buffers):
                assert x.tobytes() == y.tobytes(), f"{kind}: a torn momentum buffer"


def test_steps_and_losses_at_once():
    """Threads computing losses on read-only data while others update a separate
    parameter: each side gets exactly its sequential result."""
    rng = np.random.default_rng(6)
    s = readonly(rng.normal(size=(20_000, 10)))
    y = readonly(rng.integers(0, 10, 20_000))
    want_loss = as_bytes(fl.softmax_cross_entropy(s, y))
    p0 = rng.standard_normal(100_000)
    g = readonly(rng.standard_normal(100_000))
    p_want = p0.copy()
    for _ in range(4 * 5):
        fl.sgd_step(p_want, g, lr=1e-2)
    p = p0.copy()
    bad = []

    def work(k):
        for _ in range(5):
            if k % 2:
                fl.sgd_step(p, g, lr=1e-2)
            elif as_bytes(fl.softmax_cross_entropy(s, y)) != want_loss:
                bad.append(k)

    run_threads(work)
    assert not bad
    assert p.tobytes() == p_want.tobytes()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_after_threaded_calls():
    """A child forked after the parent ran threaded calls (multiprocessing's "fork" start
    method) gets the same bits, and returns: GCC's OpenMP team does not survive fork, so
    such a child runs every call on its own thread (it used to wait forever)."""
    rng = np.random.default_rng(5)
    S = rng.normal(size=(200_000, 10)).astype(np.float32)
    y = rng.integers(0, 10, 200_000)
    X = rng.normal(size=(4_000, 300))
    W = rng.normal(size=(300, 10)) * 0.01
    yx = rng.integers(0, 10, 4_000)

    def work():
        loss, G = fl.softmax_cross_entropy(S, y, n_threads=2)
        h, dH = fl.multiclass_hinge(S, y, n_threads=2)
        lw, dW = fl.linear_loss(W, X, yx, reg=1e-3, n_threads=2)
        return b"".join(np.asarray(a).tobytes() for a in (loss, G, h, dH, lw, dW))

    expected = work()  # the parent's threads exist from here on
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, exit without running pytest's teardown
        code = 1
        try:
            os.close(r)
            data = work()
            with os.fdopen(w, "wb") as f:
                f.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    with os.fdopen(r, "rb") as f:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            ready, _, _ = select.select([f], [], [], 0.2)
            if ready:
                chunk = os.read(f.fileno(), 1 << 20)
                if chunk:
                    chunks.append(chunk)
                    continue
            if done:
                break
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not finish within 120 s (an OpenMP hang)")
    assert os.WEXITSTATUS(status) == 0
    assert b"".join(chunks) == expected


def _spin(stop):
    while not stop.is_set():
        pass


def test_busy_cores_give_the_same_bits():
    """Beside processes that keep every core busy, a call whose team waits for a core runs
    its next calls on the calling thread for a while (the driver's team gate), then tries
    its team again: every one of those calls gives the bits of one thread."""
    import multiprocessing as mp

    rng = np.random.default_rng(9)
    X = rng.normal(size=(3_000, 1_200)).astype(np.float32)
    W = (rng.normal(size=(1_200, 10)) * 0.01).astype(np.float32)
    y = rng.integers(0, 10, 3_000)
    S = rng.normal(size=(20_000, 10)).astype(np.float32)
    idx = [rng.integers(0, 3_000, 200) for _ in range(8)]
    want = []
    for i in idx:
        lw, dW = fl.linear_loss(W, X, y, indices=i, reg=1e-3, n_threads=1)
        ls, G = fl.softmax_cross_entropy(S[i[0]:], np.resize(y, 20_000 - i[0]), n_threads=1)
        want.append((float(lw), dW.tobytes(), float(ls), G.tobytes()))
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs = [ctx.Process(target=_spin, args=(stop,), daemon=True)
             for _ in range(os.cpu_count() or 2)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.3)
        for r in range(300):
            k = r % len(idx)
            i = idx[k]
            lw, dW = fl.linear_loss(W, X, y, indices=i, reg=1e-3)
            ls, G = fl.softmax_cross_entropy(S[i[0]:], np.resize(y, 20_000 - i[0]))
            assert (float(lw), dW.tobytes(), float(ls), G.tobytes()) == want[k], r
    finally:
        stop.set()
        for p in procs:
            p.join(10)


def test_team_gate_rule():
    """The driver's team gate, with the times given: a region 0.2 ms slower than its
    threads' CPU time closes its gate for 10 ms, twice as long after each further loss (at
    most 1 s); a region that does not lose opens it again."""
    from fastloss import _core

    ms = 1_000_000
    t = _core._team_gate_trace([tuple(int(v) if not isinstance(v, str) else v for v in e) for e in [
        ("open", 0),
        ("report", 0.30 * ms, 0.20 * ms, 1 * ms),   # 0.1 ms of waiting: no loss
        ("open", 1 * ms),
        ("report", 0.50 * ms, 0.25 * ms, 2 * ms),   # 0.25 ms: a loss
        ("open", 11 * ms), ("open", 12 * ms),
        ("report", 5.0 * ms, 1.0 * ms, 12 * ms),    # lost again: 20 ms
        ("open", 31 * ms), ("open", 32 * ms),
        *[("report", 9 * ms, 1 * ms, 100 * ms)] * 8,  # 40, 80, ... then 1 s at most
        ("report", 1.0 * ms, 1.9 * ms, 2_000 * ms),  # a win: open
        ("open", 2_000 * ms),
        ("report", 0.5 * ms, 0.2 * ms, 2_001 * ms),  # the next loss: 10 ms again
    ]])
    assert t[:4] == [1, 0, 1, 12 * ms]
    assert t[4:6] == [0, 1]
    assert t[6] == 32 * ms
    assert t[7:9] == [0, 1]
    assert t[9:17] == [100 * ms + b * ms for b in (40, 80, 160, 320, 640, 1000, 1000, 1000)]
    assert t[17:] == [0, 1, 2_011 * ms]
    # the work classes: the bit length of the work, less one, at most 63
    assert [_core._team_gate_class(w) for w in (0, 1, 2, 3, 4, 1023, 1024, 2**62, 2**63 - 1)] \
        == [0, 0, 1, 1, 2, 9, 10, 62, 62]
