"""Image features in C++: HOG and the hue histogram, and CS231n's feature pipeline.

- ``hog`` / ``hog_batch``: ``skimage.feature.hog`` of 2-D grayscale images, with its
  arguments and its numbers (``visualize`` and ``channel_axis`` are not offered).
- ``hog_feature``, ``color_histogram_hsv``, ``extract_features``: drop-ins for CS231n's
  ``features.py`` (144 HOG values and 10 hue bins for a 32x32x3 image).
- ``BagOfWords``: Coates & Ng's bag of visual words, a scikit-learn transformer (loaded
  with scikit-learn on first use; ``import fastloss.features`` does not import it).

Images are uint8, float32 or float64 (other integer types become float64; bool, complex
and the like raise TypeError); they are read in place, never copied unless their strides
are not whole elements, and never modified. scikit-image and matplotlib are not needed.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, Callable, Sequence

import numpy as np

from . import _core
from . import _validate as v
from ._typing import ArrayLike, FloatArray

__all__ = [
    "BagOfWords",  # noqa: F822 (loaded lazily by __getattr__)
    "color_histogram_hsv",
    "extract_features",
    "hog",
    "hog_batch",
    "hog_feature",
]


def __getattr__(name):
    if name == "BagOfWords":
        try:
            from ._bow import BagOfWords
        except ImportError as e:
            if getattr(e, "name", "") and e.name.split(".")[0] == "sklearn":
                raise ImportError(
                    'BagOfWords needs scikit-learn: pip install "fastloss[sklearn]"'
                ) from e
            raise
        return BagOfWords
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

_U8 = np.dtype(np.uint8)
_BLOCK_NORMS = {"L1": 0, "L1-sqrt": 1, "L2": 2, "L2-Hys": 3}
_CELL = 8  # CS231n's hog_feature: 8x8 cells, 9 orientations
_ORIENT = 9
_PROGRESS_EVERY = 1000  # images between progress reports (CS231n's interval)


def _pixels(x, name):
    """``x`` as an ndarray the kernels read in place: uint8, or native float32/float64 (other
    real numbers become float64), with strides that are whole elements."""
    a = x if isinstance(x, np.ndarray) and x.dtype == _U8 else v.float_array(x, name)
    if not a.flags.aligned or any(s % a.itemsize for s in a.strides):
        a = a.copy()  # (ascontiguousarray would keep a contiguous misaligned view)
    return a


def _positive_int(x, name):
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {v._show(x)}")
    if not 1 <= x <= v.INT_MAX:
        raise ValueError(f"{name} must be a positive int of at most {v.INT_MAX}; got {x}")
    return int(x)


def _pair(x, name):
    try:
        a, b = x
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of ints (rows, cols); got {x!r}") from None
    return _positive_int(a, f"{name}[0]"), _positive_int(b, f"{name}[1]")


def _hog_args(orientations, pixels_per_cell, cells_per_block, block_norm, transform_sqrt):
    """The kernel's hog arguments (orientations, cell rows, cell cols, block rows, block
    cols, norm code, transform_sqrt), checked."""
    return (
        _positive_int(orientations, "orientations"),
        *_pair(pixels_per_cell, "pixels_per_cell"),
        *_pair(cells_per_block, "cells_per_block"),
        v.choice(block_norm, "block_norm", _BLOCK_NORMS),
        v.flag(transform_sqrt, "transform_sqrt"),
    )


def _hog_stack(stack, args, feature_vector, n_threads):
    """scikit-image's hog of an (N, H, W) stack -> (N, F), or (N, *block shape)."""
    n, H, W = stack.shape
    o, cr, cc, br, bc = args[:5]
    nbr, nbc = H // cr - br + 1, W // cc - bc + 1
    if nbr <= 0 or nbc <= 0:
        raise ValueError(
            f"images of {H} x {W} pixels are too small for pixels_per_cell=({cr}, {cc}) and "
            f"cells_per_block=({br}, {bc}): they need at least {br * cr} rows and {bc * cc} cols"
        )
    shape = (nbr, nbc, br, bc, o)
    out = np.empty((n, nbr * nbc * br * bc * o), np.float32 if stack.dtype == v.F32 else v.F64)
    _core.hog(stack, *args, out, n_threads)
    return out if feature_vector else out.reshape((n,) + shape)


