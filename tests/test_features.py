"""fastloss.features against its oracles: scikit-image's hog, CS231n's NumPy feature
functions (tests/cs231n_features.py), matplotlib's rgb_to_hsv + np.histogram; on scikit-learn's
sample photographs (grayscale, downscaled, cropped) and on random images."""

import functools
import os
import subprocess
import sys
import textwrap

import fastloss.features as F
import numpy as np
import pytest
from helpers import assert_close

skimage_feature = pytest.importorskip("skimage.feature")
sk_datasets = pytest.importorskip("sklearn.datasets")
pytest.importorskip("matplotlib.colors")
pytest.importorskip("scipy.ndimage")
from cs231n_features import (
    cs231n_color_histogram_hsv,
    cs231n_extract_features,
    cs231n_hog_feature,
    cs231n_rgb2gray,
    skimage_hog,
)

BLOCK_NORMS = ["L1", "L1-sqrt", "L2", "L2-Hys"]
HOG_ATOL = 1e-6  # the contract: skimage's numbers within 1e-6


# ---------------------------------------------------------------- data


@pytest.fixture(scope="module")
def photos():
    """The two sample photographs (427 x 640 x 3 uint8)."""
    return [np.asarray(p) for p in sk_datasets.load_sample_images().images]


@pytest.fixture(scope="module")
def gray_photos(photos):
    """Grayscale (CS231n weights, rounded to uint8) and downscaled by 7: odd sizes 61 x 92."""
    return [np.round(cs231n_rgb2gray(p[::7, ::7]) / 1.031).astype(np.uint8) for p in photos]


@pytest.fixture(scope="module")
def crops(photos):
    """32 x 32 x 3 uint8 crops of the photographs (CIFAR-sized), some downscaled."""
    rng = np.random.default_rng(0)
    out = []
    for p in photos:
        for step in (1, 1, 2, 4, 8):
            q = p[::step, ::step]
            r, c = rng.integers(0, q.shape[0] - 32), rng.integers(0, q.shape[1] - 32)
            out.append(np.ascontiguousarray(q[r : r + 32, c : c + 32]))
    return np.stack(out)


def random_images(seed, shape, dtype):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(np.uint8)
    return (rng.random(shape) * 255).astype(dtype)


def sk_hog(image, **kw):
    return skimage_hog(image, **kw)


# ---------------------------------------------------------------- hog vs scikit-image

CELLS_BLOCKS = [
    ((8, 8), (3, 3)),
    ((8, 8), (1, 1)),
    ((6, 4), (2, 3)),
    ((5, 7), (2, 2)),
    ((3, 3), (3, 2)),
]


@pytest.mark.parametrize("block_norm", BLOCK_NORMS)
@pytest.mark.parametrize("ppc,cpb", CELLS_BLOCKS)
def test_hog_matches_skimage_on_photos(gray_photos, block_norm, ppc, cpb):
    for img in gray_photos:
        for im in (img, img.astype(np.float64) / 255, img.astype(np.float32)):
            kw = {"pixels_per_cell": ppc, "cells_per_block": cpb, "block_norm": block_norm}
            got, want = F.hog(im, **kw), sk_hog(im, **kw)
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=0, atol=HOG_ATOL)


