// The C-level API (src/capi.h): plain C functions over raw buffers that check their
// arguments as the Python layer does, then call the kernels of the active instruction set
// through the same tables as the pybind11 bindings. No math here, no Python objects: the
// Cython module fastloss.cython_kernels calls these without the GIL, from any thread.
#include "capi.h"

#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <new>

#include "fastloss/dispatch.hpp"
#include "fastloss/kernels.hpp"
#include "fastloss/linear_kernels.hpp"
#include "fastloss/optim_kernels.hpp"

namespace py = pybind11;

namespace {

constexpr int kOk = 0, kBadArgument = -1, kNoMemory = -2;

// n_threads as in Python: -1 all cores (0 to the kernels), else >= 1.
bool threads_ok(int n_threads) { return n_threads == -1 || n_threads >= 1; }
int kernel_threads(int n_threads) { return n_threads == -1 ? 0 : n_threads; }

// p is null only when it need not be read (n == 0), and aligned for T.
template <class T>
bool buffer_ok(const T* p, int64_t n) {
  if (n == 0) return true;
  return p != nullptr && reinterpret_cast<uintptr_t>(p) % alignof(T) == 0;
}

// The element count rows * cols, or -1 when it overflows (or either is negative).
int64_t elements(int64_t rows, int64_t cols) {
  int64_t n;
  if (rows < 0 || cols < 0 || __builtin_mul_overflow(rows, cols, &n) ||
      __builtin_mul_overflow(n, int64_t(sizeof(double)), &n))
    return -1;
  return rows * cols;
}

// Whether n1 elements at p1 and n2 elements at p2 share a byte.
template <class A, class B>
bool overlap(const A* p1, int64_t n1, const B* p2, int64_t n2) {
  if (!p1 || !p2 || n1 == 0 || n2 == 0) return false;
  const auto a = reinterpret_cast<uintptr_t>(p1), b = reinterpret_cast<uintptr_t>(p2);
  return a < b + uintptr_t(n2) * sizeof(B) && b < a + uintptr_t(n1) * sizeof(A);
}

bool weights_ok(const double* w, int64_t n) {
  if (!w) return true;
  if (!buffer_ok(w, n)) return false;
  for (int64_t i = 0; i < n; ++i)
    if (w[i] < 0.0) return false;
  return true;
}

// Runs a kernel call; an allocation failure inside it is kNoMemory, never an exception
// through C.
template <class F>
int guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return kNoMemory;
  } catch (...) {
    return kBadArgument;
  }
}

template <class T>
int score_loss_c(const T* S, int64_t N, int64_t C, const int64_t* y,
                 const fastloss_score_opts* o, T* loss, T* G, int n_threads) noexcept {
  if (!o || !loss || !threads_ok(n_threads) || C < 1) return kBadArgument;
  const int64_t n = elements(N, C);
  if (n < 0 || !buffer_ok(S, n) || !buffer_ok(y, N) || (G && !buffer_ok(G, n)) ||
      !buffer_ok(loss, 1))
    return kBadArgument;
  if (o->loss < 0 || o->loss > 2 || o->reduction < 0 || o->reduction > 2) return kBadArgument;
  if (!std::isfinite(o->margin) || !(o->label_smoothing >= 0.0 && o->label_smoothing <= 1.0))
    return kBadArgument;
  if (o->loss != 2 && o->label_smoothing != 0.0) return kBadArgument;
  if (o->reduction == 2 && N == 0) return kBadArgument;  // the mean of no rows
  if (!weights_ok(o->sample_weight, N) || !weights_ok(o->class_weight, C)) return kBadArgument;
  const int64_t n_loss = o->reduction == 0 ? N : 1;
  if (o->reduction == 0 && !buffer_ok(loss, N)) return kBadArgument;
  // G may be S itself (in place); no other output may share memory with an input
  if ((G != S && overlap(G, n, S, n)) || overlap(G, n, y, N) || overlap(loss, n_loss, S, n) ||
      overlap(loss, n_loss, G, n) || overlap(loss, n_loss, y, N))
    return kBadArgument;
  fastloss::ScoreLossArgs<T> a;
  a.S = S;
  a.N = N;
  a.C = C;
  a.lds = C;
  a.y = y;
  a.sample_weight = o->sample_weight;
  a.class_weight = o->class_weight;
  a.loss = fastloss::ScoreLoss(o->loss);
  a.margin = o->margin;
  a.squared = o->squared != 0;
  a.label_smoothing = o->label_smoothing;
  a.reduction = fastloss::Reduction(o->reduction);
  a.G = G;
  a.ldg = C;
  a.L = o->reduction == 0 ? loss : nullptr;
  a.n_threads = kernel_threads(n_threads);
  return guarded([&] {
    const auto& k = FL_SELECT(fastloss::loss_kernels);
    fastloss::ScoreLossResult r;
    if constexpr (sizeof(T) == 4)
      r = k.score_loss_f32(a);
    else
      r = k.score_loss_f64(a);
    if (r.error.row >= 0) return int(std::min<int64_t>(r.error.row + 1, INT32_MAX));
    if (o->reduction != 0) *loss = T(r.loss);
    return kOk;
  });
}

template <class T>
int softmax_c(const T* S, int64_t N, int64_t C, T* out, int log, int n_threads) noexcept {
  if (!threads_ok(n_threads)) return kBadArgument;
  const int64_t n = elements(N, C);
  if (n < 0 || !buffer_ok(S, n) || !buffer_ok(out, n)) return kBadArgument;
  if (overlap(out, n, S, n)) return kBadArgument;
  if (n == 0) return kOk;
  return guarded([&] {
    const auto& k = FL_SELECT(fastloss::loss_kernels);
    if constexpr (sizeof(T) == 4)
      k.softmax_f32(S, N, C, C, out, C, log != 0, kernel_threads(n_threads));
    else
      k.softmax_f64(S, N, C, C, out, C, log != 0, kernel_threads(n_threads));
    return kOk;
  });
}