def hog(
    image: ArrayLike,
    *,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    cells_per_block: tuple[int, int] = (3, 3),
    block_norm: str = "L2-Hys",
    transform_sqrt: bool = False,
    feature_vector: bool = True,
) -> FloatArray:
    """Histogram of oriented gradients of a 2-D grayscale image, as ``skimage.feature.hog``.

    The same arguments and the same numbers as scikit-image. For many images use
    ``hog_batch``.

    Parameters
    ----------
    image : array_like, shape (H, W)
        A grayscale image: uint8, float32 or float64 (other integers become float64).
    orientations : int, default 9
        Number of orientation bins.
    pixels_per_cell : (int, int), default (8, 8)
        Size of a cell in pixels.
    cells_per_block : (int, int), default (3, 3)
        Size of a normalization block in cells.
    block_norm : {"L1", "L1-sqrt", "L2", "L2-Hys"}, default "L2-Hys"
        The block normalization.
    transform_sqrt : bool, default False
        Take the square root of the image first (gamma compression).
    feature_vector : bool, default True
        Return a flat vector.

    Returns
    -------
    ndarray
        The feature vector (float32 for float32 images, else float64), or with
        ``feature_vector=False`` an array of shape (n_blocks_row, n_blocks_col,
        cells_per_block[0], cells_per_block[1], orientations).
    """
    args = _hog_args(orientations, pixels_per_cell, cells_per_block, block_norm, transform_sqrt)
    feature_vector = v.flag(feature_vector, "feature_vector")
    a = _pixels(image, "image")
    if a.ndim != 2:
        hint = (
            ": convert a color image to grayscale first (or use hog_feature)" if a.ndim == 3 else ""
        )
        raise ValueError(f"image must be a 2-D grayscale image (H, W); got shape {a.shape}{hint}")
    return _hog_stack(a[None], args, feature_vector, 1)[0]


def hog_batch(
    images: ArrayLike,
    *,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    cells_per_block: tuple[int, int] = (3, 3),
    block_norm: str = "L2-Hys",
    transform_sqrt: bool = False,
    feature_vector: bool = True,
    n_threads: int | None = None,
) -> FloatArray:
    """``hog`` of every image of a grayscale stack, in one threaded call.

    Parameters
    ----------
    images : array_like, shape (N, H, W)
        Grayscale images.
    orientations, pixels_per_cell, cells_per_block, block_norm, transform_sqrt, feature_vector
        As in ``hog``.
    n_threads : int, optional
        None or -1 for every core; the result does not depend on it.

    Returns
    -------
    ndarray
        (N, F), row i is ``hog(images[i], ...)``; with ``feature_vector=False``, (N,
        n_blocks_row, n_blocks_col, cells_per_block[0], cells_per_block[1],
        orientations).
    """
    args = _hog_args(orientations, pixels_per_cell, cells_per_block, block_norm, transform_sqrt)
    feature_vector = v.flag(feature_vector, "feature_vector")
    nt = v.threads(n_threads)
    a = _pixels(images, "images")
    if a.ndim != 3:
        raise ValueError(
            f"images must be an (N, H, W) stack of grayscale images; got shape {a.shape}"
        )
    return _hog_stack(a, args, feature_vector, nt)


