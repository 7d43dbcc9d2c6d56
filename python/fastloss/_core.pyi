"""Type stubs of the compiled module ``fastloss._core`` (src/_core.cpp, src/bind_*.cpp).

The module is private: the ``fastloss`` package checks and normalises every argument and
then calls these functions with plain arrays (native float32/float64 with unit column
stride, int64 labels, float64 weights). The pybind11 bindings take their arguments by
position only. Keep this file in step with the ``m.def`` calls: tests/test_typing.py
compares it with the module's names.
"""

from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

_Array = npt.NDArray[Any]
_Scalar = np.floating[Any]

class _BuildInfo(TypedDict):
    version: str
    compiler: str
    cxx_flags: str
    isa_compiled: str  # the compiled levels, space separated ("baseline avx2 avx512")
    isa_best: str  # the best level this CPU supports among those compiled
    isa_active: str  # the level in use (FASTLOSS_CPU may force a lower one)
    isa_note: str  # why FASTLOSS_CPU was not honoured, or ""
    openmp: bool
    max_threads: int

# src/_core.cpp
def build_info() -> _BuildInfo: ...
def max_threads() -> int: ...

# src/bind_pool.cpp
def empty(rows: int, cols: int, dtype: np.dtype[Any], /) -> _Array:
    """An uninitialised C-contiguous (rows, cols) array, from the output pool when large."""

def pool_clear() -> None: ...
def pool_info() -> tuple[int, int]:
    """(blocks, bytes) the output pool holds for reuse."""

# src/bind_losses.cpp
def score_loss(
    scores: _Array,
    y: _Array | None,
    soft_targets: _Array | None,
    sample_weight: _Array | None,
    class_weight: _Array | None,
    loss: int,
    margin: float,
    squared: bool,
    label_smoothing: float,
    reduction: int,
    grad_out: _Array | None,
    loss_out: _Array | None,
    n_threads: int,
    grad_scale: float,
    ignore_index: int | None,
    /,
) -> float:
    """Score-level loss: loss 0 = Weston-Watkins hinge, 1 = Crammer-Singer hinge,
    2 = softmax cross-entropy; reduction 0 = none (into loss_out), 1 = sum, 2 = mean.
    Writes the gradient into grad_out when given (grad_out may be scores itself), each
    row scaled by grad_scale when > 0, else by the reduction's factor; a label equal to
    ignore_index (labels only) contributes nothing; returns the reduced loss."""

def score_plain(
    scores: object,
    y: object,
    loss: int,
    margin: float,
    squared: bool,
    label_smoothing: float,
    reduction: int,
    grad: bool,
    n_threads: int,
    sample_weight: object,
    class_weight: object,
    ignore_index: int | None = None,
    /,
) -> tuple[_Scalar | _Array, _Array] | _Scalar | _Array | None:
    """The plain call: C-contiguous aligned float32/float64 scores with at least one row,
    a contiguous vector of native integer labels (not uint64), weights (or None) of the
    scores' dtype that "mean" takes as they are; the options already validated. Returns
    (loss, gradient), or the loss alone when grad is false (a NumPy scalar of the scores'
    dtype, or the per-row losses for reduction 0, "none"), or None when the operands are
    anything else (the caller then takes the general path)."""

def softmax_rows(scores: _Array, out: _Array, log: bool, n_threads: int, /) -> None:
    """Row-wise softmax (log=False) or log-softmax (log=True) of 2-D scores into out."""

# src/bind_features.cpp
def hog(
    images: _Array,
    orientations: int,
    cell_rows: int,
    cell_cols: int,
    block_rows: int,
    block_cols: int,
    norm: int,
    transform_sqrt: bool,
    out: _Array,
    n_threads: int,
    /,
) -> None:
    """scikit-image's hog of an (N, H, W) stack into out (N, F)."""

def cs231n_hog(images: _Array, out: _Array, n_threads: int, /) -> None:
    """CS231n's hog_feature of an (N, H, W) or (N, H, W, 3) stack into out (N, F) float64."""

def bow_encode(
    images: _Array,
    patch: int,
    stride: int,
    mean: _Array,
    whitening: _Array | None,
    codebook: _Array,
    contrast_eps: float,
    hard: bool,
    quadrants: bool,
    out: _Array,
    n_threads: int,
    /,
) -> None:
    """The bag-of-words features of an image stack into out (fastloss.features.BagOfWords)."""

def hue_histogram(
    images: _Array,
    edges: _Array,
    xmax: float,
    normalized: bool,
    single: bool,
    out: _Array,
    n_threads: int,
    /,
) -> tuple[int, int] | None:
    """CS231n's color_histogram_hsv of an (N, H, W, 3) stack into out (N, nbin) float64;
    returns (image, pixel) of the first value outside [0, xmax], or None."""

# src/bind_optim.cpp
def sgd_update(
    param: _Array,
    grad: _Array,
    momentum_buffer: _Array | None,
    lr: float,
    momentum: float,
    grad_coef: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
    n_threads: int,
    /,
) -> None:
    """Fused in-place SGD update of flat (1-D, contiguous) arrays of one float dtype, with
    torch.optim.SGD's semantics; momentum_buffer is required when momentum != 0."""

# src/bind_linear.cpp
def linear_loss(
    W: _Array,
    X: _Array,
    y: _Array | None,
    soft_targets: _Array | None,
    b: _Array | None,
    indices: _Array | None,
    sample_weight: _Array | None,
    class_weight: _Array | None,
    loss: int,
    margin: float,
    squared: bool,
    label_smoothing: float,
    reduction: int,
    reg: float,
    penalty: int,
    l1_ratio: float,
    dW_out: _Array | None,
    db_out: _Array | None,
    n_threads: int,
    /,
) -> tuple[float, float, float]:
    """Model-level loss of X[indices] @ W + b plus reg * R(W): loss codes as score_loss,
    reduction 1 = sum or 2 = mean, penalty 0 = l2, 1 = l1, 2 = elasticnet. Writes dW (and
    db) when given; returns (loss, data loss, regularization loss)."""


def linear_loss_dx(
    W: _Array,
    X: _Array,
    y: _Array | None,
    soft_targets: _Array | None,
    b: _Array | None,
    indices: _Array | None,
    sample_weight: _Array | None,
    class_weight: _Array | None,
    loss: int,
    margin: float,
    squared: bool,
    label_smoothing: float,
    reduction: int,
    reg: float,
    penalty: int,
    l1_ratio: float,
    dW_out: _Array | None,
    db_out: _Array | None,
    dX_out: _Array,
    n_threads: int,
    /,
) -> tuple[float, float, float]:
    """linear_loss, also writing dX (M, D) of the rows taken (needs dW_out)."""

# src/bind_capi.cpp
# The C-level API (src/capi.h): a PyCapsule named "fastloss._core._c_api" holding a table
# of C functions, which the Cython module fastloss.cython_kernels imports.
_c_api: object

def _linear_phase_clock(phases: _Array | None, /) -> None:
    """Benchmarks only: this thread's later linear_loss calls add the seconds of their
    phases (pack W, forward, loss rows, backward, combine, the chunks' wall time) to
    phases (float64, 6), or stop (None)."""
