"""fastloss.features.BagOfWords against the NumPy composition in fastloss.reference, and
as a scikit-learn transformer."""

import itertools

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("sklearn")
import fastloss.features as F  # noqa: E402
from fastloss import reference as R  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.utils import estimator_checks as ec  # noqa: E402

BagOfWords = F.BagOfWords
RTOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-4, np.dtype(np.uint8): 1e-8}


def images(seed, n, h, w, colour, dtype=np.float64):
    """Smooth random pictures in 0..255 with noise: patches with structure, and no flat
    ones (every variance well above zero)."""
    rng = np.random.default_rng(seed)
    shape = (n, h, w, 3) if colour else (n, h, w)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    base = np.zeros(shape)
    for i in range(n):
        fx, fy, ph = rng.uniform(0.2, 1.2, 3)
        wave = 127 + 90 * np.sin(fx * xx + fy * yy + 6 * ph)
        base[i] = wave[..., None] * rng.uniform(0.5, 1.0, 3) if colour else wave
    x = np.clip(base + rng.normal(0, 25, shape), 0, 255)
    if np.dtype(dtype) == np.uint8:
        return np.round(x).astype(np.uint8)
    return x.astype(dtype)


def reference(bow, imgs):
    return R.bag_of_words(
        imgs, bow.codebook_, bow.mean_, bow.whitening_ if bow.whiten else None,
        patch_size=bow.patch_size, stride=bow.stride, encoding=bow.encoding,
        pooling=bow.pooling, contrast_eps=bow.contrast_eps,
    )


def hard_bounds(bow, imgs, tol):
    """Per (image, pooled feature): the count of patches whose nearest codeword is that
    word beyond doubt (lo) and the count of those for which it is within tol of the
    nearest (hi): an implementation that differs from the oracle in the last bits of the
    distances may pick any candidate. Squared distances are explicit sums of squared
    differences in float64 (no cancellation, no BLAS)."""
    P = R.bow_normalize(R.bow_patches(imgs, bow.patch_size, bow.stride), bow.contrast_eps)
    z = R.bow_whiten(P, bow.mean_, bow.whitening_ if bow.whiten else None)
    c = bow.codebook_
    d2 = np.stack([((z - c[k]) ** 2).sum(axis=-1) for k in range(len(c))], axis=-1)
    dmin = d2.min(axis=-1, keepdims=True)
    scale = (z * z).sum(axis=-1, keepdims=True) + (c * c).sum(axis=1).max()
    near = (d2 <= dmin + tol * scale).astype(np.float64)
    sure = near * (near.sum(axis=-1, keepdims=True) == 1)
    return R.bow_pool(sure, bow.pooling), R.bow_pool(near, bow.pooling), near


OPTIONS = list(itertools.product(["triangle", "hard"], ["quadrants", "sum"], [True, False]))


@pytest.fixture(scope="module")
def fitted():
    """One model per (colour, patch_size, stride, options), fitted on float64 images."""
    cache = {}

    def get(colour, patch_size, stride, encoding, pooling, whiten):
        key = (colour, patch_size, stride, encoding, pooling, whiten)
        if key not in cache:
            bow = BagOfWords(n_words=13, patch_size=patch_size, stride=stride,
                             encoding=encoding, pooling=pooling, whiten=whiten,
                             max_patches=3000, random_state=0)
            cache[key] = bow.fit(images(1, 12, 15, 13, colour))
        return cache[key]

    return get


