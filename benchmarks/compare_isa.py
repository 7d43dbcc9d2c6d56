"""The fused kernels (loss and gradient in one pass) at each SIMD level: the score-level
losses, and linear_loss (X @ W, the loss and dW together).

    python benchmarks/compare_isa.py              # every level this CPU supports
    python benchmarks/compare_isa.py --rounds 5 --dtype float64

Each level runs in its own process with FASTLOSS_CPU set (the level is chosen once, at
import); the processes take turns for --rounds rounds so that a change in the machine's
load hits every level alike. Prints a table of median times per call and each level's
speed-up over the baseline level, and checks that every level computes the same losses.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

LEVELS = ["baseline", "avx2", "avx512"]
# Score level: (N, C) scores, a large batch and a minibatch. Model level (linear_loss,
# softmax and hinge on X @ W in one pass): (N, D) x (D, C), CS231n's CIFAR-10 shapes.
SCORE_SHAPES = [(1_000_000, 10), (200, 10)]
LINEAR_SHAPES = [(10_000, 3073, 10), (200, 3073, 10)]


def _cases(nthreads_all):
    for n, c in SCORE_SHAPES:
        for op in ("multiclass_hinge", "softmax_cross_entropy"):
            threads = [1, nthreads_all] if n >= 100_000 and nthreads_all > 1 else [1]
            for nt in threads:
                yield op, (n, c), nt
    for n, d, c in LINEAR_SHAPES:
        for loss in ("hinge", "softmax"):
            threads = [1, nthreads_all] if n >= 10_000 and nthreads_all > 1 else [1]
            for nt in threads:
                yield f"linear_loss {loss}", (n, d, c), nt


def _median_per_call(fn, calls, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) / calls)
    return float(np.median(times))


def child(dtype, repeat, want):
    import fastloss

    info = fastloss.build_info()
    if info["isa_active"] != want:
        sys.exit(f"asked for {want}, got {info['isa_active']} ({info['isa_note']})")
    rng = np.random.default_rng(0)
    out = []
    for op, shape, nt in _cases(info["max_threads"]):
        n, c = shape[0], shape[-1]
        y = rng.integers(0, c, n)
        if op.startswith("linear_loss"):
            X = rng.standard_normal(shape[:2]).astype(dtype)
            W = (rng.standard_normal(shape[1:]) * 1e-2).astype(dtype)
            kind = op.split()[1]

            def f(W=W, X=X, y=y, kind=kind, nt=nt):
                return fastloss.linear_loss(W, X, y, loss=kind, reg=1e-3, n_threads=nt)
        else:
            s = rng.standard_normal(shape).astype(dtype)

            def f(s=s, y=y, fn=getattr(fastloss, op), nt=nt):
                return fn(s, y, n_threads=nt)

        loss, _ = f()  # warm up (pages, pool, threads)
        calls = max(1, int(2e6 // np.prod(shape)))  # at least ~2e6 elements per timing
        t = _median_per_call(f, calls, repeat)
        out.append({"op": op, "shape": shape, "threads": nt, "sec": t, "loss": float(loss)})
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=7, help="timings per case and round")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(np.dtype(a.dtype), a.repeat, a.child)

    import fastloss

    info = fastloss.build_info()
    best = LEVELS.index(info["isa_best"])
    levels = [x for x in info["isa_compiled"] if LEVELS.index(x) <= best]
    skipped = [x for x in info["isa_compiled"] if x not in levels]
    runs = {x: [] for x in levels}
    for _ in range(a.rounds):
        for level in levels:
            env = dict(os.environ, FASTLOSS_CPU=level)
            cmd = [sys.executable, __file__, "--child", level, "--dtype", a.dtype,
                   "--repeat", str(a.repeat)]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if r.returncode:
                sys.exit(r.stderr)
            runs[level].append(json.loads(r.stdout))

    print(f"fastloss {info['version']}, {info['compiler']}; CPU's best level {info['isa_best']}"
          + (f" ({', '.join(skipped)} compiled, not runnable here)" if skipped else ""))
    print(f"{a.dtype}, median time per call (loss and gradient), median of {a.rounds} rounds")
    head = "| operation | shape | threads | " + " | ".join(levels) + " | " + " | ".join(
        f"{x} vs baseline" for x in levels[1:]) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    worst = 0.0
    for k, case in enumerate(runs[levels[0]][0]):
        t = {x: float(np.median([r[k]["sec"] for r in runs[x]])) for x in levels}
        loss0 = case["loss"]
        for x in levels:
            d = abs(runs[x][0][k]["loss"] - loss0) / abs(loss0)
            if not d <= worst:  # a NaN shows
                worst = d
        cells = " | ".join(_fmt(t[x]) for x in levels)
        ratios = " | ".join(f"{t['baseline'] / t[x]:.2f}x" for x in levels[1:])
        shape = " x ".join(f"{d:,}" for d in case["shape"])
        print(f"| {case['op']} | {shape} | {case['threads']} | {cells} | {ratios} |")
    print(f"largest relative difference of the losses between levels: {worst:.1e}")


def _fmt(sec):
    return f"{sec * 1e3:.2f} ms" if sec >= 1e-3 else f"{sec * 1e6:.1f} us"


if __name__ == "__main__":
    main()
