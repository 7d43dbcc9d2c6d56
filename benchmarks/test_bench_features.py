"""Benchmarks of fastloss.features against scikit-image's hog and CS231n's NumPy feature
functions, on 32 x 32 crops of scikit-learn's sample photographs (CIFAR-sized images).

    pytest benchmarks/test_bench_features.py      # pytest-benchmark, 500 images per group
    python benchmarks/test_bench_features.py      # the README table: 10,000 and 49,000 images

Run NumPy comparisons with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""

import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastloss
import fastloss.features as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
skimage_feature = pytest.importorskip("skimage.feature")
sk_datasets = pytest.importorskip("sklearn.datasets")
from cs231n_features import (  # noqa: E402 (tests/ is on the path now)
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


@pytest.mark.benchmark(group=f"hog_feature, {N_BENCH} x 32x32x3 uint8")
def test_hog_feature_fastloss(benchmark, rgb):
    benchmark(F.extract_features, rgb, [F.hog_feature])


@pytest.mark.benchmark(group=f"hog_feature, {N_BENCH} x 32x32x3 uint8")
def test_hog_feature_cs231n(benchmark, rgb):
    benchmark.pedantic(cs231n_extract_features, args=(rgb, [cs231n_hog_feature]), rounds=3)


@pytest.mark.benchmark(group=f"hue histogram, {N_BENCH} x 32x32x3 uint8")
def test_hue_fastloss(benchmark, rgb):
    benchmark(F.extract_features, rgb, [F.color_histogram_hsv])


@pytest.mark.benchmark(group=f"hue histogram, {N_BENCH} x 32x32x3 uint8")
def test_hue_cs231n(benchmark, rgb):
    benchmark.pedantic(cs231n_extract_features, args=(rgb, [cs231n_color_histogram_hsv]), rounds=3)


# ---------------------------------------------------------------- the table


def median_seconds(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def table(n_hog=10_000, n_extract=49_000, n_sample=300):
    """Rows (operation, shape, threads, fastloss, baseline, ratio): per-image medians in us,
    the pipeline in seconds (the baseline's from a sample of n_sample images)."""
    threads = fastloss.build_info()["max_threads"]
    rgb = photo_crops(n_extract)
    gray = np.ascontiguousarray(rgb[:n_hog, ..., 1])
    us = 1e6
    rows = []

    sk = median_seconds(lambda: skimage_hogs(gray[:n_sample]), 3) / n_sample
    for nt in (None, 1):
        fl = median_seconds(lambda: F.hog_batch(gray, n_threads=nt), 5) / n_hog
        rows.append(
            ("hog_batch vs skimage.feature.hog, per image", f"{n_hog}x32x32 uint8",
             nt or threads, fl * us, sk * us, sk / fl)
        )  # fmt: skip
    for name, ours, theirs in (
        ("hog_feature vs CS231n NumPy, per image", F.hog_feature, cs231n_hog_feature),
        ("color_histogram_hsv vs CS231n NumPy, per image", F.color_histogram_hsv,
         cs231n_color_histogram_hsv),
    ):  # fmt: skip
        fl = median_seconds(lambda: F.extract_features(rgb, [ours]), 3) / n_extract
        base = median_seconds(lambda: cs231n_extract_features(rgb[:n_sample], [theirs]), 3)
        rows.append((name, f"{n_extract}x32x32x3 uint8", threads, fl * us,
                     base / n_sample * us, base / n_sample / fl))  # fmt: skip
    fns = [F.hog_feature, F.color_histogram_hsv]
    fl = median_seconds(lambda: F.extract_features(rgb, fns), 3)
    per = median_seconds(
        lambda: cs231n_extract_features(
            rgb[:n_sample], [cs231n_hog_feature, cs231n_color_histogram_hsv]
        ),
        3,
    )
    base = per / n_sample * n_extract
    rows.append(("extract_features HOG + hue, total s (CS231n extrapolated)",
                 f"{n_extract}x32x32x3 uint8", threads, fl, base, base / fl))  # fmt: skip
    return rows


def main():
    info = fastloss.build_info()
    print(f"fastloss {info['version']}, ISA {info['isa_active']}, {info['max_threads']} threads")
    print("| operation | shape | threads | fastloss | baseline | ratio |")
    print("|---|---|---|---|---|---|")
    for op, shape, nt, fl, base, ratio in table():
        unit = "s" if "total" in op else "us"
        print(f"| {op} | {shape} | {nt} | {fl:.3g} {unit} | {base:.3g} {unit} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
