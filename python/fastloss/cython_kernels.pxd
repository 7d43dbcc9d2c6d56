# The C-level API of fastloss for Cython: `cimport fastloss.cython_kernels as fk`.
#
# Functions exported by the compiled module fastloss.cython_kernels (Cython's __pyx_capi__,
# as scipy.linalg.cython_blas does): a user's extension needs this file (installed with
# fastloss) and Cython, no fastloss headers and no library to link. Every function is
# `noexcept nogil`, reads and writes C-contiguous row-major buffers, runs the kernels of the
# SIMD level fastloss chose at import, gives the bits of the Python API, and returns
#     0       on success,
#     i + 1   when y[i] (or indices[i]) is out of range (the first such i),
#     -1      for any other bad argument (ERR_ARGUMENT),
#     -2      when the kernel could not allocate its scratch memory (ERR_MEMORY).
# n_threads: -1 for all cores, else >= 1; pass 1 inside your own prange.

from libc.stdint cimport int64_t

cdef enum:
    # score_options.loss
    LOSS_HINGE = 0                  # Weston-Watkins multiclass hinge (CS231n)
    LOSS_HINGE_CRAMMER_SINGER = 1
    LOSS_SOFTMAX = 2                # softmax cross-entropy
    # score_options.reduction
    REDUCTION_NONE = 0              # `loss` receives N values: w_i L_i
    REDUCTION_SUM = 1
    REDUCTION_MEAN = 2
    # linear_loss's loss_kind
    LINEAR_SOFTMAX = 0
    LINEAR_HINGE = 1
    # return codes besides 0 and i + 1
    ERR_ARGUMENT = -1
    ERR_MEMORY = -2

# The score-level options of fastloss.multiclass_hinge / softmax_cross_entropy; fill it
# with score_options_init (softmax, margin 1, mean, no weights), then set what you need.
ctypedef struct score_options:
    int loss                        # LOSS_*
    double margin                   # hinge: Delta
    bint squared                    # hinge: max(0, t)**2
    double label_smoothing          # softmax: epsilon in [0, 1]
    int reduction                   # REDUCTION_*
    const double* sample_weight     # (N,) non-negative, or NULL
    const double* class_weight      # (C,) non-negative, or NULL

# ---- the contract (fastloss API.md, "C-level API for Cython")
# S (N, C) scores, y (N,) labels in [0, C); *loss the mean over the rows; G (N, C) the
# gradient, or NULL for the loss only (G may be S itself: computed in place).
cdef int softmax_cross_entropy_f32(const float* S, Py_ssize_t N, Py_ssize_t C,
                                   const int64_t* y, float* loss, float* G,
                                   int n_threads) noexcept nogil
cdef int softmax_cross_entropy_f64(const double* S, Py_ssize_t N, Py_ssize_t C,
                                   const int64_t* y, double* loss, double* G,
                                   int n_threads) noexcept nogil
cdef int multiclass_hinge_f32(const float* S, Py_ssize_t N, Py_ssize_t C, const int64_t* y,
                              double margin, float* loss, float* G,
                              int n_threads) noexcept nogil
cdef int multiclass_hinge_f64(const double* S, Py_ssize_t N, Py_ssize_t C, const int64_t* y,
                              double margin, double* loss, double* G,
                              int n_threads) noexcept nogil
# loss(X[indices] @ W, y[indices]) + reg * sum(W**2): W (D, C), X (N, D), y (N,); indices
# NULL for all N rows (M ignored), else M row numbers in [0, N); loss_kind LINEAR_*; dW
# (D, C) or NULL.
cdef int linear_loss_f32(const float* W, const float* X, const int64_t* y,
                         const int64_t* indices, Py_ssize_t M, Py_ssize_t N, Py_ssize_t D,
                         Py_ssize_t C, int loss_kind, double reg, float* loss, float* dW,
                         int n_threads) noexcept nogil
cdef int linear_loss_f64(const double* W, const double* X, const int64_t* y,
                         const int64_t* indices, Py_ssize_t M, Py_ssize_t N, Py_ssize_t D,
                         Py_ssize_t C, int loss_kind, double reg, double* loss, double* dW,
                         int n_threads) noexcept nogil
# torch.optim.SGD's update of n elements in place; velocity (the momentum buffer) may be
# NULL when momentum is 0; first_step: the buffer becomes the (decayed) gradient itself.
cdef int sgd_step_f32(float* param, const float* grad, float* velocity, Py_ssize_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      bint nesterov, bint maximize, bint first_step,
                      int n_threads) noexcept nogil
cdef int sgd_step_f64(double* param, const double* grad, double* velocity, Py_ssize_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      bint nesterov, bint maximize, bint first_step,
                      int n_threads) noexcept nogil

# ---- beyond the contract
# The defaults of score_options: LOSS_SOFTMAX, margin 1, not squared, no smoothing,
# REDUCTION_MEAN, no weights.
cdef void score_options_init(score_options* opts) noexcept nogil
# Any score-level loss with its options: *loss one value (sum, mean) or N (REDUCTION_NONE).
cdef int score_loss_f32(const float* S, Py_ssize_t N, Py_ssize_t C, const int64_t* y,
                        const score_options* opts, float* loss, float* G,
                        int n_threads) noexcept nogil
cdef int score_loss_f64(const double* S, Py_ssize_t N, Py_ssize_t C, const int64_t* y,
                        const score_options* opts, double* loss, double* G,
                        int n_threads) noexcept nogil
# Row-wise softmax / log-softmax of S (N, C) into out (N, C; not
# overlapping S).
cdef int softmax_f32(const float* S, Py_ssize_t N, Py_ssize_t C, float* out,
                     int n_threads) noexcept nogil
cdef int softmax_f64(const double* S, Py_ssize_t N, Py_ssize_t C, double* out,
                     int n_threads) noexcept nogil
cdef int log_softmax_f32(const float* S, Py_ssize_t N, Py_ssize_t C, float* out,
                         int n_threads) noexcept nogil
cdef int log_softmax_f64(const double* S, Py_ssize_t N, Py_ssize_t C, double* out,
                         int n_threads) noexcept nogil
# The threads n_threads=-1 uses, and the SIMD level in use ("baseline", "avx2", "avx512").
cdef int max_threads() noexcept nogil
cdef const char* simd_level() noexcept nogil
