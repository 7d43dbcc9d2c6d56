"""Fit times on the split ``python -m fastloss train`` uses (digits, stratified, seed 0,
standardized): fastloss's Softmax and LinearSVM against scikit-learn's LogisticRegression
and LinearSVC with their default settings; then (``--lbfgs``) full-batch L-BFGS:
``Softmax(solver="lbfgs", reg=1 / (2 C n))`` against ``LogisticRegression(C=C)`` (both
lbfgs, max_iter=100, tol=1e-4) on digits and on N=20,000, D=1,024, C=10 float32 (and
``--cifar-shape``: 49,000 x 3,073), fit time and the final objective of both models, each
evaluated by one common function (``objective``: mean cross-entropy + reg * sum W**2 in
float64). Medians of interleaved rounds (the contenders alternate round by round).

    python benchmarks/bench_classifiers.py [--rounds 7] [--lbfgs] [--cifar-shape]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from fastloss import LinearSVM, Softmax, cli


def objective(coef, intercept, X, y, reg):
    """The common objective: mean softmax cross-entropy of X @ coef.T + intercept + reg *
    sum(coef**2), in float64, in row blocks."""
    coef = np.asarray(coef, np.float64)
    intercept = np.asarray(intercept, np.float64)
    total = 0.0
    for i in range(0, X.shape[0], 4096):
        S = np.asarray(X[i:i + 4096], np.float64) @ coef.T + intercept
        m = S.max(axis=1, keepdims=True)
        lse = np.log(np.exp(S - m).sum(axis=1)) + m[:, 0]
        total += float((lse - S[np.arange(S.shape[0]), y[i:i + 4096]]).sum())
    return total / X.shape[0] + reg * float((coef**2).sum())


def synthetic(N, D, C, seed=0):
    """Standard-normal float32 features, labels from a random linear teacher plus Gumbel
    noise (a softmax model of the data exists, with classes that overlap)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D), dtype=np.float32)
    T = rng.standard_normal((D, C)) / np.sqrt(D) * 3
    y = np.argmax(X @ T + rng.gumbel(size=(N, C)), axis=1)
    return X, y


def time_fits(models, X, y, rounds):
    """Fit every model once per round, the models alternating: (fit times per model, the
    last fitted model of each, the models that warned ConvergenceWarning)."""
    times = {k: [] for k in models}
    fitted, warned = {}, set()
    for _ in range(rounds):
        for k, make in models.items():
            m = make()
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always", ConvergenceWarning)
                t0 = time.perf_counter()
                m.fit(X, y)
                times[k].append(time.perf_counter() - t0)
            if any(issubclass(x.category, ConvergenceWarning) for x in w):
                warned.add(k)
            fitted[k] = m
    return times, fitted, warned


def bench_lbfgs(name, X, y, C_sk, rounds):
    n = X.shape[0]
    reg = 1.0 / (2 * C_sk * n)
    models = {
        "fastloss Softmax(lbfgs)": lambda: Softmax(solver="lbfgs", reg=reg),
        "sklearn LogisticRegression": lambda: LogisticRegression(C=C_sk),
    }
    times, fitted, warned = time_fits(models, X, y, rounds)
    f = {k: objective(m.coef_, m.intercept_, X, y, reg) for k, m in fitted.items()}
    ref = "sklearn LogisticRegression"
    print(f"\n{name}: {X.shape[0]} x {X.shape[1]} {X.dtype}, {len(np.unique(y))} classes, "
          f"LogisticRegression C={C_sk:g} = Softmax reg {reg:.3g}; max_iter 100, tol 1e-4; "
          f"median of {rounds} fits")
    print(f"{'model':<28}{'fit time':>11}{'ratio':>8}{'iterations':>12}{'objective':>16}"
          f"{'rel. to sklearn':>17}")
    for k, m in fitted.items():
        t = statistics.median(times[k])
        ratio = t / statistics.median(times[ref])
        it = int(np.max(m.n_iter_))
        note = "  (ConvergenceWarning)" if k in warned else ""
        print(f"{k:<28}{t * 1e3:>8.1f} ms{ratio:>8.3f}{it:>12d}{f[k]:>16.10f}"
              f"{(f[k] - f[ref]) / abs(f[ref]):>+17.2e}{note}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--lbfgs", action="store_true", help="only the L-BFGS comparison")
    ap.add_argument("--cifar-shape", action="store_true",
                    help="also 49,000 x 3,073 float32 (CIFAR-10's shape, synthetic)")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_info

    print("BLAS: " + "; ".join(f"{i['internal_api']} {i.get('architecture')} "
                                f"{i['num_threads']} threads" for i in threadpool_info()
                                if i["user_api"] == "blas"))
    if args.lbfgs:
        X, y = load_digits(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        for C_sk in (0.1, 1.0):
            bench_lbfgs("digits (standardized)", X, y, C_sk, args.rounds)
        X, y = synthetic(20000, 1024, 10)
        bench_lbfgs("synthetic", X, y, 1.0, args.rounds)
        if args.cifar_shape:
            X, y = synthetic(49000, 3073, 10)
            bench_lbfgs("synthetic, CIFAR-10's shape", X, y, 1.0, max(1, args.rounds // 2))
        return
    Xtr, ytr, _, _, Xte, yte, _, _ = cli._load("digits", "raw", 0)
    mean, std = Xtr.mean(axis=0), Xtr.std(axis=0)
    std[std == 0] = 1.0
    Xtr = ((Xtr - mean) / std).astype(np.float64)
    Xte = ((Xte - mean) / std).astype(np.float64)
    models = {
        "fastloss Softmax": lambda: Softmax(random_state=0),
        "sklearn LogisticRegression": lambda: LogisticRegression(),
        "fastloss LinearSVM": lambda: LinearSVM(random_state=0),
        "sklearn LinearSVC": lambda: LinearSVC(random_state=0),
    }
    times, fitted, warned = time_fits(models, Xtr, ytr, args.rounds)
    acc = {k: m.score(Xte, yte) for k, m in fitted.items()}
    print(f"digits, train {Xtr.shape[0]} x {Xtr.shape[1]} float64 (the CLI's split, seed 0), "
          f"median of {args.rounds} fits")
    print(f"{'model':<28}{'fit time':>12}{'test accuracy':>15}")
    for k in models:
        note = "  (ConvergenceWarning)" if k in warned else ""
        print(f"{k:<28}{statistics.median(times[k]) * 1e3:>9.1f} ms{acc[k]:>15.3f}{note}")


if __name__ == "__main__":
    main()
