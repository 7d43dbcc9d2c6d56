"""fastloss from Cython (fastloss.cython_kernels) against the same call from Python.

    python benchmarks/bench_cython.py [--rounds 15] [--reps 2000] [--threads 2]

Builds tests/cython_user.pyx (a user's extension: cimport fastloss.cython_kernels) in a
temporary folder, then, round by round and alternating the contenders:
1. the per-call cost of a 200x10 softmax cross-entropy with its gradient (float64 and
   float32): `reps` calls from a nogil loop in Cython (one Python->Cython call per `reps`
   kernel calls), against `reps` calls of fastloss.softmax_cross_entropy from Python;
2. 1000 minibatches of 200x10: the user's prange over minibatches (n_threads=1 in each
   call), the same loop on one thread, and a Python loop calling the Python API.
Prints medians over the rounds and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fastloss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cython_build import build


def per_call(fn, reps):
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / reps / 1e3  # us per call


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2, help="threads of the prange loop")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ext = build(Path(tmp) / "user")
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines()
                  if ln.startswith("Model name")), "?")
    info = fastloss.build_info()
    print(f"CPU: {model}; fastloss {info['version']}, SIMD level {info['isa_active']}, "
          f"max_threads {info['max_threads']}; {args.rounds} rounds, medians\n")

    print(f"1. one softmax cross-entropy call with its gradient ({args.reps} calls a round; "
          "1x10: the fixed cost of a call)")
    print(f"{'shape':7} {'dtype':8} {'Cython us':>10} {'Python us':>10} {'Python-Cython':>14} "
          f"{'Python/Cython':>14}")
    for (N, C), dt in [(s, d) for s in ((200, 10), (1, 10)) for d in (np.float64, np.float32)]:
        rng = np.random.default_rng(0)
        S = (rng.standard_normal((N, C)) * 3).astype(dt)
        y = rng.integers(0, C, N).astype(np.int64)
        loss, G = np.empty(1, dt), np.empty_like(S)
        reps = args.reps

        def cy():
            ext.repeat_softmax_cross_entropy(S, y, loss, G, reps)

        def py():
            f = fastloss.softmax_cross_entropy
            for _ in range(reps):
                f(S, y)

        cy(), py()  # warm-up
        tc, tp = [], []
        for _ in range(args.rounds):
            tc.append(per_call(cy, reps))
            tp.append(per_call(py, reps))
        ratio = statistics.median(p / c for p, c in zip(tp, tc))
        mc, mp = statistics.median(tc), statistics.median(tp)
        print(f"{f'{N}x{C}':7} {np.dtype(dt).name:8} {mc:10.3f} {mp:10.3f} {mp - mc:14.3f} "
              f"{ratio:13.2f}x")

    nb, batch, C = 1000, 200, 10
    print(f"\n2. {nb} minibatches of {batch}x{C}, softmax cross-entropy with its gradient "
          "(ms for all)")
    print(f"{'dtype':8} {'prange x' + str(args.threads):>11} {'Cython x1':>10} "
          f"{'Python':>10} {'Python/prange':>14} {'x1/prange':>10}")
    for dt in (np.float64, np.float32):
        rng = np.random.default_rng(1)
        S = (rng.standard_normal((nb * batch, C)) * 3).astype(dt)
        y = rng.integers(0, C, nb * batch).astype(np.int64)
        losses, G = np.empty(nb, dt), np.empty_like(S)
        codes = np.empty(nb, np.intc)

        def par():
            ext.minibatch_softmax(S, y, batch, losses, G, codes, args.threads)

        def one():
            ext.minibatch_softmax(S, y, batch, losses, G, codes, 1)

        def py():
            f = fastloss.softmax_cross_entropy
            for b in range(nb):
                f(S[b * batch:(b + 1) * batch], y[b * batch:(b + 1) * batch])

        par(), one(), py()
        assert (codes == 0).all()
        t = {"par": [], "one": [], "py": []}
        for _ in range(args.rounds):
            for k, fn in (("par", par), ("one", one), ("py", py)):
                t[k].append(per_call(fn, 1) / 1e3)
        m = {k: statistics.median(v) for k, v in t.items()}
        r_py = statistics.median(p / q for p, q in zip(t["py"], t["par"]))
        r_one = statistics.median(p / q for p, q in zip(t["one"], t["par"]))
        print(f"{np.dtype(dt).name:8} {m['par']:11.2f} {m['one']:10.2f} {m['py']:10.2f} "
              f"{r_py:13.2f}x {r_one:9.2f}x")


if __name__ == "__main__":
    main()
