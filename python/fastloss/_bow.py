"""``fastloss.features.BagOfWords``: Coates & Ng's single-layer k-means features.

Fitting is NumPy and scikit-learn (a random sample of patches, contrast normalisation,
ZCA whitening, ``sklearn.cluster.KMeans``); encoding is one threaded C++ kernel over the
whole stack (``_core.bow_encode``). This module imports scikit-learn; ``import fastloss``
does not (``fastloss.features.BagOfWords`` loads it on first use).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _core
from . import _validate as v
from .reference import bow_normalize

__all__ = ["BagOfWords"]

_ENCODINGS = {"triangle": 0, "hard": 1}
_POOLINGS = {"quadrants": 0, "sum": 1}
_QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")
_ZCA_REG = 0.1  # added to the covariance's eigenvalues (Coates & Ng)
_CHECK_CHUNK = 1 << 20  # values per chunk of the finiteness check


def _int(x, name, lo=1):
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {v._show(x)}")
    if not lo <= x <= v.INT_MAX:
        raise ValueError(f"{name} must be an int in [{lo}, {v.INT_MAX}]; got {x}")
    return int(x)


def _images(images, name="images"):
    """images as an array the kernel reads in place (uint8, float32 or float64), with
    their channel count; checked: (N, H, W) or (N, H, W, 3), finite."""
    from .features import _pixels

    a = _pixels(images, name)
    if not (a.ndim == 3 or (a.ndim == 4 and a.shape[3] == 3)):
        raise ValueError(
            f"{name} must be grayscale (N, H, W) or colour (N, H, W, 3) images; "
            f"got shape {a.shape}"
        )
    if a.dtype != np.uint8 and len(a):
        step = max(1, _CHECK_CHUNK // max(1, a[0].size))
        for i in range(0, len(a), step):
            part = a[i : i + step]
            if not np.isfinite(part).all():
                bad = np.argwhere(~np.isfinite(part))[0]
                bad[0] += i
                raise ValueError(f"{name}[{', '.join(map(str, bad))}] is not finite")
    return a, (1 if a.ndim == 3 else 3)


class BagOfWords(TransformerMixin, BaseEstimator):
    """Bag of visual words: dense patches, k-means codewords, triangle encoding, pooling.

    The single-layer pipeline of Coates, Lee & Ng (AISTATS 2011), the lecture's "bag of
    words", over grayscale (N, H, W) or colour (N, H, W, 3) images of any real dtype.

    Parameters
    ----------
    n_words : int, number of codewords K (default 100)
    patch_size : int, patches of patch_size x patch_size pixels (default 3)
    stride : int, pixels between patches (default 1)
    encoding : "triangle" (``max(0, mean_k d - d_k)``, ``d_k`` the distances to the codewords) or
        "hard" (one-hot of the nearest codeword, the lowest index on a tie)
    pooling : "quadrants" (sums over the image's four quadrants: 4 K features) or "sum"
        (over the whole image: K features)
    whiten : bool, ZCA-whiten the normalised patches (eigenvalues + 0.1) (default True)
    contrast_eps : float > 0, added to each patch's variance before dividing by its
        square root (default 10, for pixel values in 0..255)
    max_patches : int, fit on a random sample of at most this many patches (100 000)
    random_state : None, int or RandomState: the sample and the k-means initialisation
    n_threads : None or -1 for every core, else a positive int (transform's result does
        not depend on it)

    Attributes
    ----------
    codebook_ : (n_words, patch_dim) float64, the codewords in whitened space
    mean_ : (patch_dim,) float64, the mean normalised patch (zeros when not whiten)
    whitening_ : (patch_dim, patch_dim) float64, the symmetric ZCA matrix Z (the identity
        when not whiten); a patch x is encoded as ``(normalise(x) - mean_) @ Z``
    patch_dim_ : int, patch_size**2 * channels
    n_channels_ : int, 1 (grayscale) or 3 (colour)

    A patch is the vector of its values in (row, column, channel) order; its variance has
    ddof 0; the covariance of the whitening has ddof 1 (np.cov). With h x w patch
    positions (h = (H - patch_size) // stride + 1), the quadrants are position rows
    [0, h // 2), [h // 2, h) by columns [0, w // 2), [w // 2, w), ordered top-left,
    top-right, bottom-left, bottom-right, each a block of n_words features. float32 images
    give float32 features, others float64. transform accepts images of any size of at
    least patch_size pixels (the feature count does not depend on it) with the channel
    count of fit.
    """

    def __init__(
        self,
        n_words: int = 100,
        patch_size: int = 3,
        stride: int = 1,
        encoding: str = "triangle",
        pooling: str = "quadrants",
        whiten: bool = True,
        contrast_eps: float = 10.0,
        max_patches: int = 100_000,
        random_state: Any = None,
        n_threads: int | None = None,
    ) -> None:
        self.n_words = n_words
        self.patch_size = patch_size
        self.stride = stride
        self.encoding = encoding
        self.pooling = pooling
        self.whiten = whiten
        self.contrast_eps = contrast_eps
        self.max_patches = max_patches
        self.random_state = random_state
        self.n_threads = n_threads

    def _params(self):
        """The checked parameters: (n_words, patch, stride, hard, quadrants, whiten, eps)."""
        K = _int(self.n_words, "n_words")
        p = _int(self.patch_size, "patch_size")
        s = _int(self.stride, "stride")
        hard = v.choice(self.encoding, "encoding", _ENCODINGS) == 1
        quadrants = v.choice(self.pooling, "pooling", _POOLINGS) == 0
        whiten = v.flag(self.whiten, "whiten")
        eps = v.real(self.contrast_eps, "contrast_eps")
        if not eps > 0:
            raise ValueError(f"contrast_eps must be > 0; got {self.contrast_eps!r}")
        return K, p, s, hard, quadrants, whiten, eps

    @staticmethod
    def _positions(a, p, s, name):
        H, W = a.shape[1:3]
        if H < p or W < p:
            raise ValueError(
                f"{name} of {H} x {W} pixels are smaller than patch_size={p}"
            )
        return (H - p) // s + 1, (W - p) // s + 1

    def fit(self, images: Any, y: Any = None) -> BagOfWords:
        """Fit the whitening and the codebook on a random sample of the images' patches."""
        from sklearn.cluster import KMeans

        K, p, s, _, _, whiten, eps = self._params()
        n_max = _int(self.max_patches, "max_patches")
        a, C = _images(images)
        if len(a) == 0:
            raise ValueError("images must hold at least one image to fit on; got 0")
        h, w = self._positions(a, p, s, "images")
        rng = check_random_state(self.random_state)
        total = len(a) * h * w
        if total > n_max:
            idx = np.sort(rng.choice(total, n_max, replace=False))
        else:
            idx = np.arange(total)
        if len(idx) < K:
            raise ValueError(
                f"n_words={K} needs at least as many patches; the images give {total}"
                + (f" and max_patches={n_max}" if total > n_max else "")
            )
        n, rem = np.divmod(idx, h * w)
        r, c = np.divmod(rem, w)
        ar = np.arange(p)
        rows = (r * s)[:, None, None] + ar[None, :, None]
        cols = (c * s)[:, None, None] + ar[None, None, :]
        patches = a[n[:, None, None], rows, cols].reshape(len(idx), -1).astype(np.float64)
        X = bow_normalize(patches, eps)
        D = X.shape[1]
        if whiten:
            mean = X.mean(axis=0)
            cov = np.atleast_2d(np.cov(X, rowvar=False)) if len(X) > 1 else np.zeros((D, D))
            evals, evecs = np.linalg.eigh(cov)
            Z = (evecs / np.sqrt(np.maximum(evals, 0.0) + _ZCA_REG)) @ evecs.T
            Z = (Z + Z.T) / 2
            X = (X - mean) @ Z
        else:
            mean, Z = np.zeros(D), np.eye(D)
        km = KMeans(n_clusters=K, n_init=1, random_state=rng.randint(2**31 - 1)).fit(X)
        self.codebook_ = np.ascontiguousarray(km.cluster_centers_, dtype=np.float64)
        self.mean_ = np.ascontiguousarray(mean, dtype=np.float64)
        self.whitening_ = np.ascontiguousarray(Z, dtype=np.float64)
        self.patch_dim_ = D
        self.n_channels_ = C
        return self

    def _n_out(self):
        return (4 if self.pooling == "quadrants" else 1) * self.codebook_.shape[0]

    def _encode(self, a, C, out=None, n_threads=None):
        """The kernel over checked images a into out (or a new array); n_threads: the
        kernel's (default: self.n_threads)."""
        K, p, s, hard, quadrants, whiten, eps = self._params()
        if C != self.n_channels_ or p * p * C != self.patch_dim_ or self.codebook_.shape[0] != K:
            raise ValueError(
                f"images have {C} channel(s) and the parameters give patches of "
                f"{p * p * C} values and {K} words, but the model was fitted on "
                f"{self.n_channels_}-channel patches of {self.patch_dim_} values and "
                f"{self.codebook_.shape[0]} words: fit again"
            )
        self._positions(a, p, s, "images")
        dtype = np.float32 if a.dtype == np.float32 else np.float64
        F = (4 if quadrants else 1) * K
        if out is None or out.dtype != dtype:
            res = np.empty((len(a), F), dtype)
        else:
            res = out
        W = self.whitening_ if whiten else None
        nt = v.threads(self.n_threads) if n_threads is None else n_threads
        _core.bow_encode(a, p, s, self.mean_, W, self.codebook_, eps, hard, quadrants, res, nt)
        if out is not None and res is not out:
            out[...] = res
            return out
        return res

    def transform(self, images: Any) -> Any:
        """Features (N, 4 n_words) ("quadrants") or (N, n_words) ("sum") of the images."""
        check_is_fitted(self, "codebook_")
        a, C = _images(images)
        return self._encode(a, C)

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        """"top_left_word0", ..., "bottom_right_word{K-1}" ("quadrants"), or "word0", ...
        ("sum")."""
        check_is_fitted(self, "codebook_")
        K = self.codebook_.shape[0]
        words = [f"word{k}" for k in range(K)]
        if v.choice(self.pooling, "pooling", _POOLINGS) == 1:
            return np.asarray(words, dtype=object)
        return np.asarray([f"{q}_{w}" for q in _QUADRANTS for w in words], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.requires_fit = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"X_types": ["3darray"]}
