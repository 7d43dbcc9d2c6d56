/* The C-level API of fastloss: a table of plain C functions that fastloss._core exports as
 * the PyCapsule "fastloss._core._c_api" (src/capi.cpp). The Cython module
 * fastloss.cython_kernels fetches it once at import and wraps its entries in the
 * `noexcept nogil` functions of python/fastloss/cython_kernels.pxd, so that the kernels exist
 * once in the wheel (in _core, at every SIMD level) and run at the level _core chose.
 *
 * Every function checks its arguments, never touches a Python object, never throws, and
 * returns 0 on success, i + 1 for the first out-of-range label y[i] (or index indices[i]),
 * -1 for any other bad argument, -2 when the kernel could not allocate its scratch memory.
 * Plain C (no Python.h): the layout below is the one both sides compile against. */
#ifndef FASTLOSS_CAPI_H
#define FASTLOSS_CAPI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever the table or the options record changes. */
#define FASTLOSS_CAPI_VERSION 1

/* The score-level options (fastloss.multiclass_hinge / softmax_cross_entropy). */
typedef struct fastloss_score_opts {
  int loss;                     /* 0 hinge (Weston-Watkins), 1 hinge (Crammer-Singer), 2 softmax */
  double margin;                /* hinge */
  int squared;                  /* hinge: max(0, t)^2 */
  double label_smoothing;       /* softmax, in [0, 1] */
  int reduction;                /* 0 none (N losses), 1 sum, 2 mean */
  const double* sample_weight;  /* (N,) non-negative, or NULL */
  const double* class_weight;   /* (C,) non-negative, or NULL */
} fastloss_score_opts;

typedef struct fastloss_capi {
  int version; /* FASTLOSS_CAPI_VERSION */
  int (*score_loss_f32)(const float* S, int64_t N, int64_t C, const int64_t* y,
                        const fastloss_score_opts* o, float* loss, float* G, int n_threads);
  int (*score_loss_f64)(const double* S, int64_t N, int64_t C, const int64_t* y,
                        const fastloss_score_opts* o, double* loss, double* G, int n_threads);
  int (*softmax_f32)(const float* S, int64_t N, int64_t C, float* out, int log, int n_threads);
  int (*softmax_f64)(const double* S, int64_t N, int64_t C, double* out, int log,
                     int n_threads);
  int (*linear_loss_f32)(const float* W, const float* X, const int64_t* y,
                         const int64_t* indices, int64_t M, int64_t N, int64_t D, int64_t C,
                         int loss_kind, double reg, float* loss, float* dW, int n_threads);
  int (*linear_loss_f64)(const double* W, const double* X, const int64_t* y,
                         const int64_t* indices, int64_t M, int64_t N, int64_t D, int64_t C,
                         int loss_kind, double reg, double* loss, double* dW, int n_threads);
  int (*sgd_step_f32)(float* param, const float* grad, float* velocity, int64_t n, double lr,
                      double momentum, double dampening, double weight_decay, int nesterov,
                      int maximize, int first_step, int n_threads);
  int (*sgd_step_f64)(double* param, const double* grad, double* velocity, int64_t n,
                      double lr, double momentum, double dampening, double weight_decay,
                      int nesterov, int maximize, int first_step, int n_threads);
  int (*max_threads)(void);
  const char* (*simd_level)(void); /* "baseline", "avx2" or "avx512": the level in use */
} fastloss_capi;

#ifdef __cplusplus
}
#endif

#endif /* FASTLOSS_CAPI_H */
