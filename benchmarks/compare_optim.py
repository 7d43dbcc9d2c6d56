"""Side by side, in one run: SGD with momentum on 1M, 10M and 100M float32 parameters.

fastloss.SGD (one fused C++ pass) against the best NumPy in-place expressions and, when
torch is installed, torch.optim.SGD(foreach=True) and (fused=True). The implementations
take turns round after round, so that they share the machine's noise; the table gives
medians and ratios (median / fastloss median).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_optim.py
        [--n 1000000,10000000,100000000] [--rounds R] [--torch-only]

--torch-only keeps fastloss and torch.optim.SGD(fused=True) alone (the bar of the
contract: at most 1.1x torch's fused step).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastloss
from fastloss import SGD, reference


def candidates(n, lr, mu, torch_only=False):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)
    out = {}

    p = p0.copy()
    opt = SGD(p, lr=lr, momentum=mu)
    opt.step([g])
    out["fastloss SGD"] = (lambda: opt.step([g]), fastloss.build_info()["max_threads"])
    p1 = p0.copy()
    opt1 = SGD(p1, lr=lr, momentum=mu, n_threads=1)
    opt1.step([g])
    out["fastloss SGD, 1 thread"] = (lambda: opt1.step([g]), 1)

    numpy_variants = () if torch_only else (("NumPy in place", None),
                                            ("NumPy in place, scratch", p0.copy()))
    for label, scratch in numpy_variants:
        pn, bn = p0.copy(), g.copy()
        lr32, mu32 = np.float32(lr), np.float32(mu)

        def f(pn=pn, bn=bn, s=scratch, lr32=lr32, mu32=mu32):
            reference.sgd_momentum_inplace(pn, g, bn, lr32, mu32, s)

        out[label] = (f, 1)
    try:
        import torch
    except ImportError:
        return out, None
    for impl in ("fused",) if torch_only else ("foreach", "fused"):
        tp = torch.from_numpy(p0.copy()).requires_grad_()
        tp.grad = torch.from_numpy(g.copy())
        topt = torch.optim.SGD([tp], lr=lr, momentum=mu, **{impl: True})
        topt.step()
        out[f"torch SGD {impl}=True"] = (topt.step, torch.get_num_threads())
    return out, torch.__version__


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="1000000,10000000,100000000")
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--torch-only", action="store_true")
    args = ap.parse_args(argv)
    return {n: one_size(n, args) for n in (int(float(s)) for s in args.n.split(","))}


def one_size(n, args):
    fns, torch_version = candidates(n, 1e-3, 0.9, args.torch_only)
    times = {k: [] for k in fns}
    for _ in range(2):  # warm up
        for f, _ in fns.values():
            f()
    for _ in range(args.rounds):
        for k, (f, _) in fns.items():
            time.sleep(0.01)  # let the previous implementation's idle threads stop spinning
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    base = med["fastloss SGD"]
    info = fastloss.build_info()
    print(
        f"SGD momentum=0.9 step, {n:,} float32 parameters, median of {args.rounds} "
        f"rounds; fastloss {info['version']} ({info['isa_active']}), numpy {np.__version__}, "
        f"torch {torch_version or 'not installed'}"
    )
    print(f"{'implementation':<26}{'threads':>8}{'median ms':>11}{'ratio':>8}"
          f"{'median of round ratios':>24}")
    for k, (_, nt) in fns.items():
        rr = statistics.median(a / b for a, b in zip(times[k], times["fastloss SGD"]))
        print(f"{k:<26}{nt:>8}{med[k]:>11.2f}{med[k] / base:>8.2f}{rr:>24.2f}")
    return med


if __name__ == "__main__":
    main()
