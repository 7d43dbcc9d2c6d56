# cython: language_level=3, boundscheck=False, wraparound=False
# A user's extension of fastloss's C-level API, as a Cython author writes one: it cimports
# fastloss.cython_kernels and nothing else of fastloss (no headers, no library), and calls
# the kernels without the GIL, also from its own prange loop (n_threads=1 there).
# tests/test_cython.py builds it at test time against the importable fastloss;
# benchmarks/bench_cython.py times it.
from cython.parallel cimport prange
from libc.stdint cimport int64_t

cimport fastloss.cython_kernels as fk

ctypedef fused real:
    float
    double


cdef inline real* ptr2(real[:, ::1] a) noexcept:
    return NULL if a is None else &a[0, 0]


cdef inline real* ptr1(real[::1] a) noexcept:
    return NULL if a is None else &a[0]


cdef inline const int64_t* iptr(const int64_t[::1] a) noexcept:
    return NULL if a is None else &a[0]


def info():
    return fk.max_threads(), fk.simd_level().decode()


def softmax_cross_entropy(real[:, ::1] S, const int64_t[::1] y, real[::1] loss,
                          real[:, ::1] G, int n_threads):
    cdef int r
    cdef real* g = ptr2(G)
    with nogil:
        if real is float:
            r = fk.softmax_cross_entropy_f32(&S[0, 0], S.shape[0], S.shape[1], &y[0],
                                             &loss[0], g, n_threads)
        else:
            r = fk.softmax_cross_entropy_f64(&S[0, 0], S.shape[0], S.shape[1], &y[0],
                                             &loss[0], g, n_threads)
    return r


def multiclass_hinge(real[:, ::1] S, const int64_t[::1] y, double margin, real[::1] loss,
                     real[:, ::1] G, int n_threads):
    cdef int r
    cdef real* g = ptr2(G)
    with nogil:
        if real is float:
            r = fk.multiclass_hinge_f32(&S[0, 0], S.shape[0], S.shape[1], &y[0], margin,
                                        &loss[0], g, n_threads)
        else:
            r = fk.multiclass_hinge_f64(&S[0, 0], S.shape[0], S.shape[1], &y[0], margin,
                                        &loss[0], g, n_threads)
    return r


def score_loss(real[:, ::1] S, const int64_t[::1] y, int loss_code, double margin,
               bint squared, double eps, int reduction, const double[::1] sw,
               const double[::1] cw, real[::1] loss, real[:, ::1] G, int n_threads):
    cdef fk.score_options o
    cdef int r
    cdef real* g = ptr2(G)
    fk.score_options_init(&o)
    o.loss = loss_code
    o.margin = margin
    o.squared = squared
    o.label_smoothing = eps
    o.reduction = reduction
    o.sample_weight = NULL if sw is None else &sw[0]
    o.class_weight = NULL if cw is None else &cw[0]
    with nogil:
        if real is float:
            r = fk.score_loss_f32(&S[0, 0], S.shape[0], S.shape[1], &y[0], &o, &loss[0], g,
                                  n_threads)
        else:
            r = fk.score_loss_f64(&S[0, 0], S.shape[0], S.shape[1], &y[0], &o, &loss[0], g,
                                  n_threads)
    return r


def default_options():
    cdef fk.score_options o
    fk.score_options_init(&o)
    return (o.loss, o.margin, o.squared, o.label_smoothing, o.reduction,
            o.sample_weight == NULL, o.class_weight == NULL)


def softmax(real[:, ::1] S, real[:, ::1] out, bint log, int n_threads):
    cdef int r
    with nogil:
        if real is float:
            if log:
                r = fk.log_softmax_f32(&S[0, 0], S.shape[0], S.shape[1], &out[0, 0], n_threads)
            else:
                r = fk.softmax_f32(&S[0, 0], S.shape[0], S.shape[1], &out[0, 0], n_threads)
        else:
            if log:
                r = fk.log_softmax_f64(&S[0, 0], S.shape[0], S.shape[1], &out[0, 0], n_threads)
            else:
                r = fk.softmax_f64(&S[0, 0], S.shape[0], S.shape[1], &out[0, 0], n_threads)
    return r


def linear_loss(real[:, ::1] W, real[:, ::1] X, const int64_t[::1] y,
                const int64_t[::1] indices, Py_ssize_t M, int loss_kind, double reg,
                real[::1] loss, real[:, ::1] dW, int n_threads):
    cdef int r
    cdef real* g = ptr2(dW)
    cdef const int64_t* idx = iptr(indices)
    with nogil:
        if real is float:
            r = fk.linear_loss_f32(&W[0, 0], &X[0, 0], &y[0], idx, M, X.shape[0], X.shape[1],
                                   W.shape[1], loss_kind, reg, &loss[0], g, n_threads)
        else:
            r = fk.linear_loss_f64(&W[0, 0], &X[0, 0], &y[0], idx, M, X.shape[0], X.shape[1],
                                   W.shape[1], loss_kind, reg, &loss[0], g, n_threads)
    return r