template <class T>
int linear_loss_c(const T* W, const T* X, const int64_t* y, const int64_t* indices, int64_t M,
                  int64_t N, int64_t D, int64_t C, int loss_kind, double reg, T* loss, T* dW,
                  int n_threads) noexcept {
  if (!loss || !threads_ok(n_threads) || C < 1 || (loss_kind != 0 && loss_kind != 1) ||
      !(reg >= 0.0 && std::isfinite(reg)))
    return kBadArgument;
  const int64_t nx = elements(N, D), nw = elements(D, C);
  if (nx < 0 || nw < 0 || !buffer_ok(X, nx) || !buffer_ok(W, nw) || !buffer_ok(y, N) ||
      (dW && !buffer_ok(dW, nw)) || !buffer_ok(loss, 1))
    return kBadArgument;
  const int64_t rows = indices ? M : N;
  if (rows < 1) return kBadArgument;  // the mean of no rows (or a negative M)
  if (indices) {
    if (!buffer_ok(indices, M)) return kBadArgument;
    for (int64_t k = 0; k < M; ++k)
      if (indices[k] < 0 || indices[k] >= N) return int(std::min<int64_t>(k + 1, INT32_MAX));
  }
  if (overlap(dW, nw, W, nw) || overlap(dW, nw, X, nx) || overlap(dW, nw, y, N) ||
      overlap(dW, nw, indices, indices ? M : 0) || overlap(loss, 1, dW, nw) ||
      overlap(loss, 1, W, nw) || overlap(loss, 1, X, nx))
    return kBadArgument;
  fastloss::LinearArgs<T> a;
  a.X = X;
  a.N = N;
  a.D = D;
  a.ldx = D;
  a.W = W;
  a.C = C;
  a.ldw = C;
  a.y = y;
  a.indices = indices;
  a.M = indices ? M : 0;
  a.loss = loss_kind == 0 ? fastloss::ScoreLoss::softmax : fastloss::ScoreLoss::hinge_ww;
  a.margin = 1.0;
  a.reduction = fastloss::Reduction::mean;
  a.reg = reg;
  a.penalty = fastloss::Penalty::l2;
  a.dW = dW;
  a.n_threads = kernel_threads(n_threads);
  return guarded([&] {
    const auto& k = FL_SELECT(fastloss::linear_kernels);
    fastloss::LinearResult r;
    if constexpr (sizeof(T) == 4)
      r = k.linear_loss_f32(a);
    else
      r = k.linear_loss_f64(a);
    if (r.error.row >= 0) return int(std::min<int64_t>(r.error.row + 1, INT32_MAX));
    *loss = T(r.loss);
    return kOk;
  });
}

bool option_ok(double v) { return v >= 0.0 && std::isfinite(v); }

template <class T>
int sgd_step_c(T* param, const T* grad, T* velocity, int64_t n, double lr, double momentum,
               double dampening, double weight_decay, int nesterov, int maximize,
               int first_step, int n_threads) noexcept {
  if (!threads_ok(n_threads) || n < 0 || elements(n, 1) < 0 || !option_ok(lr) ||
      !option_ok(momentum) || !std::isfinite(dampening) || !option_ok(weight_decay))
    return kBadArgument;
  if (nesterov && (momentum <= 0.0 || dampening != 0.0)) return kBadArgument;
  if (!buffer_ok(param, n) || !buffer_ok(grad, n)) return kBadArgument;
  T* buf = momentum != 0.0 ? velocity : nullptr;
  if (momentum != 0.0 && !buffer_ok(buf, n)) return kBadArgument;
  if (momentum != 0.0 && n > 0 && !buf) return kBadArgument;
  if (overlap(param, n, grad, n) || overlap(buf, n, param, n) || overlap(buf, n, grad, n))
    return kBadArgument;
  if (n == 0) return kOk;
  const auto a = fastloss::sgd_args(param, grad, buf, n, lr, momentum, 1.0 - dampening,
                                    weight_decay, nesterov != 0, maximize != 0,
                                    first_step != 0, kernel_threads(n_threads));
  return guarded([&] {
    const auto& k = FL_SELECT(fastloss::optim_kernels);
    if constexpr (sizeof(T) == 4)
      k.sgd_f32(a);
    else
      k.sgd_f64(a);
    return kOk;
  });
}

int max_threads_c() noexcept {
  return guarded([] { return FL_SELECT(fastloss::loss_kernels).max_threads(); });
}

const char* simd_level_c() noexcept { return fastloss::isa_name(fastloss::active_isa()); }

const fastloss_capi capi_table = {
    FASTLOSS_CAPI_VERSION,
    &score_loss_c<float>,
    &score_loss_c<double>,
    &softmax_c<float>,
    &softmax_c<double>,
    &linear_loss_c<float>,
    &linear_loss_c<double>,
    &sgd_step_c<float>,
    &sgd_step_c<double>,
    &max_threads_c,
    &simd_level_c,
};

}  // namespace

void bind_capi(py::module_& m) {
  fastloss::active_isa();  // the level is chosen now, at import, never inside a nogil call
  PyObject* c = PyCapsule_New(const_cast<fastloss_capi*>(&capi_table), "fastloss._core._c_api",
                              nullptr);  // (the name PyCapsule_Import looks for)
  if (!c) throw py::error_already_set();
  m.add_object("_c_api", py::reinterpret_steal<py::object>(c));
}
