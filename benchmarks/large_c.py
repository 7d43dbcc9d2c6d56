"""Time and extra peak memory of linear_loss at a large class count, each measured in its
own process, against the NumPy reference and PyTorch (when installed).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/large_c.py \\
        [--N 8192] [--D 1024] [--C 32768]

Extra peak memory = the process's peak RSS during the call minus its RSS after the
inputs exist (ru_maxrss / VmHWM).
"""

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
impl, N, D, C, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(0)
X = rng.standard_normal((N, D), dtype=np.float32)
W = (rng.standard_normal((D, C), dtype=np.float32) * 0.01)
y = rng.integers(0, C, N)
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1]) * 1024
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) * 1024
if impl == 'fastloss':
    import fastloss as fl
    run = lambda: fl.linear_loss(W, X, y, reg=1e-4)
elif impl == 'numpy':
    import fastloss.reference as R
    run = lambda: R.linear_loss(W, X, y, reg=1e-4)
else:
    import torch
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    def run():
        Wt = torch.from_numpy(W).requires_grad_()
        out = torch.nn.functional.cross_entropy(Xt @ Wt, yt) + 1e-4 * (Wt * Wt).sum()
        out.backward()
        return out.item(), Wt.grad
base = rss()
# reset the high-water mark so it counts from here
open('/proc/self/clear_refs', 'w').write('5')
base = max(base, rss())
ts = []
for _ in range(reps):
    t = time.perf_counter(); r = run(); ts.append(time.perf_counter() - t); del r
print(json.dumps({'time': float(np.median(ts)), 'extra': hwm() - base}))
"""


def measure(impl, N, D, C, reps):
    out = subprocess.run([sys.executable, "-c", CHILD, impl, str(N), str(D), str(C), str(reps)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--N", type=int, default=8192)
    p.add_argument("--D", type=int, default=1024)
    p.add_argument("--C", type=int, default=32768)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    print(f"linear_loss softmax, X {a.N}x{a.D}, C={a.C}, float32 (median of {a.reps})")
    print("| impl | N | time | extra peak memory | time vs numpy | memory vs numpy |")
    res = {}
    for impl in ("numpy", "fastloss", "torch"):
        for N in (a.N, 2 * a.N) if impl == "fastloss" else (a.N,):
            r = measure(impl, N, a.D, a.C, a.reps)
            if r is None:
                print(f"| {impl} | {N} | (not available) |")
                continue
            res[impl, N] = r
            base = res.get(("numpy", a.N))
            rt = f"{r['time'] / base['time']:.2f}" if base else "-"
            rm = f"{r['extra'] / base['extra']:.3f}" if base else "-"
            print(f"| {impl} | {N} | {r['time']:.3f} s | {r['extra'] / 2**20:.0f} MiB | {rt} | {rm} |",
                  flush=True)


if __name__ == "__main__":
    main()
