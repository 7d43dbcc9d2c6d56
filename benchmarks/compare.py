"""Side-by-side medians and ratios for the README's table, measured in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare.py [--quick]
    [--only losses,torch,linear,loop]

Prints: operation, shape, dtype, threads, fastloss, baseline, ratio (baseline/fastloss)
and, where it applies, the memory floor and fastloss/floor.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import fastloss as fl
import fastloss.reference as R


def median_time(fn, repeat, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def fmt(t):
    return f"{t * 1e3:9.3f} ms" if t >= 1e-3 else f"{t * 1e6:9.2f} us"


ROWS = []


def row(op, shape, dtype, threads, t_fl, base_name, t_base, floor_name=None, t_floor=None,
        floor_ratio=None):
    """One line of the table; floor_ratio: fastloss/floor measured side by side (else the
    ratio of the two medians)."""
    ROWS.append((op, shape, dtype, threads, t_fl, base_name, t_base, floor_name, t_floor))
    fr = floor_ratio if floor_ratio is not None else (t_fl / t_floor if t_floor else None)
    extra = f" | {floor_name} {fmt(t_floor)} | fastloss/floor {fr:5.2f}" if t_floor else ""
    print(f"| {op:28s} | {shape:22s} | {dtype:7s} | {threads} | {fmt(t_fl)} | {base_name} "
          f"{fmt(t_base)} | {t_base / t_fl:7.1f}x{extra} |", flush=True)


def per_call(fn, calls, rounds):
    """Median over rounds of the mean time of `calls` back-to-back calls (short calls:
    one perf_counter pair per call would weigh in), after a warm-up of 2 rounds."""
    ts = []
    for r in range(rounds + 2):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        if r >= 2:
            ts.append((time.perf_counter() - t) / calls)
    return float(np.median(ts))


def side_by_side(fns, rounds):
    """Medians of each function's time, the functions alternated round by round (best of
    3 calls each), and the median over rounds of each one's ratio to the first: the ratio
    of two times taken a few milliseconds apart, which the machine's drifts touch least."""
    for f in fns:
        f()
        f()
    ts = [[] for _ in fns]
    for _ in range(rounds):
        for k, f in enumerate(fns):
            best = math.inf
            for _ in range(3):
                t = time.perf_counter()
                f()
                best = min(best, time.perf_counter() - t)
            ts[k].append(best)
    t = np.array(ts)
    return np.median(t, axis=1), np.median(t / t[0], axis=1)


def losses(quick, threads):
    rng = np.random.default_rng(0)
    fns = [("softmax_cross_entropy", fl.softmax_cross_entropy, R.softmax_cross_entropy),
           ("multiclass_hinge", fl.multiclass_hinge, R.multiclass_hinge)]
    cases = [(name, f, r, grad) for name, f, r in fns for grad in (True, False)]
    S0, y0 = rng.normal(size=(200, 10)), rng.integers(0, 10, 200)
    t_end = time.perf_counter() + 0.5  # warm up first: the first timings of a fresh
    while time.perf_counter() < t_end:  # process ran ~50 % slow here
        fl.softmax_cross_entropy(S0, y0)
    for N in ([200, 200_000] if quick else [200, 1_000_000]):
        for dt in (np.float32, np.float64):
            S = rng.normal(size=(N, 10)).astype(dt)
            y = rng.integers(0, 10, N)
            if N <= 1000:
                for name, f, r, grad in cases:
                    t = per_call(lambda: f(S, y, grad=grad, n_threads=threads), 200, 25)
                    tr = per_call(lambda: r(S, y, grad=grad), 20, 5)
                    row(f"{name} {'fused' if grad else 'fwd'}", f"{N}x10", np.dtype(dt).name,
                        threads, t, "numpy", tr)
                continue
            D = np.empty_like(S)
            # copyto and the four calls alternated: times and ratios to copyto per round
            med, ratio = side_by_side(
                [lambda: np.copyto(D, S)]
                + [(lambda f=f, g=grad: f(S, y, grad=g, n_threads=threads))
                   for _, f, _, grad in cases], 5 if quick else 15)
            for k, (name, f, r, grad) in enumerate(cases, start=1):
                tr = median_time(lambda: r(S, y, grad=grad), 3)
                row(f"{name} {'fused' if grad else 'fwd'}", f"{N}x10", np.dtype(dt).name,
                    threads, med[k], "numpy", tr, "copyto", med[0], ratio[k])