@pytest.mark.parametrize("block_norm", BLOCK_NORMS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_hog_matches_skimage_random_odd_sizes(block_norm, dtype):
    rng = np.random.default_rng(1)
    for t in range(12):
        H, W = rng.integers(9, 41, 2)
        ppc = tuple(int(x) for x in rng.integers(1, 8, 2))
        cpb = tuple(int(x) for x in rng.integers(1, 4, 2))
        if H // ppc[0] < cpb[0] or W // ppc[1] < cpb[1]:
            continue
        im = random_images(t, (H, W), dtype)
        kw = {
            "orientations": int(rng.integers(1, 13)),
            "pixels_per_cell": ppc,
            "cells_per_block": cpb,
            "block_norm": block_norm,
            "transform_sqrt": bool(t % 2),
        }
        np.testing.assert_allclose(F.hog(im, **kw), sk_hog(im, **kw), rtol=0, atol=HOG_ATOL)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scikit-image's inf - inf at 1e200
@pytest.mark.parametrize("orientations", [2, 3, 4, 6, 8, 9, 12, 36])
def test_hog_gradients_on_bin_edges(orientations):
    """Small integer gradients put many angles exactly on bin edges (45, 90, 135 degrees...),
    and signed zeros and tiny/huge scales test the rounding NumPy's formula does."""
    rng = np.random.default_rng(orientations)
    for scale in (1.0, 1e-200, 1e200):
        im = rng.integers(0, 4, (24, 24)).astype(np.float64) * scale
        im[rng.random(im.shape) < 0.1] = -0.0
        kw = {"orientations": orientations, "pixels_per_cell": (4, 4), "cells_per_block": (2, 2)}
        for x in (im, im.astype(np.float32)):
            np.testing.assert_allclose(F.hog(x, **kw), sk_hog(x, **kw), rtol=0, atol=HOG_ATOL)
    u8 = rng.integers(0, 3, (24, 24)).astype(np.uint8)
    kw = {"orientations": orientations, "pixels_per_cell": (4, 4), "cells_per_block": (1, 1)}
    np.testing.assert_allclose(F.hog(u8, **kw), sk_hog(u8, **kw), rtol=0, atol=HOG_ATOL)


def test_hog_nearly_horizontal_gradients():
    """Angles within 1e-15 of 0 / 180 degrees, where NumPy's remainder rounds to 180."""
    rng = np.random.default_rng(3)
    ramp = np.outer(np.ones(16), np.arange(16.0))
    for noise in (1e-17, 1e-14, 1e-11):
        im = ramp + rng.standard_normal(ramp.shape) * noise
        for x in (im, im.T.copy()):
            kw = {"pixels_per_cell": (4, 4), "cells_per_block": (1, 1), "block_norm": "L1"}
            np.testing.assert_allclose(F.hog(x, **kw), sk_hog(x, **kw), rtol=0, atol=HOG_ATOL)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_hog_non_finite_like_skimage():
    rng = np.random.default_rng(4)
    im = rng.random((20, 20))
    for value in (np.nan, np.inf, -np.inf):
        im[rng.random(im.shape) < 0.02] = value
    for kw in ({"block_norm": "L1"}, {"block_norm": "L2-Hys", "transform_sqrt": True}):
        kw.update(pixels_per_cell=(4, 4), cells_per_block=(2, 2))
        np.testing.assert_allclose(F.hog(im, **kw), sk_hog(im, **kw), rtol=0, atol=HOG_ATOL)


def test_hog_flat_images():
    for im in (np.zeros((16, 16)), np.full((16, 16), 7, np.uint8)):
        np.testing.assert_array_equal(
            F.hog(im, pixels_per_cell=(4, 4)), sk_hog(im, pixels_per_cell=(4, 4))
        )


@pytest.mark.parametrize("cpb", [(1, 1), (2, 3), (3, 3)])
def test_hog_feature_vector_false_shape(gray_photos, cpb):
    im = gray_photos[0]
    got = F.hog(im, cells_per_block=cpb, feature_vector=False)
    want = sk_hog(im, cells_per_block=cpb, feature_vector=False)
    assert got.shape == want.shape == (61 // 8 - cpb[0] + 1, 92 // 8 - cpb[1] + 1, *cpb, 9)
    np.testing.assert_allclose(got, want, rtol=0, atol=HOG_ATOL)


def test_hog_batch_rows_are_hog(crops):
    gray = np.ascontiguousarray(crops[..., 1])
    for kw in ({}, {"block_norm": "L1", "pixels_per_cell": (4, 4), "cells_per_block": (2, 2)}):
        got = F.hog_batch(gray, **kw)
        assert got.shape == (len(gray), F.hog(gray[0], **kw).size)
        for i in (0, 3, len(gray) - 1):
            np.testing.assert_allclose(got[i], sk_hog(gray[i], **kw), rtol=0, atol=HOG_ATOL)
            np.testing.assert_array_equal(got[i], F.hog(gray[i], **kw))
    blocks = F.hog_batch(gray, feature_vector=False)
    assert blocks.shape == (len(gray), 2, 2, 3, 3, 9)


def test_hog_batch_threads_views_and_inputs_untouched():
    imgs = random_images(5, (300, 24, 40), np.float32)
    keep = imgs.copy()
    one = F.hog_batch(imgs, pixels_per_cell=(4, 4), n_threads=1)
    two = F.hog_batch(imgs, pixels_per_cell=(4, 4), n_threads=2)
    np.testing.assert_array_equal(one, two)
    assert one.dtype == np.float32
    np.testing.assert_array_equal(imgs, keep)
    # non-contiguous, reversed, Fortran-ordered and read-only views read in place
    view = imgs.transpose(0, 2, 1)[:, ::-1, :]
    ro = np.asfortranarray(view)
    ro.setflags(write=False)
    want = np.stack([sk_hog(x, pixels_per_cell=(4, 4)) for x in view[:4]])
    for x in (view, ro):
        np.testing.assert_allclose(F.hog_batch(x[:4], pixels_per_cell=(4, 4)), want, atol=HOG_ATOL)


def test_hog_dtypes():
    im = random_images(6, (24, 24), np.uint8)
    assert F.hog(im).dtype == np.float64
    assert F.hog(im.astype(np.float32)).dtype == np.float32
    # other integer types are read as float64, like uint8
    np.testing.assert_array_equal(F.hog(im.astype(np.int16)), F.hog(im))
    np.testing.assert_array_equal(F.hog(im.tolist()), F.hog(im))


# ---------------------------------------------------------------- CS231n hog_feature


def test_hog_feature_matches_cs231n(crops):
    for im in crops:
        for x in (im, im.astype(np.float32), im.astype(np.float64)):
            got = F.hog_feature(x)
            assert got.shape == (144,) and got.dtype == np.float64
            assert_close(got, cs231n_hog_feature(x), 1e-12, "hog_feature")
        gray = im[..., 0].astype(np.float64)
        assert_close(F.hog_feature(gray), cs231n_hog_feature(gray), 1e-12, "gray hog_feature")


@pytest.mark.parametrize("size", [8, 12, 36, 44])
def test_hog_feature_other_sizes(photos, size):
    im = np.ascontiguousarray(photos[1][100 : 100 + size, 200 : 200 + size])
    got = F.hog_feature(im)
    assert got.shape == ((size // 8) ** 2 * 9,)
    assert_close(got, cs231n_hog_feature(im), 1e-12, "hog_feature")


def test_hog_feature_flat_regions():
    """Equal neighbours make gx exactly 0, where CS231n's + 1e-15 decides the angle."""
    rng = np.random.default_rng(7)
    im = (rng.integers(0, 3, (32, 32, 3)) * 100).astype(np.uint8)
    im[:, :16] = im[:, :1]
    assert_close(F.hog_feature(im), cs231n_hog_feature(im), 1e-12, "hog_feature")


def test_hog_feature_grey_tie_at_the_last_bit():
    """(0, 127, 0) and (127, 0, 254) have the same grey level in exact arithmetic, 74.549;
    with each product rounded the second is 74.549 and the first 74.54899999999999, so the
    x gradient between them is 1.4e-14, not 0, and with CS231n's + 1e-15 the gradient at
    row 3, column 3 (whose y gradient is -74.549 towards the black rows) falls in bin 0.
    One gradient of magnitude 74.549 in bin 0 and four in bin 4 (90 degrees) of the 8 x 8
    cell: 74.549 / 64 and 4 * 74.549 / 64. (A BLAS np.dot that fuses the multiply-adds
    makes both grey levels 74.54899999999999 and leaves bin 0 empty.)"""
    im = np.zeros((8, 8, 3), np.uint8)
    im[:] = (0, 127, 0)
    im[:, 4:] = (127, 0, 254)
    im[4:, :4] = (0, 0, 0)
    want = np.zeros(9)
    want[0], want[4] = 74.549 / 64, 4 * 74.549 / 64
    for x in (im, im.astype(np.float32), im.astype(np.float64)):
        got = F.hog_feature(x)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
        assert_close(got, cs231n_hog_feature(x), 1e-12, "hog_feature")
    np.testing.assert_allclose(F.extract_features(im[None], [F.hog_feature])[0], want,
                               rtol=1e-12, atol=0)


def test_hog_gradient_on_a_bin_edge():
    """The gradient (sqrt(60), sqrt(180)) is 30 degrees in exact arithmetic, the edge of
    bins 0 and 1 of 6; in double, 3 * 60' < 180' (the rounded roots squared), so its angle
    is just below 30: bin 0, as math.atan2 gives (29.999999999999996), at every level."""
    im = np.array([[0, 0, 0], [0, 0, 180], [0, 60, 0]], np.float64)
    kw = dict(orientations=6, pixels_per_cell=(3, 3), cells_per_block=(1, 1),
              block_norm="L1", transform_sqrt=True)
    from fractions import Fraction

    assert 3 * Fraction(np.sqrt(60.0)) ** 2 < Fraction(np.sqrt(180.0)) ** 2
    got = F.hog(im, **kw)
    assert got[0] > 0.99 and not got[1:].any(), got
    np.testing.assert_allclose(got, sk_hog(im, **kw), rtol=0, atol=HOG_ATOL)
    np.testing.assert_array_equal(F.hog_batch(im[None], **kw)[0], got)


def test_hog_feature_non_square_layout(crops):
    """CS231n's layout (cell column, cell row, orientation) for sizes its code rejects: the
    oracle sees the image edge-padded to a square, which leaves its gradients unchanged."""
    for im in (crops[0][:, :24], crops[1][:21, :]):
        H, W = im.shape[:2]
        got = F.hog_feature(im).reshape(W // 8, H // 8, 9)
        square = np.pad(im, ((0, 32 - H), (0, 32 - W), (0, 0)), mode="edge")
        want = cs231n_hog_feature(square).reshape(4, 4, 9)[: W // 8, : H // 8]
        assert_close(got, want, 1e-12, "non-square hog_feature")


# ---------------------------------------------------------------- hue histogram


HUE_ARGS = [
    {},
    {"nbin": 6},  # bin edges on the pure hues (multiples of 42.5)
    {"nbin": 12},
    {"nbin": 3, "normalized": False},
    {"nbin": 5, "xmin": 30, "xmax": 255},
    {"nbin": 8, "xmax": 300},
]

PURE = np.array(
    [[255, 0, 0], [255, 255, 0], [0, 255, 0], [0, 255, 255], [0, 0, 255], [255, 0, 255],
     [255, 128, 0], [128, 128, 128], [0, 0, 0], [255, 255, 255], [255, 0, 1], [1, 0, 255]],
    np.uint8,
)  # fmt: skip


@pytest.mark.parametrize("kw", HUE_ARGS)
def test_color_histogram_matches_matplotlib_numpy(crops, kw):
    rng = np.random.default_rng(8)
    images = list(crops[:4]) + [
        random_images(9, (7, 9, 3), np.uint8),
        PURE[rng.integers(0, len(PURE), (6, 5))],
        rng.integers(0, 4, (6, 6, 3)) * 85,
    ]
    for im in images:
        for x in (im.astype(np.uint8), im.astype(np.float32), im.astype(np.float64)):
            got = F.color_histogram_hsv(x, **kw)
            assert got.dtype == np.float64 and got.shape == (kw.get("nbin", 10),)
            np.testing.assert_array_equal(got, cs231n_color_histogram_hsv(x, **kw))
    x = random_images(10, (5, 6, 3), np.float32)  # float32 hue arithmetic, as NumPy does it
    np.testing.assert_array_equal(F.color_histogram_hsv(x), cs231n_color_histogram_hsv(x))


def test_color_histogram_gray_pixels_and_nan():
    im = np.full((4, 4, 3), 77, np.uint8)
    want = np.zeros(10)
    want[0] = 1.0  # gray pixels have hue 0
    np.testing.assert_array_equal(F.color_histogram_hsv(im), want)
    f = random_images(11, (4, 4, 3), np.float64)
    f[1, 1] = np.nan  # rgb_to_hsv gives a NaN pixel hue 0
    np.testing.assert_array_equal(F.color_histogram_hsv(f), cs231n_color_histogram_hsv(f))


def test_color_histogram_range_errors():
    im = random_images(12, (4, 5, 3), np.float64)
    im[2, 3, 1] = 256
    with pytest.raises(ValueError, match=r"im\[2, 3\]"):
        F.color_histogram_hsv(im)
    with pytest.raises(ValueError):
        cs231n_color_histogram_hsv(im)
    np.testing.assert_array_equal(  # in range for a larger xmax
        F.color_histogram_hsv(im, xmax=300), cs231n_color_histogram_hsv(im, xmax=300)
    )
    im[2, 3, 1] = -1
    with pytest.raises(ValueError, match=r"im\[2, 3\]"):
        F.color_histogram_hsv(im)


# ---------------------------------------------------------------- extract_features


def test_extract_features_cs231n_pipeline(crops):
    imgs = crops
    fns = [F.hog_feature, F.color_histogram_hsv]
    got = F.extract_features(imgs, fns)
    assert got.shape == (len(imgs), 144 + 10) and got.dtype == np.float64
    want = cs231n_extract_features(imgs, [cs231n_hog_feature, cs231n_color_histogram_hsv])
    assert_close(got, want, 1e-12, "extract_features")


def test_extract_features_plain_callables_and_partials(crops):
    imgs = crops.astype(np.float32)
    nbin = 7
    fns = [
        F.hog_feature,
        lambda img: F.color_histogram_hsv(img, nbin=nbin),  # the CS231n notebook's form
        functools.partial(F.color_histogram_hsv, nbin=nbin),  # recognised, batched
        lambda img: img.mean(axis=(0, 1)),
    ]
    got = F.extract_features(imgs, fns, n_threads=2)
    assert got.shape == (len(imgs), 144 + 2 * nbin + 3)
    np.testing.assert_array_equal(got[:, 144 : 144 + nbin], got[:, 144 + nbin : 144 + 2 * nbin])
    want = cs231n_extract_features(
        imgs,
        [cs231n_hog_feature, functools.partial(cs231n_color_histogram_hsv, nbin=nbin), fns[3]],
    )
    assert_close(np.delete(got, np.s_[144 : 144 + nbin], axis=1), want, 1e-12, "features")


def test_extract_features_grayscale_and_squeeze(crops):
    gray = crops[..., :1].astype(np.float64)  # (N, 32, 32, 1): imgs[i].squeeze() is 2-D
    got = F.extract_features(gray, [F.hog_feature])
    assert_close(got, cs231n_extract_features(gray, [cs231n_hog_feature]), 1e-12, "gray")


def test_extract_features_verbose_progress(crops, capsys, monkeypatch):
    imgs = np.concatenate([crops] * 120)[:1100]
    monkeypatch.setitem(sys.modules, "tqdm", None)  # no tqdm: the fallback prints
    F.extract_features(imgs, [F.color_histogram_hsv], verbose=True)
    out = capsys.readouterr().out
    assert "Done extracting features for 1000 / 1100 images" in out


def test_extract_features_empty_and_errors(crops):
    assert F.extract_features(crops[:0], [F.hog_feature, F.color_histogram_hsv]).shape == (0, 154)
    with pytest.raises(ValueError, match="1-D"):
        F.extract_features(crops[:2], [lambda im: im])
    with pytest.raises(TypeError, match=r"feature_fns\[1\]"):
        F.extract_features(crops[:2], [F.hog_feature, "hog"])
    bad = crops[:3].astype(np.float64)
    bad[2, 5, 6, 0] = 400
    with pytest.raises(ValueError, match=r"imgs\[2\]\[5, 6\]"):
        F.extract_features(bad, [F.hog_feature, F.color_histogram_hsv])
    with pytest.raises(ValueError, match="RGB"):
        F.extract_features(crops[..., 0], [F.color_histogram_hsv])


def test_extract_features_inputs_untouched(crops):
    imgs = crops.astype(np.float64)[:, ::-1]
    keep = imgs.copy()
    F.extract_features(imgs, [F.hog_feature, F.color_histogram_hsv])
    np.testing.assert_array_equal(imgs, keep)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: F.hog(np.zeros((16, 16), bool)), TypeError, "image"),
        (lambda: F.hog(np.zeros((16, 16), complex)), TypeError, "image"),
        (lambda: F.hog(np.zeros((16, 16, 3))), ValueError, r"2-D.*\(16, 16, 3\)"),
        (lambda: F.hog(np.zeros((16, 16)), block_norm="L3"), ValueError, "block_norm"),
        (lambda: F.hog(np.zeros((16, 16)), pixels_per_cell=8), TypeError, "pixels_per_cell"),
        (lambda: F.hog(np.zeros((16, 16)), orientations=0), ValueError, "orientations"),
        (lambda: F.hog(np.zeros((16, 16)), orientations=9.0), TypeError, "orientations"),
        (lambda: F.hog(np.zeros((16, 16))), ValueError, "too small"),
        (lambda: F.hog(np.zeros((32, 32)), transform_sqrt=1), TypeError, "transform_sqrt"),
        (lambda: F.hog_batch(np.zeros((32, 32))), ValueError, r"\(N, H, W\)"),
        (lambda: F.hog_batch(np.zeros((2, 32, 32)), n_threads=0), ValueError, "n_threads"),
        (lambda: F.hog_feature(np.zeros((4, 32, 32, 3))), ValueError, "im"),
        (lambda: F.hog_feature(np.zeros((32, 32, 2))), ValueError, "RGB"),
        (lambda: F.hog_feature(np.zeros((6, 32))), ValueError, "8 x 8"),
        (lambda: F.hog_feature(np.zeros((32, 32), bool)), TypeError, "im"),
        (lambda: F.color_histogram_hsv(np.zeros((32, 32))), ValueError, "RGB"),
        (lambda: F.color_histogram_hsv(np.zeros((8, 8, 3)), nbin=0), ValueError, "nbin"),
        (lambda: F.color_histogram_hsv(np.zeros((8, 8, 3)), xmax=0), ValueError, "xmax"),
        (lambda: F.color_histogram_hsv(np.zeros((8, 8, 3)), xmin=255), ValueError, "xmin"),
        (lambda: F.extract_features(np.zeros((2, 8, 8, 3)), F.hog_feature), TypeError, "sequence"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------- packaging and ISA levels


def _run(code, **env):
    full = dict(os.environ, **env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full,
        capture_output=True,
        text=True,
        check=False,
    )


def test_no_test_oracles_imported():
    r = _run(
        """
        import sys, fastloss.features
        bad = [m for m in ("skimage", "matplotlib", "scipy") if m in sys.modules]
        assert not bad, bad
        """
    )
    assert r.returncode == 0, r.stderr


def test_baseline_isa_matches_skimage():
    """The kernels compiled without AVX2/FMA (FASTLOSS_CPU=baseline) give the same numbers."""
    r = _run(
        """
        import sys
        sys.path.insert(0, {tests!r})
        import numpy as np, fastloss, fastloss.features as F
        from cs231n_features import skimage_hog as hog
        assert fastloss.build_info()["isa_active"] == "baseline"
        rng = np.random.default_rng(0)
        for t in range(20):
            im = rng.integers(0, 4 if t % 2 else 256, (23, 30)).astype(np.uint8)
            kw = dict(orientations=4 + t % 6, pixels_per_cell=(4, 5), cells_per_block=(2, 2),
                      block_norm=["L1", "L1-sqrt", "L2", "L2-Hys"][t % 4])
            np.testing.assert_allclose(F.hog(im, **kw), hog(im, **kw), rtol=0, atol=1e-6)
        """.format(tests=os.path.dirname(os.path.abspath(__file__))),
        FASTLOSS_CPU="baseline",
    )
    assert r.returncode == 0, r.stderr


def test_extract_features_ragged_list_names_imgs():
    with pytest.raises(ValueError, match="imgs must be images of one shape"):
        F.extract_features([np.zeros((8, 8, 3)), np.zeros((9, 9, 3))], [F.hog_feature])
