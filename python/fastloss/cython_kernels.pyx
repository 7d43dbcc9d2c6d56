# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""fastloss's C-level API for Cython: ``cimport fastloss.cython_kernels as fk``.

The functions (declared in cython_kernels.pxd) are exported through ``__pyx_capi__``; each
forwards to a C function of ``fastloss._core`` (src/bind_capi.cpp, fetched once here from
the capsule ``fastloss._core._c_api``), which checks the arguments and calls the kernels of
the SIMD level ``_core`` chose at import. The kernels exist once in the wheel, in ``_core``.
"""

from cpython.pycapsule cimport PyCapsule_Import
from libc.stdint cimport int64_t

cdef extern from "capi.h" nogil:
    int FASTLOSS_CAPI_VERSION
    ctypedef struct fastloss_score_opts:
        int loss
        double margin
        int squared
        double label_smoothing
        int reduction
        const double* sample_weight
        const double* class_weight
    ctypedef struct fastloss_capi:
        int version
        int (*score_loss_f32)(const float*, int64_t, int64_t, const int64_t*,
                              const fastloss_score_opts*, float*, float*, int) noexcept nogil
        int (*score_loss_f64)(const double*, int64_t, int64_t, const int64_t*,
                              const fastloss_score_opts*, double*, double*, int) noexcept nogil
        int (*softmax_f32)(const float*, int64_t, int64_t, float*, int, int) noexcept nogil
        int (*softmax_f64)(const double*, int64_t, int64_t, double*, int, int) noexcept nogil
        int (*linear_loss_f32)(const float*, const float*, const int64_t*, const int64_t*,
                               int64_t, int64_t, int64_t, int64_t, int, double, float*,
                               float*, int) noexcept nogil
        int (*linear_loss_f64)(const double*, const double*, const int64_t*,
                               const int64_t*, int64_t, int64_t, int64_t, int64_t, int,
                               double, double*, double*, int) noexcept nogil
        int (*sgd_step_f32)(float*, const float*, float*, int64_t, double, double, double,
                            double, int, int, int, int) noexcept nogil
        int (*sgd_step_f64)(double*, const double*, double*, int64_t, double, double, double,
                            double, int, int, int, int) noexcept nogil
        int (*max_threads)() noexcept nogil
        const char* (*simd_level)() noexcept nogil

cdef const fastloss_capi* _api = <const fastloss_capi*>PyCapsule_Import(
    "fastloss._core._c_api", 0)
if _api.version != FASTLOSS_CAPI_VERSION:
    raise ImportError(
        f"fastloss.cython_kernels expects the C API version {FASTLOSS_CAPI_VERSION} of "
        f"fastloss._core, which exports version {_api.version}: reinstall fastloss"
    )


cdef inline void _opts(fastloss_score_opts* o, int loss, double margin) noexcept nogil:
    o.loss = loss
    o.margin = margin
    o.squared = 0
    o.label_smoothing = 0.0
    o.reduction = REDUCTION_MEAN
    o.sample_weight = NULL
    o.class_weight = NULL


cdef inline int _copy_opts(const score_options* s, fastloss_score_opts* o) noexcept nogil:
    if s == NULL:
        return 0
    o.loss = s.loss
    o.margin = s.margin
    o.squared = 1 if s.squared else 0
    o.label_smoothing = s.label_smoothing
    o.reduction = s.reduction
    o.sample_weight = s.sample_weight
    o.class_weight = s.class_weight
    return 1


# ---- the contract

cdef int softmax_cross_entropy_f32(const float* S, Py_ssize_t N, Py_ssize_t C,
                                   const int64_t* y, float* loss, float* G,
                                   int n_threads) noexcept nogil:
    cdef fastloss_score_opts o
    _opts(&o, LOSS_SOFTMAX, 1.0)
    return _api.score_loss_f32(S, N, C, y, &o, loss, G, n_threads)


cdef int softmax_cross_entropy_f64(const double* S, Py_ssize_t N, Py_ssize_t C,
                                   const int64_t* y, double* loss, double* G,
                                   int n_threads) noexcept nogil:
    cdef fastloss_score_opts o
    _opts(&o, LOSS_SOFTMAX, 1.0)
    return _api.score_loss_f64(S, N, C, y, &o, loss, G, n_threads)


cdef int multiclass_hinge_f32(const float* S, Py_ssize_t N, Py_ssize_t C, const int64_t* y,
                              double margin, float* loss, float* G,
                              int n_threads) noexcept nogil:
    cdef fastloss_score_opts o
    _opts(&o, LOSS_HINGE, margin)
    return _api.score_loss_f32(S, N, C, y, &o, loss, G, n_threads)


cdef int multiclass_hinge_f64(const double* S, Py_ssize_t N, Py_ssize_t C, const int64_t* y,
                              double margin, double* loss, double* G,
                              int n_threads) noexcept nogil:
    cdef fastloss_score_opts o
    _opts(&o, LOSS_HINGE, margin)
    return _api.score_loss_f64(S, N, C, y, &o, loss, G, n_threads)


cdef int linear_loss_f32(const float* W, const float* X, const int64_t* y,
                         const int64_t* indices, Py_ssize_t M, Py_ssize_t N, Py_ssize_t D,
                         Py_ssize_t C, int loss_kind, double reg, float* loss, float* dW,
                         int n_threads) noexcept nogil:
    return _api.linear_loss_f32(W, X, y, indices, M, N, D, C, loss_kind, reg, loss, dW,
                                n_threads)


cdef int linear_loss_f64(const double* W, const double* X, const int64_t* y,
                         const int64_t* indices, Py_ssize_t M, Py_ssize_t N, Py_ssize_t D,
                         Py_ssize_t C, int loss_kind, double reg, double* loss, double* dW,
                         int n_threads) noexcept nogil:
    return _api.linear_loss_f64(W, X, y, indices, M, N, D, C, loss_kind, reg, loss, dW,
                                n_threads)


cdef int sgd_step_f32(float* param, const float* grad, float* velocity, Py_ssize_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      bint nesterov, bint maximize, bint first_step,
                      int n_threads) noexcept nogil:
    return _api.sgd_step_f32(param, grad, velocity, n, lr, momentum, dampening, weight_decay,
                             nesterov, maximize, first_step, n_threads)


cdef int sgd_step_f64(double* param, const double* grad, double* velocity, Py_ssize_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      bint nesterov, bint maximize, bint first_step,
                      int n_threads) noexcept nogil:
    return _api.sgd_step_f64(param, grad, velocity, n, lr, momentum, dampening, weight_decay,
                             nesterov, maximize, first_step, n_threads)


# ---- beyond the contract

cdef void score_options_init(score_options* opts) noexcept nogil:
    if opts == NULL:
        return
    opts.loss = LOSS_SOFTMAX
    opts.margin = 1.0
    opts.squared = False
    opts.label_smoothing = 0.0
    opts.reduction = REDUCTION_MEAN
    opts.sample_weight = NULL
    opts.class_weight = NULL


cdef int score_loss_f32(const float* S, Py_ssize_t N, Py_ssize_t C, const int64_t* y,
                        const score_options* opts, float* loss, float* G,
                        int n_threads) noexcept nogil:
    cdef fastloss_score_opts o
    if not _copy_opts(opts, &o):
        return ERR_ARGUMENT
    return _api.score_loss_f32(S, N, C, y, &o, loss, G, n_threads)


cdef int score_loss_f64(const double* S, Py_ssize_t N, Py_ssize_t C, const int64_t* y,
                        const score_options* opts, double* loss, double* G,
                        int n_threads) noexcept nogil:
    cdef fastloss_score_opts o
    if not _copy_opts(opts, &o):
        return ERR_ARGUMENT
    return _api.score_loss_f64(S, N, C, y, &o, loss, G, n_threads)


cdef int softmax_f32(const float* S, Py_ssize_t N, Py_ssize_t C, float* out,
                     int n_threads) noexcept nogil:
    return _api.softmax_f32(S, N, C, out, 0, n_threads)


cdef int softmax_f64(const double* S, Py_ssize_t N, Py_ssize_t C, double* out,
                     int n_threads) noexcept nogil:
    return _api.softmax_f64(S, N, C, out, 0, n_threads)


cdef int log_softmax_f32(const float* S, Py_ssize_t N, Py_ssize_t C, float* out,
                         int n_threads) noexcept nogil:
    return _api.softmax_f32(S, N, C, out, 1, n_threads)


cdef int log_softmax_f64(const double* S, Py_ssize_t N, Py_ssize_t C, double* out,
                         int n_threads) noexcept nogil:
    return _api.softmax_f64(S, N, C, out, 1, n_threads)


cdef int max_threads() noexcept nogil:
    return _api.max_threads()


cdef const char* simd_level() noexcept nogil:
    return _api.simd_level()