@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("encoding,pooling,whiten", OPTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
@pytest.mark.parametrize("patch_size,stride", [(3, 1), (4, 2), (5, 3)])
def test_transform_matches_reference(fitted, colour, encoding, pooling, whiten, dtype,
                                     patch_size, stride):
    bow = fitted(colour, patch_size, stride, encoding, pooling, whiten)
    imgs = images(2, 9, 16, 19, colour, dtype)
    got = bow.transform(imgs)
    assert got.dtype == (np.float32 if dtype == np.float32 else np.float64)
    F_ = (4 if pooling == "quadrants" else 1) * 13
    assert got.shape == (9, F_)
    rtol = RTOL[np.dtype(dtype)]
    if encoding == "triangle":
        assert_close(got, reference(bow, imgs), rtol, "triangle")
        return
    lo, hi, near = hard_bounds(bow, imgs, 1e-5 if dtype == np.float32 else 1e-10)
    ambiguous = int((near.sum(axis=-1) > 1).sum())
    assert ambiguous <= near[..., 0].size // 50  # the check stays a check
    assert np.all(got >= lo) and np.all(got <= hi), (got - lo, hi - got)
    h = (16 - patch_size) // stride + 1
    w = (19 - patch_size) // stride + 1
    np.testing.assert_array_equal(got.reshape(9, -1, 13).sum(axis=(1, 2)), h * w)
    if ambiguous == 0:
        np.testing.assert_array_equal(got, reference(bow, imgs))


def test_hard_ties_take_the_lowest_index():
    """Two equal codewords: every patch nearest to them goes to the first."""
    bow = BagOfWords(n_words=4, patch_size=2, encoding="hard", pooling="sum", whiten=False,
                     random_state=0).fit(images(3, 4, 8, 8, False))
    bow.codebook_[2] = bow.codebook_[1]
    imgs = images(4, 5, 8, 8, False)
    got = bow.transform(imgs)
    assert np.all(got[:, 2] == 0) and got[:, 1].sum() > 0
    lo, hi, _ = hard_bounds(bow, imgs, 1e-10)
    hi[:, 2] = 0
    assert np.all(got >= lo * (np.arange(4) != 1)) and np.all(got <= hi)


def test_triangle_by_hand():
    """One 2x2 gray image, one patch, no whitening, two codewords: by hand."""
    x = np.array([[[0.0, 2.0], [4.0, 6.0]]])
    bow = BagOfWords(n_words=2, patch_size=2, whiten=False, pooling="sum", contrast_eps=1.0)
    bow.fit(np.concatenate([x, x[:, ::-1], x[:, :, ::-1]]))
    bow.codebook_ = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    # mean 3, variance 5: normalised (-3, -1, 1, 3) / sqrt(6); |z|^2 = 20 / 6.
    z2 = 20 / 6
    d0, d1 = np.sqrt(z2), np.sqrt(z2 + 4)  # z . (1, 1, 1, 1) = 0
    want = [max(0.0, (d0 + d1) / 2 - d0), max(0.0, (d0 + d1) / 2 - d1)]
    np.testing.assert_allclose(bow.transform(x)[0], want, rtol=1e-14)
    bow.set_params(encoding="hard")
    np.testing.assert_array_equal(bow.transform(x)[0], [1.0, 0.0])


def test_quadrants_by_hand():
    """Hard codes of a 5x5 image's 3x3 positions (patch 3): rows [0, 1), [1, 3) by
    columns [0, 1), [1, 3) hold 1, 2, 2 and 4 patches."""
    bow = BagOfWords(n_words=3, patch_size=3, encoding="hard", random_state=0)
    bow.fit(images(5, 6, 8, 8, False))
    got = bow.transform(images(6, 1, 5, 5, False))
    np.testing.assert_array_equal(got.reshape(4, 3).sum(axis=1), [1, 2, 2, 4])


def test_threads_views_and_inputs_untouched(fitted):
    bow = fitted(True, 3, 1, "triangle", "quadrants", True)
    imgs = images(7, 40, 20, 18, True)
    keep = imgs.copy()
    base = bow.set_params(n_threads=1).transform(imgs)
    for nt in (2, 3, 7, -1, None):
        np.testing.assert_array_equal(bow.set_params(n_threads=nt).transform(imgs), base)
    np.testing.assert_array_equal(imgs, keep)
    view = np.asfortranarray(imgs[:, ::-1, ::2])
    np.testing.assert_array_equal(bow.transform(view), bow.transform(view.copy()))
    np.testing.assert_array_equal(bow.transform(imgs[5:9]), base[5:9])
    strided = np.lib.stride_tricks.as_strided(imgs, (40, 10, 9, 3),
                                              tuple(s * k for s, k in zip(imgs.strides,
                                                                          (1, 2, 2, 1))))
    np.testing.assert_array_equal(bow.transform(strided), bow.transform(strided.copy()))
    bow.set_params(n_threads=None)


def test_dtypes_and_integer_images(fitted):
    bow = fitted(False, 3, 1, "triangle", "quadrants", True)
    u8 = images(8, 4, 10, 10, False, np.uint8)
    want = bow.transform(u8.astype(np.float64))
    for x in (u8, u8.astype(np.int16), u8.astype(np.int64), u8.astype(np.float16),
              u8.tolist()):
        got = bow.transform(x)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)
    got32 = bow.transform(u8.astype(np.float32))
    assert got32.dtype == np.float32
    assert_close(got32, want, 1e-4)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 4), h=st.integers(2, 11), w=st.integers(2, 11),
    colour=st.booleans(), patch=st.integers(1, 4), stride=st.integers(1, 4),
    K=st.integers(1, 40), hard=st.booleans(), quadrants=st.booleans(),
    whiten=st.booleans(), f32=st.booleans(), seed=st.integers(0, 2**16),
)
def test_random_models_match_reference(n, h, w, colour, patch, stride, K, hard, quadrants,
                                       whiten, f32, seed):
    """Any model (random codebook, mean and symmetric whitening set by hand), any shapes:
    the reference's numbers (hard: within the bounds)."""
    patch = min(patch, h, w)
    rng = np.random.default_rng(seed)
    C = 3 if colour else 1
    D = patch * patch * C
    bow = BagOfWords(n_words=K, patch_size=patch, stride=stride,
                     encoding="hard" if hard else "triangle",
                     pooling="quadrants" if quadrants else "sum", whiten=whiten)
    A = rng.normal(size=(D, D))
    bow.whitening_ = (A + A.T) / 2 if whiten else np.eye(D)
    bow.mean_ = rng.normal(0, 0.3, D) if whiten else np.zeros(D)
    bow.codebook_ = rng.normal(0, 1, (K, D))
    bow.patch_dim_, bow.n_channels_ = D, C
    imgs = images(seed, n, h, w, colour, np.float32 if f32 else np.float64)
    got = bow.transform(imgs)
    assert got.shape == (n, (4 if quadrants else 1) * K)
    assert got.dtype == (np.float32 if f32 else np.float64)
    if n == 0:
        return
    if not hard:
        assert_close(got, reference(bow, imgs), 1e-4 if f32 else 1e-8)
    else:
        lo, hi, _ = hard_bounds(bow, imgs, 1e-5 if f32 else 1e-10)
        assert np.all(got >= lo) and np.all(got <= hi)


