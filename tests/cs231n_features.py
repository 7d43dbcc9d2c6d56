"""CS231n's NumPy feature functions (assignment 1, features.py), written out as the oracle
of tests/test_features.py and the baseline of benchmarks/test_bench_features.py.

As an oracle it must not depend on the machine: where the course code's result hangs on the
last bit of a value (the grey level's ties, the angle at a bin edge), it computes that
value with separately rounded operations and the C library's scalar ``atan2``
(``math.atan2``), never with BLAS (``np.dot`` may fuse multiply-adds, depending on the
OpenBLAS kernel) or NumPy's SIMD ``arctan2`` (which differs from ``math.atan2`` in the last
bit on some CPUs). ``libm_arctan2`` is that ``atan2`` as a ufunc-like function."""

import math

import matplotlib.colors as mcolors
import numpy as np
from scipy import ndimage


libm_arctan2 = np.vectorize(math.atan2, otypes=[np.float64])


def skimage_hog(image, **kw):
    """skimage.feature.hog with its orientations from math.atan2 (skimage's compiled
    histogram calls np.arctan2 through the numpy module, replaced here for the call)."""
    from skimage.feature import hog

    saved = np.arctan2
    np.arctan2 = libm_arctan2
    try:
        return hog(image, **kw)
    finally:
        np.arctan2 = saved


def cs231n_rgb2gray(rgb):
    """np.dot(rgb, [0.299, 0.587, 0.144]) with each product rounded, summed left to right."""
    c = np.asarray(rgb)[..., :3].astype(np.float64)
    return (c[..., 0] * 0.299 + c[..., 1] * 0.587) + c[..., 2] * 0.144


def cs231n_hog_feature(im):
    """CS231n features.py hog_feature (its grayscale branch's np.at_least_2d typo fixed)."""
    image = cs231n_rgb2gray(im) if im.ndim == 3 else np.atleast_2d(im)
    sx, sy = image.shape
    orientations = 9
    cx, cy = (8, 8)
    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    gx[:, :-1] = np.diff(image, n=1, axis=1)
    gy[:-1, :] = np.diff(image, n=1, axis=0)
    grad_mag = np.sqrt(gx**2 + gy**2)
    grad_ori = libm_arctan2(gy, (gx + 1e-15)) * (180 / np.pi) + 90
    n_cellsx = int(np.floor(sx / cx))
    n_cellsy = int(np.floor(sy / cy))
    orientation_histogram = np.zeros((n_cellsx, n_cellsy, orientations))
    for i in range(orientations):
        temp_ori = np.where(grad_ori < 180 / orientations * (i + 1), grad_ori, 0)
        temp_ori = np.where(grad_ori >= 180 / orientations * i, temp_ori, 0)
        cond2 = temp_ori > 0
        temp_mag = np.where(cond2, grad_mag, 0)
        orientation_histogram[:, :, i] = ndimage.uniform_filter(temp_mag, size=(cx, cy))[
            round(cx / 2) :: cx, round(cy / 2) :: cy
        ].T
    return orientation_histogram.ravel()


def cs231n_color_histogram_hsv(im, nbin=10, xmin=0, xmax=255, normalized=True):
    bins = np.linspace(xmin, xmax, nbin + 1)
    hsv = mcolors.rgb_to_hsv(im / xmax) * xmax
    imhist, bin_edges = np.histogram(hsv[:, :, 0], bins=bins, density=normalized)
    return imhist * np.diff(bin_edges)


def cs231n_extract_features(imgs, feature_fns):
    return np.array(
        [np.concatenate([fn(imgs[i].squeeze()) for fn in feature_fns]) for i in range(len(imgs))]
    )
