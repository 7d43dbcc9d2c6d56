"""Benchmarks of fastloss.features against scikit-image's hog and CS231n's NumPy feature
functions, on 32 x 32 crops of scikit-learn's sample photographs (CIFAR-sized images).

    pytest benchmarks/test_bench_features.py      # pytest-benchmark, 500 images per group
    python benchmarks/test_bench_features.py      # the README table: 10,000 and 49,000 images

Run NumPy comparisons with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""

import sys
import time
from pathlib import Path

import fastloss
import fastloss.features as F
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
skimage_feature = pytest.importorskip("skimage.feature")
sk_datasets = pytest.importorskip("sklearn.datasets")
from cs231n_features import (
    cs231n_color_histogram_hsv,
    cs231n_extract_features,
    cs231n_hog_feature,
)

N_BENCH = 500  # images per pytest-benchmark group


def photo_crops(n, seed=0):
    """n random 32 x 32 x 3 uint8 crops of the sample photographs at scales 1, 1/2, 1/4."""
    rng = np.random.default_rng(seed)
    windows = []
    for photo in sk_datasets.load_sample_images().images:
        for step in (1, 2, 4):
            q = np.ascontiguousarray(photo[::step, ::step])
            windows.append(np.lib.stride_tricks.sliding_window_view(q, (32, 32, 3))[:, :, 0])
    out = np.empty((n, 32, 32, 3), np.uint8)
    which = rng.integers(0, len(windows), n)
    for k, w in enumerate(windows):
        idx = np.flatnonzero(which == k)
        out[idx] = w[rng.integers(0, w.shape[0], idx.size), rng.integers(0, w.shape[1], idx.size)]
    return out


def skimage_hogs(gray):
    return [skimage_feature.hog(x) for x in gray]


# ---------------------------------------------------------------- pytest-benchmark


@pytest.fixture(scope="module")
def rgb():
    return photo_crops(N_BENCH)


@pytest.fixture(scope="module")
def gray(rgb):
    return np.ascontiguousarray(rgb[..., 1])


@pytest.mark.benchmark(group=f"hog, {N_BENCH} x 32x32 uint8")
def test_hog_batch(benchmark, gray):
    benchmark(F.hog_batch, gray)


@pytest.mark.benchmark(group=f"hog, {N_BENCH} x 32x32 uint8")
def test_hog_skimage(benchmark, gray):
    benchmark.pedantic(skimage_hogs, args=(gray,), rounds=3)


# CS231n's feature functions: fastloss's batched vs CS231n's NumPy, image by image.
PIPELINES = {
    "hog_feature": ([F.hog_feature], [cs231n_hog_feature]),
    "color_histogram_hsv": ([F.color_histogram_hsv], [cs231n_color_histogram_hsv]),
    "hog_feature + color_histogram_hsv": (
        [F.hog_feature, F.color_histogram_hsv],
        [cs231n_hog_feature, cs231n_color_histogram_hsv],
    ),
}


@pytest.mark.parametrize("name", list(PIPELINES))
def test_extract_features_fastloss(benchmark, rgb, name):
    benchmark.group = f"extract_features {name}, {N_BENCH} x 32x32x3 uint8"
    benchmark(F.extract_features, rgb, PIPELINES[name][0])


@pytest.mark.parametrize("name", list(PIPELINES))
def test_extract_features_cs231n(benchmark, rgb, name):
    benchmark.group = f"extract_features {name}, {N_BENCH} x 32x32x3 uint8"
    benchmark.pedantic(cs231n_extract_features, args=(rgb, PIPELINES[name][1]), rounds=3)


# ---------------------------------------------------------------- the table


def median_seconds(repeat, fn, *args, **kwargs):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def table(n_hog=10_000, n_extract=49_000, n_sample=300):
    """Rows (operation, shape, threads, fastloss, baseline, ratio, unit): hog per image
    (medians, us), CS231n's pipelines in total seconds (the NumPy baseline timed on
    n_sample images and scaled to n_extract)."""
    threads = fastloss.build_info()["max_threads"]
    rgb = photo_crops(n_extract)
    gray = np.ascontiguousarray(rgb[:n_hog, ..., 1])
    rows = []
    sk = median_seconds(3, skimage_hogs, gray[:n_sample]) / n_sample * 1e6
    for nt in (None, 1):
        fl = median_seconds(5, F.hog_batch, gray, n_threads=nt) / n_hog * 1e6
        rows.append(("hog_batch vs skimage.feature.hog, per image", f"{n_hog}x32x32 uint8",
                     nt or threads, fl, sk, "us"))  # fmt: skip
    for name, (ours, theirs) in PIPELINES.items():
        fl = median_seconds(3, F.extract_features, rgb, ours)
        base = median_seconds(3, cs231n_extract_features, rgb[:n_sample], theirs)
        rows.append((f"extract_features {name} vs CS231n NumPy, total",
                     f"{n_extract}x32x32x3 uint8", threads, fl, base / n_sample * n_extract, "s"))  # fmt: skip
    return rows


def main():
    info = fastloss.build_info()
    print(f"fastloss {info['version']}, ISA {info['isa_active']}, {info['max_threads']} threads")
    print("| operation | shape | threads | fastloss | baseline | ratio |")
    print("|---|---|---|---|---|---|")
    for op, shape, nt, fl, base, unit in table():
        print(f"| {op} | {shape} | {nt} | {fl:.3g} {unit} | {base:.3g} {unit} | {base / fl:.1f}x |")
    print("(CS231n NumPy totals: timed on 300 images, scaled to 49,000)")


if __name__ == "__main__":
    main()