def test_fit_is_kmeans_on_whitened_patches():
    """All the patches (fewer than max_patches): normalised, ZCA-whitened, clustered by
    scikit-learn's KMeans with the seed drawn from random_state."""
    imgs = images(9, 10, 9, 9, True)
    bow = BagOfWords(n_words=6, patch_size=3, random_state=5).fit(imgs)
    P = R.bow_normalize(R.bow_patches(imgs, 3), 10.0).reshape(-1, 27)
    mean = P.mean(axis=0)
    cov = np.cov(P, rowvar=False)
    lam, V = np.linalg.eigh(cov)
    Z = V @ np.diag(1 / np.sqrt(lam + 0.1)) @ V.T
    assert_close(bow.mean_, mean, 1e-12)
    assert_close(bow.whitening_, Z, 1e-9)
    assert np.array_equal(bow.whitening_, bow.whitening_.T)
    # Whitened: the covariance becomes V diag(lam / (lam + 0.1)) V^T.
    assert_close(np.cov((P - mean) @ bow.whitening_, rowvar=False),
                 V @ np.diag(lam / (lam + 0.1)) @ V.T, 1e-8)
    seed = np.random.RandomState(5).randint(2**31 - 1)
    km = KMeans(n_clusters=6, n_init=1, random_state=seed).fit((P - mean) @ bow.whitening_)
    assert_close(bow.codebook_, km.cluster_centers_, 1e-8)
    assert bow.codebook_.shape == (6, 27) and bow.patch_dim_ == 27 and bow.n_channels_ == 3


def test_fit_samples_at_most_max_patches_and_is_reproducible():
    imgs = images(10, 30, 12, 12, False)
    a = BagOfWords(n_words=5, max_patches=200, random_state=3).fit(imgs)
    b = BagOfWords(n_words=5, max_patches=200, random_state=3).fit(imgs)
    c = BagOfWords(n_words=5, max_patches=200, random_state=4).fit(imgs)
    np.testing.assert_array_equal(a.codebook_, b.codebook_)
    assert not np.array_equal(a.codebook_, c.codebook_)
    # The whitening of 200 of the 3000 patches differs from that of all of them.
    full = BagOfWords(n_words=5, max_patches=10**6, random_state=3).fit(imgs)
    assert not np.allclose(a.mean_, full.mean_)
    no = BagOfWords(n_words=5, whiten=False, random_state=0).fit(imgs)
    np.testing.assert_array_equal(no.mean_, 0)
    np.testing.assert_array_equal(no.whitening_, np.eye(9))


def test_fit_transform_and_feature_names():
    imgs = images(11, 6, 10, 10, False)
    bow = BagOfWords(n_words=4, random_state=0)
    np.testing.assert_array_equal(bow.fit_transform(imgs), bow.fit(imgs).transform(imgs))
    names = bow.get_feature_names_out()
    assert len(names) == 16 and names[0] == "top_left_word0" and names[-1] == "bottom_right_word3"
    assert list(bow.set_params(pooling="sum").get_feature_names_out()) == [
        "word0", "word1", "word2", "word3"]
    out = bow.set_output(transform="default").transform(imgs)
    assert isinstance(out, np.ndarray) and out.shape == (6, 4)


