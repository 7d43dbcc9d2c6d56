"""CS231n's NumPy feature functions (assignment 1, features.py), written out as the oracle
of tests/test_features.py and the baseline of benchmarks/test_bench_features.py."""

import matplotlib.colors as mcolors
import numpy as np
from scipy import ndimage


def cs231n_rgb2gray(rgb):
    return np.dot(rgb[..., :3], [0.299, 0.587, 0.144])


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
    grad_ori = np.arctan2(gy, (gx + 1e-15)) * (180 / np.pi) + 90
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
