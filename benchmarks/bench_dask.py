"""Distributed L-BFGS on Dask against the in-memory fit on the same cores.

N=200,000, D=512, C=10 float32 (a random linear teacher, Gumbel noise), generated on the
workers; ``Softmax(solver="lbfgs")`` fitted (a) on a LocalCluster of 2 worker processes
(1 thread each) over the persisted dask array in 8 row chunks and (b) in memory with
n_threads=2; the rounds alternate. Reports the time per L-BFGS iteration and per objective
evaluation (medians), the bytes the workers received from each other per evaluation
(their transfer logs), the bytes a client-side evaluation sends and receives (W and b out,
the summed partials back), and the largest relative difference of the models.

    python benchmarks/bench_dask.py [--rounds 3] [--n 200000]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--c", type=int, default=10)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--max-iter", type=int, default=100, dest="max_iter",
                    help="L-BFGS iterations at most (fewer on a busy machine)")
    args = ap.parse_args(argv)
    import dask.array as da
    from distributed import Client, LocalCluster

    import fastloss
    import fastloss.dask as fdask
    from fastloss import Softmax

    N, D, C = args.n, args.d, args.c
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    try:
        rng = da.random.default_rng(0)
        Xd = rng.standard_normal((N, D), chunks=(-(-N // args.chunks), D), dtype=np.float32)
        T = np.random.default_rng(1).standard_normal((D, C)).astype(np.float32) * 3 / D**0.5
        yd = da.argmax(Xd @ T + rng.gumbel(size=(N, C), chunks=(Xd.chunks[0], C)), axis=1)
        Xd, yd = client.persist([Xd, yd])
        X, y = client.compute([Xd, yd], sync=True)
        reg = 1e-4

        def clear(dask_worker):
            dask_worker.transfer_incoming_log.clear()

        def received(dask_worker):
            return sum(e["total"] for e in dask_worker.transfer_incoming_log)

        evals = {"dask": [], "memory": []}
        per_it = {"dask": [], "memory": []}
        per_ev = {"dask": [], "memory": []}
        bytes_ev = []
        models = {}
        orig = fdask.DaskObjective.__call__
        count = [0]

        def counting(self, W, b):
            count[0] += 1
            return orig(self, W, b)

        fdask.DaskObjective.__call__ = counting
        warnings.simplefilter("ignore")  # (ConvergenceWarning with a small --max-iter)
        for _ in range(args.rounds):
            for name in ("dask", "memory"):
                m = Softmax(solver="lbfgs", reg=reg, n_threads=2, max_iter=args.max_iter)
                count[0] = 0
                client.run(clear)
                t0 = time.perf_counter()
                if name == "dask":
                    m.fit(Xd, yd)
                    n_ev = count[0]
                else:
                    ev = [0]
                    real = fastloss._solvers.linear_loss

                    def counted(*a, **kw):
                        ev[0] += 1
                        return real(*a, **kw)

                    fastloss._solvers.linear_loss = counted
                    try:
                        m.fit(X, y)
                    finally:
                        fastloss._solvers.linear_loss = real
                    n_ev = ev[0]
                t = time.perf_counter() - t0
                if name == "dask":
                    bytes_ev.append(sum(client.run(received).values()) / n_ev)
                per_it[name].append(t / m.n_iter_)
                per_ev[name].append(t / n_ev)
                evals[name].append((m.n_iter_, n_ev))
                models[name] = m
        fdask.DaskObjective.__call__ = orig
        a, b = models["dask"], models["memory"]
        diff = float(np.abs(a.coef_ - b.coef_).max() / np.abs(b.coef_).max())
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                    if ln.startswith("model name")), "?")
        print(f"{cpu}; fastloss SIMD {fastloss.build_info()['isa_active']}")
        print(f"N={N}, D={D}, C={C} float32 in {len(Xd.chunks[0])} row chunks; "
              f"Softmax(solver='lbfgs', reg={reg:g}); medians of {args.rounds} alternated fits")
        out_b = (D * C + C) * 4
        back_b = (2 + D * C + C) * 8
        print(f"{'fit':<34}{'iterations/evals':>18}{'ms/iteration':>14}{'ms/eval':>10}"
              f"{'ratio':>8}")
        for name, label in (("memory", "in memory, n_threads=2"),
                            ("dask", "dask, 2 worker processes x 1")):
            it = statistics.median(per_it[name]) * 1e3
            ev = statistics.median(per_ev[name]) * 1e3
            ratio = statistics.median(per_ev[name]) / statistics.median(per_ev["memory"])
            print(f"{label:<34}{'%d/%d' % evals[name][-1]:>18}{it:>14.1f}{ev:>10.1f}"
                  f"{ratio:>8.2f}")
        print(f"bytes per evaluation between workers (transfer logs): "
              f"{statistics.median(bytes_ev):.0f}")
        print(f"bytes per evaluation client -> workers (W, b as float32): {out_b}, "
              f"workers -> client (summed float64 partials): {back_b}; X: {X.nbytes} bytes")
        print(f"largest |coef difference| / largest |coef|: {diff:.2e}")
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
