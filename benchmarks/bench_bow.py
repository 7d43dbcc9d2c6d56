"""BagOfWords.transform against the NumPy composition and the BLAS floor, side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_bow.py \
        [--n 2000,10000] [--words 200,400] [--rounds 5] [--dtype float32]

Colour 32x32 images, 6x6 patches (27 x 27 = 729 per image, 108 values each), triangle
encoding, quadrant pooling. Contenders, alternated round by round:
- fastloss: ``BagOfWords.transform`` (one threaded C++ call);
- NumPy: ``fastloss.reference.bag_of_words`` (sliding_window_view patches, normalise,
  whiten, distances by |z|^2 - 2 z @ C.T + |c|^2, encode, pool), ``--chunk`` images at a
  time so that it fits in memory;
- floor: only the one BLAS product that any method needs, the normalised patches (N h w,
  108) times [Z | Z C^T] (108, 108 + K), for the same N, in chunks of ``--chunk`` images
  into a preallocated buffer (the patches of one chunk are made once, untimed).
Prints medians over rounds and the median of the per-round ratios, and the peak extra
memory of each: tracemalloc for NumPy, the kernel's scratch (bounded by a block of
patches per thread, independent of N) from its block sizes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import tracemalloc

import numpy as np

import fastloss as fl
import fastloss.reference as R
from fastloss.features import BagOfWords


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    f = rng.uniform(0.1, 1.0, (n, 3, 1, 1))
    base = 127 + 90 * np.sin(f[:, 0] * xx + f[:, 1] * yy + 6 * f[:, 2])
    x = base[..., None] * rng.uniform(0.5, 1.0, (n, 1, 1, 3)) + rng.normal(0, 25, (n, 32, 32, 3))
    return np.clip(x, 0, 255)


def kernel_scratch_bytes(bow, dtype, threads):
    """The kernel's memory beyond input and output: the model in T (the stacked matrix in
    panels, the centring vector, the codewords' norms) once, and per thread a block of
    normalised patches, their product row block, a distance row and the pooling targets
    (the constants of cpp/include/fastloss/bow.hpp)."""
    t = np.dtype(dtype).itemsize
    vec_bytes = {"avx512": 64, "avx2": 32}.get(fl.build_info()["isa_active"], 16)
    lanes = vec_bytes // t  # the SIMD level in use
    nr = 2 * lanes
    D, K = bow.patch_dim_, bow.codebook_.shape[0]
    ncp = -(-(D + K) // nr) * nr
    pb = min(240, max(6, 24 * 1024 // (D * t))) // 6 * 6
    model = (D * ncp + D + K) * t + D * ncp * 8  # (+ the double columns while it is built)
    block = (pb * D + pb * ncp + K) * t + pb * 8
    return model + threads * block, pb


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"threads={i.get('num_threads')}" for i in threadpool_info()
                     if i.get("user_api") == "blas")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="2000,10000")
    ap.add_argument("--words", default="200,400")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args()
    dtype = np.dtype(args.dtype)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines()
                  if ln.startswith("Model name")), "?")
    cfg = fl.build_info()
    threads = cfg["max_threads"]
    print(f"CPU: {model}; SIMD level {cfg['isa_active']}; threads {threads}; BLAS: {blas_info()}")
    print(f"dtype {dtype}; 6x6 patches of colour 32x32 images; triangle, quadrants; "
          f"medians of {args.rounds} rounds (ratios: medians of per-round ratios)\n")
    print("| images | words | fastloss | NumPy (chunked) | NumPy/fastloss | BLAS floor | "
          "fastloss/floor | peak extra: NumPy | floor | fastloss scratch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    train = images(2000, seed=1).astype(dtype)
    for K in map(int, args.words.split(",")):
        bow = BagOfWords(n_words=K, patch_size=6, max_patches=50_000, random_state=0).fit(train)
        Z, C = bow.whitening_, bow.codebook_
        stacked = np.ascontiguousarray(np.hstack([Z, Z @ C.T]).astype(dtype))
        for n in map(int, args.n.split(",")):
            x = images(n).astype(dtype)
            chunk = min(args.chunk, n)
            P = R.bow_normalize(R.bow_patches(x[:chunk], 6, 1, dtype), dtype.type(10.0))
            P = np.ascontiguousarray((P - bow.mean_.astype(dtype)).reshape(-1, P.shape[-1]))
            buf = np.empty((P.shape[0], stacked.shape[1]), dtype)
            n_chunks = -(-n // chunk)

            def run_fl():
                return bow.transform(x)

            def run_np():
                return R.bag_of_words(x, C, bow.mean_, Z, patch_size=6, chunk=chunk,
                                      dtype=dtype)

            def run_floor():
                for _ in range(n_chunks):
                    np.matmul(P, stacked, out=buf)

            got, want = run_fl(), run_np()  # (warm-up and a check)
            err = np.abs(got - want).max() / np.abs(want).max()
            assert err < (1e-4 if dtype == np.float32 else 1e-8), err
            run_floor()
            times = {"fl": [], "np": [], "floor": []}
            for _ in range(args.rounds):
                for key, fn in (("fl", run_fl), ("np", run_np), ("floor", run_floor)):
                    t = time.perf_counter()
                    fn()
                    times[key].append(time.perf_counter() - t)
            med = {k: statistics.median(v) for k, v in times.items()}
            r_np = statistics.median(a / b for a, b in zip(times["np"], times["fl"]))
            r_floor = statistics.median(a / b for a, b in zip(times["fl"], times["floor"]))
            tracemalloc.start()
            run_np()
            peak_np = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out_bytes = n * 4 * K * dtype.itemsize
            floor_bytes = P.nbytes + buf.nbytes
            scratch, pb = kernel_scratch_bytes(bow, dtype, threads)
            mb = 1 << 20
            print(f"| {n} | {K} | {med['fl']:.3f} s | {med['np']:.3f} s | {r_np:.1f}x | "
                  f"{med['floor']:.3f} s | {r_floor:.2f} | "
                  f"{(peak_np - out_bytes) / mb:.0f} MB (+ {out_bytes / mb:.1f} MB out) | "
                  f"{floor_bytes / mb:.0f} MB | {scratch / 1024:.0f} KB "
                  f"({pb}-patch blocks) |", flush=True)


if __name__ == "__main__":
    main()
