// Fused in-place SGD over a flat parameter: one pass that reads the parameter, its
// gradient and its momentum buffer once and writes the parameter and the buffer once.
// The flat array is cut into fixed blocks (boundaries independent of the thread count)
// that the driver spreads over threads above its size threshold.
#pragma once

#include "config.hpp"
#include "driver.hpp"
#include "optim_kernels.hpp"

FASTLOSS_NS_BEGIN

// Elements per block of the flat parameter.
constexpr int64_t kOptimBlockElems = int64_t(1) << 14;

enum class SgdMode : int { plain, first, momentum, nesterov_first, nesterov };

// The update of elements [i0, i1): the options are template arguments, so each
// combination is one branch-free loop the compiler vectorises.
template <class T, bool Maximize, bool Decay, SgdMode Mode>
void sgd_range(const SgdArgs<T>& a, int64_t i0, int64_t i1) {
  T* FL_RESTRICT p = a.param;
  const T* FL_RESTRICT g = a.grad;
  T* FL_RESTRICT b = a.buf;
  const T lr = T(a.lr), mu = T(a.momentum), c = T(a.grad_coef), wd = T(a.weight_decay);
  FL_SIMD
  for (int64_t i = i0; i < i1; ++i) {
    const T pi = p[i];
    T d = Maximize ? -g[i] : g[i];
    if constexpr (Decay) d = d + wd * pi;
    if constexpr (Mode == SgdMode::first || Mode == SgdMode::nesterov_first) {
      b[i] = d;
      if constexpr (Mode == SgdMode::nesterov_first) d = d + mu * d;
    } else if constexpr (Mode == SgdMode::momentum || Mode == SgdMode::nesterov) {
      const T bi = mu * b[i] + c * d;
      b[i] = bi;
      d = Mode == SgdMode::nesterov ? d + mu * bi : bi;
    }
    p[i] = pi - lr * d;
  }
}

template <class T, bool Maximize, bool Decay, SgdMode Mode>
void sgd_blocks(const SgdArgs<T>& a) {
  for_row_blocks(a.n, kOptimBlockElems, 1, a.n_threads, [&](int64_t, int64_t i0, int64_t i1) {
    sgd_range<T, Maximize, Decay, Mode>(a, i0, i1);
  });
}

template <class T, bool Maximize, bool Decay>
void sgd_mode(const SgdArgs<T>& a) {
  if (a.momentum == 0.0) return sgd_blocks<T, Maximize, Decay, SgdMode::plain>(a);
  if (a.nesterov)
    return a.first_step ? sgd_blocks<T, Maximize, Decay, SgdMode::nesterov_first>(a)
                        : sgd_blocks<T, Maximize, Decay, SgdMode::nesterov>(a);
  return a.first_step ? sgd_blocks<T, Maximize, Decay, SgdMode::first>(a)
                      : sgd_blocks<T, Maximize, Decay, SgdMode::momentum>(a);
}

// The entry point: picks the loop of this combination of options.
template <class T>
void sgd_update(const SgdArgs<T>& a) {
  const bool decay = a.weight_decay != 0.0;
  if (a.maximize)
    return decay ? sgd_mode<T, true, true>(a) : sgd_mode<T, true, false>(a);
  return decay ? sgd_mode<T, false, true>(a) : sgd_mode<T, false, false>(a);
}

FASTLOSS_NS_END