def sgd_step(real[::1] param, real[::1] grad, real[::1] velocity, double lr, double momentum,
             double dampening, double weight_decay, bint nesterov, bint maximize,
             bint first_step, int n_threads):
    cdef int r
    cdef real* v = ptr1(velocity)
    with nogil:
        if real is float:
            r = fk.sgd_step_f32(&param[0], &grad[0], v, param.shape[0], lr, momentum,
                                dampening, weight_decay, nesterov, maximize, first_step,
                                n_threads)
        else:
            r = fk.sgd_step_f64(&param[0], &grad[0], v, param.shape[0], lr, momentum,
                                dampening, weight_decay, nesterov, maximize, first_step,
                                n_threads)
    return r


# ---- a training loop's minibatches in the user's own prange, one kernel call each

def minibatch_softmax(real[:, ::1] S, const int64_t[::1] y, Py_ssize_t batch,
                      real[::1] losses, real[:, ::1] G, int[::1] codes, int threads):
    """Rows [b*batch, (b+1)*batch) of S are minibatch b: its mean loss into losses[b], its
    gradient into the same rows of G; the minibatches over `threads` threads."""
    cdef Py_ssize_t b, nb = losses.shape[0], C = S.shape[1]
    for b in prange(nb, nogil=True, schedule="static", num_threads=threads):
        if real is float:
            codes[b] = fk.softmax_cross_entropy_f32(&S[b * batch, 0], batch, C, &y[b * batch],
                                                    &losses[b], &G[b * batch, 0], 1)
        else:
            codes[b] = fk.softmax_cross_entropy_f64(&S[b * batch, 0], batch, C, &y[b * batch],
                                                    &losses[b], &G[b * batch, 0], 1)


def minibatch_linear(real[:, ::1] W, real[:, ::1] X, const int64_t[::1] y,
                     const int64_t[:, ::1] indices, int loss_kind, double reg,
                     real[::1] losses, real[:, :, ::1] dW, int[::1] codes):
    """Minibatch b is the rows indices[b] of X: its loss and gradient into losses[b], dW[b]."""
    cdef Py_ssize_t b, nb = indices.shape[0], m = indices.shape[1]
    for b in prange(nb, nogil=True, schedule="static"):
        if real is float:
            codes[b] = fk.linear_loss_f32(&W[0, 0], &X[0, 0], &y[0], &indices[b, 0], m,
                                          X.shape[0], X.shape[1], W.shape[1], loss_kind, reg,
                                          &losses[b], &dW[b, 0, 0], 1)
        else:
            codes[b] = fk.linear_loss_f64(&W[0, 0], &X[0, 0], &y[0], &indices[b, 0], m,
                                          X.shape[0], X.shape[1], W.shape[1], loss_kind, reg,
                                          &losses[b], &dW[b, 0, 0], 1)


def repeat_softmax_cross_entropy(real[:, ::1] S, const int64_t[::1] y, real[::1] loss,
                                 real[:, ::1] G, Py_ssize_t reps):
    """The same call `reps` times without the GIL (a per-call cost, timed from Python)."""
    cdef Py_ssize_t i
    cdef int r = 0
    with nogil:
        for i in range(reps):
            if real is float:
                r |= fk.softmax_cross_entropy_f32(&S[0, 0], S.shape[0], S.shape[1], &y[0],
                                                  &loss[0], &G[0, 0], 1)
            else:
                r |= fk.softmax_cross_entropy_f64(&S[0, 0], S.shape[0], S.shape[1], &y[0],
                                                  &loss[0], &G[0, 0], 1)
    return r


# ---- bad pointers and sizes that a typed memoryview cannot express

