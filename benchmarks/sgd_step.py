"""The CS231n minibatch SGD step on the CIFAR-10 shape (49,000 x 3,073 float32, C = 10,
batch 200), side by side in one run: its phases against the FMA-and-read bound, the
training loop against NumPy, and the contention table.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/sgd_step.py
        [--only phases,loop,contention] [--rounds R] [--iters 1500]

The data are random (CIFAR-10 is not needed): the arithmetic and the memory traffic of a
step depend on the shape and dtype only. Every table alternates its contenders round by
round in one process and gives medians (and ratios of medians).

phases: fastloss's fused step timed inside the kernel (pack W, forward with the rows'
  reads, loss rows, backward, combine of the partials with the penalty; the update is
  the fused SGD kernel), next to NumPy's step (gather X[idx], forward X_b @ W and the
  loss, backward X_b^T dS, combine + 2 reg W, update W -= lr dW). The bound: the FMAs
  (2 M D C) at the FMA rate of OpenBLAS's sgemm on a cache-resident 512^3 product with
  the same threads, and the rows' bytes (M D 4) at the rate of np.take gathering them
  (cold rows of X); "FMA + read" assumes no overlap, "max" perfect overlap.
loop: 1,500 iterations of the lecture's loop: sampling (rng.choice), the loss and
  gradient, W -= lr * dW; NumPy's reference with X[idx] against linear_loss(indices=,
  out=) and against Softmax().train(), whole loops alternated round by round (--chunk
  splits them; a train() call also pays its once-per-fit checks of X, so chunks shorter
  than a fit charge those to every chunk).
contention: each kernel at the default threads and at one thread, in a quiet machine and
  with one busy process (a spinning Python process), ratio default / one thread; the two
  counts alternate call by call, and every call takes other rows of X.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

import numpy as np

import fastloss as fl
import fastloss.reference as R
from fastloss import _core

N, D, C, M = 49_000, 3_073, 10, 200
REG, LR = 1e-3, 1e-7


def data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D), dtype=np.float32)
    y = rng.integers(0, C, N)
    W = (0.001 * rng.standard_normal((D, C))).astype(np.float32)
    return X, y, W


def med(v):
    return statistics.median(v)


def fmt(t):
    return f"{t * 1e3:8.3f} ms"


def header():
    info = fl.build_info()
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    blas = "?"
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} {i.get('architecture')} {i['num_threads']}t"
                         for i in threadpool_info())
    except ImportError:
        pass
    print(f"CPU {cpu}, {os.cpu_count()} cores; fastloss {info['version']} "
          f"({info['isa_active']}, {info['max_threads']} threads), numpy {np.__version__} "
          f"(BLAS {blas})")


def blas_threads(n):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(n)


# ------------------------------------------------------------------------------ phases

def phases(rounds):
    X, y, W = data()
    rng = np.random.default_rng(1)
    idxs = [rng.integers(0, N, M) for _ in range(64)]
    dW = np.empty_like(W)
    Xb = np.empty((M, D), np.float32)
    A = np.random.default_rng(2).standard_normal((512, 512), dtype=np.float32)
    Cm = np.empty_like(A)
    ph = np.zeros(6)
    names = ["pack W", "forward (rows read)", "loss rows", "backward", "combine + penalty",
             "chunks' wall time"]
    res = {}
    for nt in (1, 2):
        fl_ph = {k: [] for k in names + ["update (fused SGD)", "whole call", "step"]}
        np_ph = {k: [] for k in ["gather X[idx]", "forward + loss", "backward", "combine",
                                 "update", "step"]}
        peak, gather = [], []
        Wf = W.copy()
        Wflat, dWflat = Wf.reshape(-1), dW.reshape(-1)
        with blas_threads(nt):
            for r in range(rounds + 3):
                idx = idxs[r % 64]
                # fastloss: phases inside the kernel, then the update
                ph[:] = 0
                _core._linear_phase_clock(ph)
                t0 = time.perf_counter()
                fl.linear_loss(Wf, X, y, indices=idx, reg=REG, out=dW, n_threads=nt)
                t1 = time.perf_counter()
                _core._linear_phase_clock(None)
                _core.sgd_update(Wflat, dWflat, None, LR, 0.0, 1.0, 0.0, False, False, False, nt)
                t2 = time.perf_counter()
                # NumPy's step, phase by phase
                idx2 = idxs[(r + 7) % 64]
                s0 = time.perf_counter()
                Xg = X[idx2]
                yg = y[idx2]
                s1 = time.perf_counter()
                S = Xg @ W
                S -= S.max(axis=1, keepdims=True)
                P = np.exp(S)
                P /= P.sum(axis=1, keepdims=True)
                _ = -np.log(P[np.arange(M), yg]).sum() / M + REG * np.sum(W * W)
                P[np.arange(M), yg] -= 1
                s2 = time.perf_counter()
                G = Xg.T.dot(P)
                s3 = time.perf_counter()
                G = G / M + 2 * REG * W
                s4 = time.perf_counter()
                W2 = W - LR * G
                s5 = time.perf_counter()
                del W2
                # the bound's rates
                b0 = time.perf_counter()
                np.matmul(A, A, out=Cm)
                b1 = time.perf_counter()
                np.take(X, idxs[(r + 31) % 64], axis=0, out=Xb)
                b2 = time.perf_counter()
                if r < 3:
                    continue
                for k, v in zip(names, ph):
                    fl_ph[k].append(v)
                fl_ph["update (fused SGD)"].append(t2 - t1)
                fl_ph["whole call"].append(t1 - t0)
                fl_ph["step"].append(t2 - t0)
                for k, v in zip(np_ph, (s1 - s0, s2 - s1, s3 - s2, s4 - s3, s5 - s4, s5 - s0)):
                    np_ph[k].append(v)
                peak.append(512**3 / (b1 - b0))
                gather.append(b2 - b1)
        fma_t = 2 * M * D * C / med(peak)
        read_t = med(gather)
        res[nt] = (fl_ph, np_ph, fma_t, read_t)
        print(f"\n### Step phases, {nt} thread(s), median of {rounds} rounds "
              f"(M={M}, D={D}, C={C}, float32)")
        print("| fastloss phase | median | NumPy phase | median |")
        print("|---|---|---|---|")
        fk, nk = list(fl_ph), list(np_ph)
        for i in range(max(len(fk), len(nk))):
            a = f"| {fk[i]} | {fmt(med(fl_ph[fk[i]]))} " if i < len(fk) else "| | "
            b = f"| {nk[i]} | {fmt(med(np_ph[nk[i]]))} |" if i < len(nk) else "| | |"
            print(a + b)
        step = med(fl_ph["step"])
        print(f"\nbound ({nt} thread(s)): FMAs {2 * M * D * C / 1e6:.1f} M at the sgemm rate "
              f"{med(peak) / 1e9:.1f} GFMA/s = {fmt(fma_t)}; rows {M * D * 4 / 1e6:.2f} MB "
              f"gathered by np.take in {fmt(read_t)}; FMA + read {fmt(fma_t + read_t)}, "
              f"max {fmt(max(fma_t, read_t))}")
        print(f"fastloss step / (FMA + read) = {step / (fma_t + read_t):.2f}; "
              f"/ max = {step / max(fma_t, read_t):.2f}; NumPy step / fastloss step = "
              f"{med(np_ph['step']) / step:.2f}")
    return res


# -------------------------------------------------------------------------------- loop

def loop(iters, chunk, rounds=3):
    chunk = max(1, min(chunk, iters))
    X, y, W0 = data()
    contenders = {}

    def numpy_loop(state, n):
        W, rng, nt = state
        with blas_threads(nt):
            for _ in range(n):
                idx = rng.choice(N, M)
                X_batch, y_batch = X[idx], y[idx]
                _, grad = R.softmax_loss_vectorized(W, X_batch, y_batch, REG)
                W -= LR * grad

    def fastloss_loop(state, n):
        W, rng, dW, nt = state
        for _ in range(n):
            idx = rng.choice(N, M)
            fl.linear_loss(W, X, y, indices=idx, reg=REG, out=dW, n_threads=nt)
            W -= LR * dW

    def train_loop(state, n):
        clf = state[0]
        clf.train(X, y, learning_rate=LR, reg=REG, num_iters=n, batch_size=M)

    for nt in (None, 1):
        t = "default threads" if nt is None else "1 thread"
        clf = fl.Softmax(random_state=0, n_threads=nt)
        clf.W = W0.copy()
        contenders[f"NumPy reference, X[idx], {t}"] = (
            numpy_loop, [W0.copy(), np.random.default_rng(3), nt])
        contenders[f"linear_loss(indices=, out=), {t}"] = (
            fastloss_loop, [W0.copy(), np.random.default_rng(3), np.empty_like(W0), nt])
        contenders[f"Softmax().train(), {t}"] = (train_loop, [clf])
    times = {k: [] for k in contenders}
    for f, st in contenders.values():  # warm-up
        f(st, 5)
    for _ in range(rounds * max(1, iters // chunk)):
        for k, (f, st) in contenders.items():
            t0 = time.perf_counter()
            f(st, chunk)
            times[k].append((time.perf_counter() - t0) / chunk)
    base = med(times["NumPy reference, X[idx], default threads"])
    print(f"\n### {iters}-iteration CS231n loop (batch {M} of {N} x {D} float32, C = {C}), "
          f"chunks of {chunk} iterations alternated ({rounds} rounds), median per iteration")
    print("| loop | per iteration | total (x iters) | NumPy (default threads) / this | "
          "NumPy (same threads) / this |")
    print("|---|---|---|---|---|")
    for k, v in times.items():
        same = med(times["NumPy reference, X[idx], " + k.rsplit(", ", 1)[1]])
        print(f"| {k} | {fmt(med(v))} | {med(v) * iters:7.3f} s | {base / med(v):6.2f}x | "
              f"{same / med(v):6.2f}x |")
    return times


# -------------------------------------------------------------------------- contention

def _spin(stop):
    while not stop.is_set():
        pass


def contention(rounds):
    X, y, W = data()
    rng = np.random.default_rng(5)
    idxs = [rng.integers(0, N, M) for _ in range(64)]
    dW = np.empty_like(W)
    p = np.random.default_rng(6).standard_normal(10_000_000, dtype=np.float32)
    g = np.random.default_rng(7).standard_normal(10_000_000, dtype=np.float32)
    buf = g.copy()
    kernels = {}
    kernels["fastloss linear_loss step"] = lambda nt, i: fl.linear_loss(
        W, X, y, indices=idxs[i], reg=REG, out=dW, n_threads=nt)
    kernels["fastloss SGD momentum 10M"] = lambda nt, i: _core.sgd_update(
        p, g, buf, 1e-3, 0.9, 1.0, 0.0, False, False, False, 0 if nt is None else nt)

    def numpy_step(nt, i):
        with blas_threads(nt):
            R.softmax_loss_vectorized(W, X[idxs[i]], y[idxs[i]], REG)

    kernels["NumPy step (BLAS)"] = numpy_step
    try:
        import torch

        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        Wt = torch.from_numpy(W.copy()).requires_grad_()
        it = [torch.from_numpy(i) for i in idxs]
        default_threads = torch.get_num_threads()

        def torch_step(nt, i):
            torch.set_num_threads(default_threads if nt is None else nt)
            Wt.grad = None
            loss = torch.nn.functional.cross_entropy(Xt[it[i]] @ Wt, yt[it[i]]) + \
                REG * (Wt * Wt).sum()
            loss.backward()

        kernels["PyTorch step (autograd)"] = torch_step
        tp = torch.from_numpy(p.copy()).requires_grad_()
        tp.grad = torch.from_numpy(g.copy())
        topt = torch.optim.SGD([tp], lr=1e-3, momentum=0.9, fused=True)
        topt.step()

        def torch_sgd(nt, i):
            torch.set_num_threads(default_threads if nt is None else nt)
            topt.step()

        kernels["torch SGD fused 10M"] = torch_sgd
    except ImportError:
        pass
    out = {}
    for label in ("quiet", "one busy process"):
        ctx = mp.get_context("spawn")
        stop = ctx.Event()
        proc = None
        if label != "quiet":
            proc = ctx.Process(target=_spin, args=(stop,), daemon=True)
            proc.start()
            time.sleep(0.5)
        try:
            t = {(k, nt): [] for k in kernels for nt in (None, 1)}
            call = 0
            for r in range(rounds + 2):
                for k, f in kernels.items():
                    # (the order of the two counts alternates round by round, and every
                    # call takes other rows: a call right after the same rows would find
                    # them in cache)
                    for nt in ((None, 1) if r % 2 == 0 else (1, None)):
                        t0 = time.perf_counter()
                        f(nt, call % 64)
                        call += 1
                        if r >= 2:
                            t[(k, nt)].append(time.perf_counter() - t0)
        finally:
            stop.set()
            if proc is not None:
                proc.join(5)
        out[label] = {key: med(v) for key, v in t.items()}
    print(f"\n### Contention: default threads vs one thread, median of {rounds} rounds")
    print("| kernel | quiet: default | quiet: 1 thread | ratio | busy: default | "
          "busy: 1 thread | ratio |")
    print("|---|---|---|---|---|---|---|")
    for k in kernels:
        q, b = out["quiet"], out["one busy process"]
        print(f"| {k} | {fmt(q[(k, None)])} | {fmt(q[(k, 1)])} | "
              f"{q[(k, None)] / q[(k, 1)]:.2f} | {fmt(b[(k, None)])} | {fmt(b[(k, 1)])} | "
              f"{b[(k, None)] / b[(k, 1)]:.2f} |")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="phases,loop,contention")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--chunk", type=int, default=1500)
    ap.add_argument("--loop-rounds", type=int, default=3)
    a = ap.parse_args(argv)
    header()
    only = a.only.split(",")
    if "phases" in only:
        phases(a.rounds)
    if "loop" in only:
        loop(a.iters, a.chunk, a.loop_rounds)
    if "contention" in only:
        contention(max(10, a.rounds // 4))


if __name__ == "__main__":
    main()