def _cs231n_hog_stack(stack, name):
    """The (N, H, W) or (N, H, W, C >= 3) stack CS231n's hog_feature reads, and its F."""
    if stack.ndim == 4 and stack.shape[3] >= 3:
        stack = stack[..., :3]  # rgb2gray reads rgb[..., :3]
    elif stack.ndim != 3:
        raise ValueError(
            f"{name} must be RGB (H, W, 3) or grayscale (H, W) images; "
            f"got images of shape {stack.shape[1:]}"
        )
    H, W = stack.shape[1:3]
    if H < _CELL or W < _CELL:
        raise ValueError(f"hog_feature needs images of at least 8 x 8 pixels; got {H} x {W}")
    return stack, (H // _CELL) * (W // _CELL) * _ORIENT


def hog_feature(im: ArrayLike) -> FloatArray:
    """CS231n's ``hog_feature``: HOG of an RGB (H, W, 3) or grayscale (H, W) image.

    CS231n's definition: gray = rgb @ [0.299, 0.587, 0.144]; forward differences (zero in
    the last column/row); orientation ``arctan2(gy, gx + 1e-15)`` in degrees + 90, binned
    into 9 bins of 20 degrees over (0, 180) (so gradients pointing left are not counted);
    each bin's magnitudes averaged over 8 x 8 cells, without block normalization.

    Parameters
    ----------
    im : array_like, shape (H, W, 3) or (H, W)
        An image of at least 8 x 8 pixels (CS231n's code needs square images with
        H % 8 <= 4; any size works here).

    Returns
    -------
    ndarray
        float64 of length (H // 8) * (W // 8) * 9, in CS231n's order (cell column, cell
        row, orientation): 144 values for a 32 x 32 image.
    """
    a = _pixels(im, "im")
    if a.ndim not in (2, 3):
        raise ValueError(
            f"im must be an RGB (H, W, 3) or grayscale (H, W) image; got shape {a.shape}"
        )
    stack, F = _cs231n_hog_stack(a[None], "im")
    out = np.empty((1, F))
    _core.cs231n_hog(stack, out, 1)
    return out[0]


def _hue_args(nbin, xmin, xmax, normalized, dtype):
    """(edges, xmax, normalized, single) for the hue kernel, checked."""
    nbin = _positive_int(nbin, "nbin")
    lo, hi = v.real(xmin, "xmin"), v.real(xmax, "xmax")
    if hi <= 0 or lo >= hi:
        raise ValueError(
            f"color_histogram_hsv needs 0 < xmax and xmin < xmax; got xmin={xmin!r}, xmax={xmax!r}"
        )
    normalized = v.flag(normalized, "normalized")
    # NumPy computes im / xmax, hence the hue, in float32 for a float32 image divided by a
    # Python number (or a float32 scalar), else in float64.
    single = dtype == v.F32 and (
        type(xmax) in (int, float)
        or (isinstance(xmax, np.generic) and np.result_type(v.F32, xmax) == v.F32)
    )
    return np.linspace(lo, hi, nbin + 1), hi, normalized, single


def _hue_stack(stack, name):
    if stack.ndim != 4 or stack.shape[3] != 3:
        raise ValueError(
            f"{name} must be RGB (H, W, 3) images for the hue histogram; "
            f"got images of shape {stack.shape[1:]}"
        )
    if stack.shape[1] == 0 or stack.shape[2] == 0:  # (a histogram of no pixels: 0 / 0)
        raise ValueError(
            f"{name} must have at least one pixel for the hue histogram; got images of "
            f"{stack.shape[1]} x {stack.shape[2]} pixels"
        )
    return stack


def _hue_error(err, images, xmax, batch):
    i, q = err
    r, c = divmod(q, images.shape[2])
    where = f"imgs[{i}][{r}, {c}]" if batch else f"im[{r}, {c}]"
    raise ValueError(
        f"{where} = {images[i, r, c].tolist()} is outside [0, xmax={xmax!r}]: the hue is that "
        "of matplotlib's rgb_to_hsv(im / xmax), which needs values in [0, 1]"
    )


def color_histogram_hsv(
    im: ArrayLike, nbin: int = 10, xmin: float = 0, xmax: float = 255, normalized: bool = True
) -> FloatArray:
    """CS231n's ``color_histogram_hsv``: a histogram of the hue of an RGB image.

    The hue is matplotlib's ``rgb_to_hsv(im / xmax)[..., 0] * xmax`` (0 for gray pixels);
    the result is CS231n's ``np.histogram(hue, bins=np.linspace(xmin, xmax, nbin + 1),
    density=normalized)[0] * np.diff(bin_edges)``.

    Parameters
    ----------
    im : array_like, shape (H, W, 3)
        An RGB image with values in [0, xmax] (a value outside is a ValueError, as in
        matplotlib).
    nbin : int, default 10
        Number of bins.
    xmin, xmax : float, default 0 and 255
        The range of the bins, and the largest pixel value.
    normalized : bool, default True
        Fractions of the pixels rather than counts times the bin width.

    Returns
    -------
    ndarray
        float64, length nbin.
    """
    a = _pixels(im, "im")
    edges, hi, normalized, single = _hue_args(nbin, xmin, xmax, normalized, a.dtype)
    if a.ndim != 3:
        raise ValueError(f"im must be an RGB image (H, W, 3); got shape {a.shape}")
    stack = _hue_stack(a[None], "im")
    out = np.empty((1, edges.size - 1))
    err = _core.hue_histogram(stack, edges, hi, normalized, single, out, 1)
    if err is not None:
        _hue_error(err, stack, xmax, False)
    return out[0]


_HUE_DEFAULTS = {"nbin": 10, "xmin": 0, "xmax": 255, "normalized": True}


def _bow_of(fn):
    """The BagOfWords instance fn is (or whose bound transform fn is), else None."""
    bow = getattr(fn, "__self__", None) if getattr(fn, "__name__", "") == "transform" else fn
    mod = type(bow).__module__
    if mod == "fastloss._bow" and type(bow).__name__ == "BagOfWords":
        return bow
    return None


def _batched(fn):
    """How extract_features runs fn over a whole stack: ("hog", {}), ("hue", keywords) or
    ("bow", BagOfWords), or None for a callable applied per image."""
    bow = _bow_of(fn)
    if bow is not None:
        return "bow", bow
    kw = {}
    if isinstance(fn, functools.partial) and not fn.args:
        fn, kw = fn.func, dict(fn.keywords)
    if fn is hog_feature and not kw:
        return "hog", kw
    if fn is color_histogram_hsv and set(kw) <= set(_HUE_DEFAULTS):
        return "hue", kw
    return None


class _PrintProgress:
    def __init__(self, total):
        self.total, self.done = total, 0

    def update(self, n):
        self.done += n
        print(f"Done extracting features for {self.done} / {self.total} images")

    def close(self):
        pass


def _progress(total):
    try:
        from tqdm import tqdm
    except ImportError:
        return _PrintProgress(total)
    return tqdm(total=total, desc="extract_features", unit="img")


def extract_features(
    imgs: ArrayLike,
    feature_fns: Sequence[Callable[..., Any]],
    verbose: bool = False,
    *,
    n_threads: int | None = None,
) -> FloatArray:
    """CS231n's ``extract_features``: apply feature functions to every image and stack them.

    Parameters
    ----------
    imgs : array_like, shape (N, H, W, C) or (N, H, W)
        The images.
    feature_fns : sequence of callables
        Each takes one image ``imgs[i].squeeze()`` and returns a 1-D feature vector.
        fastloss's own ``hog_feature`` and ``color_histogram_hsv`` (also as
        ``functools.partial`` with keyword arguments) and a fitted ``BagOfWords`` (the
        instance or its ``transform``) run over the whole stack in C++; any other
        callable is called once per image.
    verbose : bool, default False
        A progress bar (tqdm when installed, else a line every 1000 images).
    n_threads : int, optional
        None or -1 for every core; the result does not depend on it.

    Returns
    -------
    ndarray
        float64 (N, F_1 + ... + F_k), row i the concatenation of image i's features. N == 0
        gives an (0, F) array when every F is known without an image, else CS231n's
        ``np.array([])``.
    """
    verbose = v.flag(verbose, "verbose")
    nt = v.threads(n_threads)
    try:
        fns = list(feature_fns)
    except TypeError:
        raise TypeError("feature_fns must be a sequence of callables") from None
    for k, fn in enumerate(fns):
        if not callable(fn) and _bow_of(fn) is None:
            raise TypeError(f"feature_fns[{k}] must be callable; got {type(fn).__name__}")
    try:
        arr = imgs if isinstance(imgs, np.ndarray) else np.asarray(imgs)
    except ValueError as e:  # (a ragged list of images)
        raise ValueError(f"imgs must be images of one shape: {e}") from None
    if arr.ndim < 1:
        raise ValueError(f"imgs must be an array of images (N, ...); got shape {arr.shape}")
    n = arr.shape[0]
    plans = [_batched(fn) for fn in fns]

    # The stack the batched kernels read: the images as imgs[i].squeeze() gives them.
    stack = None
    if any(plans):
        stack = _pixels(arr, "imgs")
        stack = stack.reshape((n,) + tuple(d for d in stack.shape[1:] if d != 1))
    kernels: list[Any] = []
    dims: list[Any] = []
    for k, (fn, plan) in enumerate(zip(fns, plans)):
        if plan is None:
            kernels.append(None)
            dims.append(None)
        elif plan[0] == "bow":
            bow = plan[1]
            from sklearn.utils.validation import check_is_fitted

            from ._bow import _images

            check_is_fitted(bow, "codebook_")

            st, C = _images(stack, "imgs")
            bow._encode(st[:0], C)  # (checks the parameters and the channels)
            kernels.append(functools.partial(_run_bow, bow, st, C))
            dims.append(bow._n_out())
        elif plan[0] == "hog":
            st, F = _cs231n_hog_stack(stack, "imgs")
            kernels.append(functools.partial(_run_hog, st))
            dims.append(F)
        else:
            kw = {**_HUE_DEFAULTS, **plan[1]}
            edges, hi, normalized, single = _hue_args(**kw, dtype=stack.dtype)  # type: ignore[union-attr]
            st = _hue_stack(stack, "imgs")
            kernels.append(
                functools.partial(_run_hue, st, edges, hi, normalized, single, kw["xmax"])
            )
            dims.append(edges.size - 1)
    if n == 0:
        return np.zeros((0, sum(dims))) if None not in dims else np.array([])

    # Per-image callables: the first image gives their dimensions (as in CS231n).
    first = {}
    for k, fn in enumerate(fns):
        if kernels[k] is None:
            f = np.asarray(fn(arr[0].squeeze()))
            if f.ndim != 1:
                raise ValueError(
                    f"feature_fns[{k}] must return a 1-D array; it returned shape {f.shape}"
                )
            first[k] = f
            dims[k] = f.size
    offsets = np.concatenate(([0], np.cumsum(dims))).astype(int)
    out = np.zeros((n, int(offsets[-1])))

    per_image = [k for k in range(len(fns)) if kernels[k] is None]
    chunk = _PROGRESS_EVERY if (verbose or per_image) else n
    bar = _progress(n) if verbose else None
    try:
        for i0 in range(0, n, chunk):
            i1 = min(n, i0 + chunk)
            for k, run in enumerate(kernels):
                if run is not None:
                    run(i0, i1, out[i0:i1, offsets[k] : offsets[k + 1]], nt)
            for i in range(i0, i1):
                im = arr[i].squeeze() if per_image else None
                for k in per_image:
                    f = first.pop(k) if i == 0 else np.asarray(fns[k](im))
                    if f.shape != (dims[k],):
                        raise ValueError(
                            f"feature_fns[{k}] returned shape {f.shape} for image {i} but "
                            f"({dims[k]},) for image 0"
                        )
                    out[i, offsets[k] : offsets[k + 1]] = f
            if bar is not None:
                bar.update(i1 - i0)
    finally:
        if bar is not None:
            bar.close()
    return out


def _run_hog(stack, i0, i1, out, nt):
    _core.cs231n_hog(stack[i0:i1], out, nt)


def _run_hue(stack, edges, hi, normalized, single, xmax, i0, i1, out, nt):
    err = _core.hue_histogram(stack[i0:i1], edges, hi, normalized, single, out, nt)
    if err is not None:
        _hue_error((err[0] + i0, err[1]), stack, xmax, True)


def _run_bow(bow, stack, C, i0, i1, out, nt):
    bow._encode(stack[i0:i1], C, out, nt)