def null_arguments():
    """The return codes of calls with NULL buffers, odd sizes and misaligned pointers."""
    cdef double S[6]
    cdef double G[6]
    cdef double W[6]
    cdef double loss[1]
    cdef float Sf[6]
    cdef float lossf[1]
    cdef int64_t y[3]
    cdef char raw[64]
    cdef int i
    for i in range(6):
        S[i] = i
        Sf[i] = i
        W[i] = 0.5
    y[0] = 0
    y[1] = 1
    y[2] = 0
    cdef double* odd = <double*>(raw + 1)
    return {
        "ok": fk.softmax_cross_entropy_f64(S, 3, 2, y, loss, G, 1),
        "S NULL": fk.softmax_cross_entropy_f64(NULL, 3, 2, y, loss, G, 1),
        "y NULL": fk.softmax_cross_entropy_f64(S, 3, 2, NULL, loss, G, 1),
        "loss NULL": fk.softmax_cross_entropy_f64(S, 3, 2, y, NULL, G, 1),
        "G NULL ok": fk.softmax_cross_entropy_f64(S, 3, 2, y, loss, NULL, 1),
        "N 0": fk.softmax_cross_entropy_f64(S, 0, 2, y, loss, G, 1),
        "N negative": fk.softmax_cross_entropy_f64(S, -1, 2, y, loss, G, 1),
        "C 0": fk.softmax_cross_entropy_f64(S, 3, 0, y, loss, G, 1),
        "N*C overflows": fk.softmax_cross_entropy_f64(S, <Py_ssize_t>1 << 40,
                                                       <Py_ssize_t>1 << 40, y, loss, G, 1),
        "n_threads 0": fk.softmax_cross_entropy_f64(S, 3, 2, y, loss, G, 0),
        "n_threads -2": fk.softmax_cross_entropy_f64(S, 3, 2, y, loss, G, -2),
        "n_threads -1 ok": fk.softmax_cross_entropy_f64(S, 3, 2, y, loss, G, -1),
        "S misaligned": fk.softmax_cross_entropy_f64(odd, 3, 2, y, loss, G, 1),
        "G overlaps S": fk.softmax_cross_entropy_f64(S, 3, 2, y, loss, S + 1, 1),
        "G is S ok": fk.softmax_cross_entropy_f64(S, 3, 2, y, loss, S, 1),
        "loss in G": fk.softmax_cross_entropy_f64(W, 3, 2, y, G + 2, G, 1),
        "f32 ok": fk.softmax_cross_entropy_f32(Sf, 3, 2, y, lossf, NULL, 1),
        "f32 S NULL": fk.softmax_cross_entropy_f32(NULL, 3, 2, y, lossf, NULL, 1),
        "hinge margin inf": fk.multiclass_hinge_f64(S, 3, 2, y, float("inf"), loss, G, 1),
        "hinge margin nan": fk.multiclass_hinge_f64(S, 3, 2, y, float("nan"), loss, G, 1),
        "hinge ok": fk.multiclass_hinge_f64(S, 3, 2, y, 1.0, loss, G, 1),
        "options NULL": fk.score_loss_f64(S, 3, 2, y, NULL, loss, G, 1),
        "linear ok": fk.linear_loss_f64(W, S, y, NULL, 0, 3, 2, 3, 0, 0.0, loss, G, 1),
        "linear W NULL": fk.linear_loss_f64(NULL, S, y, NULL, 0, 3, 2, 3, 0, 0.0, loss, G, 1),
        "linear X NULL": fk.linear_loss_f64(W, NULL, y, NULL, 0, 3, 2, 3, 0, 0.0, loss, G, 1),
        "linear y NULL": fk.linear_loss_f64(W, S, NULL, NULL, 0, 3, 2, 3, 0, 0.0, loss, G, 1),
        "linear dW is W": fk.linear_loss_f64(W, S, y, NULL, 0, 3, 2, 3, 0, 0.0, loss, W, 1),
        "linear M 0": fk.linear_loss_f64(W, S, y, y, 0, 3, 2, 3, 0, 0.0, loss, G, 1),
        "linear M negative": fk.linear_loss_f64(W, S, y, y, -3, 3, 2, 3, 0, 0.0, loss, G, 1),
        "linear N 0": fk.linear_loss_f64(W, S, y, NULL, 0, 0, 2, 3, 0, 0.0, loss, G, 1),
        "sgd ok": fk.sgd_step_f64(S, W, NULL, 6, 0.1, 0.0, 0.0, 0.0, False, False, False, 1),
        "sgd param NULL": fk.sgd_step_f64(NULL, W, NULL, 6, 0.1, 0.0, 0.0, 0.0, False, False,
                                          False, 1),
        "sgd grad NULL": fk.sgd_step_f64(S, NULL, NULL, 6, 0.1, 0.0, 0.0, 0.0, False, False,
                                         False, 1),
        "sgd n 0 ok": fk.sgd_step_f64(NULL, NULL, NULL, 0, 0.1, 0.0, 0.0, 0.0, False, False,
                                      False, 1),
        "sgd n negative": fk.sgd_step_f64(S, W, NULL, -1, 0.1, 0.0, 0.0, 0.0, False, False,
                                          False, 1),
        "sgd velocity NULL with momentum": fk.sgd_step_f64(S, W, NULL, 6, 0.1, 0.9, 0.0, 0.0,
                                                           False, False, True, 1),
        "sgd grad is param": fk.sgd_step_f64(S, S, NULL, 6, 0.1, 0.0, 0.0, 0.0, False, False,
                                             False, 1),
        "sgd velocity is grad": fk.sgd_step_f64(S, W, W, 6, 0.1, 0.9, 0.0, 0.0, False, False,
                                                True, 1),
        "softmax NULL": fk.softmax_f64(NULL, 3, 2, G, 1),
        "softmax out NULL": fk.softmax_f64(S, 3, 2, NULL, 1),
        "softmax out is S": fk.softmax_f64(S, 3, 2, S, 1),
        "softmax N 0 ok": fk.softmax_f64(NULL, 0, 2, NULL, 1),
        "log_softmax n_threads 0": fk.log_softmax_f64(S, 3, 2, G, 0),
    }