def torch_autograd(quick, threads):
    """Forward + backward through autograd: PyTorch's loss, fastloss.torch's operation, and
    the raw kernel on the same memory (NumPy views), alternated round by round; ratio =
    torch / fastloss.torch. Only when torch is installed."""
    try:
        import torch
        import torch.nn.functional as F

        import fastloss.torch as flt
    except ImportError:
        print("| (torch rows skipped: torch is not installed) |")
        return
    rng = np.random.default_rng(0)
    pairs = [("cross_entropy", F.cross_entropy, flt.cross_entropy, fl.softmax_cross_entropy),
             ("multi_margin_loss", F.multi_margin_loss, flt.multi_margin_loss,
              fl.multiclass_hinge)]
    for N in (1_000_000, 200):
        S = rng.normal(size=(N, 10)).astype(np.float32)
        y = rng.integers(0, 10, N)
        ts, ty = torch.from_numpy(S), torch.from_numpy(y)
        for name, tfn, ofn, kfn in pairs:
            def autograd(fn):
                def run():
                    x = ts.detach().requires_grad_()
                    fn(x, ty).backward()
                return run
            fns = [autograd(ofn), autograd(tfn), lambda: kfn(S, y, n_threads=threads)]
            if N <= 1000:
                t = [per_call(f, 200, 15) for f in fns]
            else:
                t, _ = side_by_side(fns, 3 if quick else 9)
            row(f"torch {name} fwd+bwd", f"{N}x10", "float32", threads, t[0],
                "torch", t[1], "raw kernel", t[2])


def linear(quick, threads):
    rng = np.random.default_rng(0)
    N = 10_000 if quick else 49_000
    for D in (3073, 155):
        for dt in (np.float32,) if quick else (np.float32, np.float64):
            X = rng.normal(size=(N, D)).astype(dt)
            W = (rng.normal(size=(D, 10)) * 1e-3).astype(dt)
            y = rng.integers(0, 10, N)
            v = np.ones(D, dt)
            rep = 3 if quick else 7
            t_floor = median_time(lambda: X @ v, rep)
            for loss in ("softmax", "hinge"):
                t = median_time(lambda: fl.linear_loss(W, X, y, loss=loss, reg=1e-3,
                                                       n_threads=threads), rep)
                tr = median_time(lambda: R.linear_loss(W, X, y, loss=loss, reg=1e-3), 3)
                row(f"linear_loss {loss}", f"{N}x{D}, C=10", np.dtype(dt).name, threads, t,
                    "numpy", tr, "X@v", t_floor)
            try:
                import torch
            except ImportError:
                continue
            Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

            def torch_run():
                Wt = torch.from_numpy(W).requires_grad_()
                out = torch.nn.functional.cross_entropy(Xt @ Wt, yt) + 1e-3 * (Wt * Wt).sum()
                out.backward()
            tt = median_time(torch_run, rep)
            t = median_time(lambda: fl.linear_loss(W, X, y, reg=1e-3, n_threads=threads), rep)
            row("linear_loss softmax", f"{N}x{D}, C=10", np.dtype(dt).name, threads, t,
                "torch", tt)


def sgd_loop(quick, threads):
    """The CS231n training loop: 300 iterations, batch 200, W -= lr * dW."""
    rng = np.random.default_rng(0)
    N = 10_000 if quick else 49_000
    X = rng.normal(size=(N, 3073)).astype(np.float32)
    y = rng.integers(0, 10, N)
    iters = 50 if quick else 300
    batches = [rng.choice(N, 200) for _ in range(iters)]

    def ours():
        W = np.zeros((3073, 10), np.float32)
        for idx in batches:
            _, dW = fl.linear_loss(W, X, y, indices=idx, reg=1e-3, n_threads=threads)
            W -= 1e-7 * dW

    def numpy_loop():
        W = np.zeros((3073, 10), np.float32)
        for idx in batches:
            _, dW = R.softmax_loss_vectorized(W, X[idx], y[idx], 1e-3)
            W -= 1e-7 * dW

    t = median_time(ours, 3, warmup=1)
    tr = median_time(numpy_loop, 3, warmup=1)
    row(f"SGD loop {iters} it, batch 200", f"{N}x3073, C=10", "float32", threads, t, "numpy", tr)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default="losses,torch,linear,loop")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    info = fl.build_info()
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '')} x{i['num_threads']}"
                         for i in threadpool_info())
    except ImportError:
        blas = "unknown"
    nt = a.threads or info["max_threads"]
    print(f"fastloss {info['version']} ({info['isa_active']}), numpy {np.__version__} "
          f"(BLAS: {blas}), threads {nt}")
    print("| operation | shape | dtype | threads | fastloss | baseline | ratio | floor |")
    only = a.only.split(",")
    if "losses" in only:
        losses(a.quick, a.threads)
    if "torch" in only:
        torch_autograd(a.quick, a.threads)
    if "linear" in only:
        linear(a.quick, a.threads)
    if "loop" in only:
        sgd_loop(a.quick, a.threads)


if __name__ == "__main__":
    main()
