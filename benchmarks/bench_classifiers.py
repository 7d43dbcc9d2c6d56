"""Fit times on the split ``python -m fastloss train`` uses (digits, stratified, seed 0,
standardized): fastloss's Softmax and LinearSVM against scikit-learn's LogisticRegression
and LinearSVC with their default settings. Medians of interleaved rounds.

    python benchmarks/bench_classifiers.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from fastloss import LinearSVM, Softmax, cli


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
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
    times = {k: [] for k in models}
    acc = {}
    warned = set()
    for _ in range(args.rounds):
        for k, make in models.items():
            m = make()
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always", ConvergenceWarning)
                t0 = time.perf_counter()
                m.fit(Xtr, ytr)
                times[k].append(time.perf_counter() - t0)
            if any(issubclass(x.category, ConvergenceWarning) for x in w):
                warned.add(k)
            acc[k] = m.score(Xte, yte)
    print(f"digits, train {Xtr.shape[0]} x {Xtr.shape[1]} float64 (the CLI's split, seed 0), "
          f"median of {args.rounds} fits")
    print(f"{'model':<28}{'fit time':>12}{'test accuracy':>15}")
    for k in models:
        note = "  (ConvergenceWarning)" if k in warned else ""
        print(f"{k:<28}{statistics.median(times[k]) * 1e3:>9.1f} ms{acc[k]:>15.3f}{note}")


if __name__ == "__main__":
    main()