def test_in_a_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    a, b = images(12, 40, 10, 10, False), images(13, 40, 10, 10, False)
    b = np.clip(b + rng.normal(0, 60, b.shape), 0, 255)  # noisier class
    X, y = np.concatenate([a, b]), np.repeat([0, 1], 40)
    pipe = make_pipeline(BagOfWords(n_words=8, random_state=0), StandardScaler(),
                         LogisticRegression(max_iter=500))
    assert pipe.fit(X, y).score(X, y) > 0.9


@pytest.mark.parametrize("check", [
    ec.check_parameters_default_constructible,
    ec.check_no_attributes_set_in_init,
    ec.check_get_params_invariance,
    ec.check_set_params,
    ec.check_dont_overwrite_parameters,
])
def test_sklearn_checks_that_apply(check):
    """The estimator checks that do not feed 2-D tabular data (an image transformer
    rejects that)."""
    if check is ec.check_dont_overwrite_parameters:
        est = BagOfWords(n_words=3, random_state=0)
        params = est.get_params()
        est.fit(images(14, 3, 8, 8, False))
        assert est.get_params() == params
        return
    check("BagOfWords", BagOfWords())


def test_clone_unfitted_and_refit():
    bow = BagOfWords(n_words=3, random_state=0)
    with pytest.raises(NotFittedError):
        bow.transform(images(15, 2, 8, 8, False))
    with pytest.raises(NotFittedError):
        bow.get_feature_names_out()
    bow.fit(images(15, 3, 8, 8, False))
    c = clone(bow)
    assert not hasattr(c, "codebook_") and c.get_params() == bow.get_params()
    bow.fit(images(16, 3, 8, 8, True))  # refit on colour
    assert bow.transform(images(17, 2, 8, 8, True)).shape == (2, 12)


def test_bad_input():
    gray = images(18, 4, 8, 8, False)
    for kw, exc, msg in [
        ({"n_words": 0}, ValueError, "n_words"),
        ({"n_words": 2.5}, TypeError, "n_words"),
        ({"patch_size": 0}, ValueError, "patch_size"),
        ({"stride": True}, TypeError, "stride"),
        ({"encoding": "soft"}, ValueError, "encoding"),
        ({"pooling": "max"}, ValueError, "pooling"),
        ({"whiten": "yes"}, TypeError, "whiten"),
        ({"contrast_eps": 0.0}, ValueError, "contrast_eps"),
        ({"contrast_eps": np.nan}, ValueError, "contrast_eps"),
        ({"max_patches": 0}, ValueError, "max_patches"),
        ({"patch_size": 9}, ValueError, "patch_size=9"),
        ({"n_words": 1000}, ValueError, "n_words=1000"),
        ({"n_threads": 0}, ValueError, "n_threads"),
    ]:
        with pytest.raises(exc, match=msg):
            b = BagOfWords(**kw).fit(gray)
            b.transform(gray)
    bow = BagOfWords(n_words=3, random_state=0).fit(gray)
    with pytest.raises(ValueError, match="channel"):
        bow.transform(images(18, 2, 8, 8, True))
    with pytest.raises(ValueError, match="fit again"):
        bow.set_params(patch_size=2).transform(gray)
    bow.set_params(patch_size=3)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        bow.transform(gray[0])
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        bow.transform(np.zeros((2, 8, 8, 4)))
    with pytest.raises(TypeError, match="images"):
        bow.transform(gray > 100)
    with pytest.raises(TypeError, match="images"):
        bow.transform(gray.astype(complex))
    bad = gray.copy()
    bad[2, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"images\[2, 3, 4\] is not finite"):
        bow.transform(bad)
    with pytest.raises(ValueError, match="not finite"):
        BagOfWords(n_words=3).fit(np.where(bad > 0, np.inf, bad))
    with pytest.raises(ValueError, match="smaller than patch_size"):
        bow.transform(gray[:, :2, :2])
    with pytest.raises(ValueError, match="at least one image"):
        BagOfWords().fit(gray[:0])
    assert bow.transform(gray[:0]).shape == (0, 12)


def test_extract_features_runs_a_fitted_bag_of_words():
    imgs = images(19, 5, 32, 32, True, np.uint8)
    bow = BagOfWords(n_words=7, patch_size=6, random_state=0).fit(imgs)
    got = F.extract_features(imgs, [F.hog_feature, bow, bow.transform])
    hog = F.extract_features(imgs, [F.hog_feature])
    np.testing.assert_array_equal(got, np.hstack([hog, bow.transform(imgs), bow.transform(imgs)]))
    f32 = F.extract_features(imgs.astype(np.float32), [bow], n_threads=1)
    assert f32.dtype == np.float64
    assert_close(f32, bow.transform(imgs), 1e-4)
    assert F.extract_features(imgs[:0], [bow]).shape == (0, 28)
    with pytest.raises(NotFittedError):
        F.extract_features(imgs, [BagOfWords()])
