// The fused SGD update: its argument record and its table of kernels, one per
// instruction-set level (see dispatch.hpp). Pointers and numbers only, no Python types.
#pragma once

#include <cstdint>

#include "dispatch.hpp"

namespace fastloss {

// One in-place SGD update of a flat parameter (PyTorch's torch.optim.SGD rule):
//   d = (maximize ? -g : g) + weight_decay * p                (weight decay when != 0)
//   with momentum != 0:  b = first_step ? d : momentum * b + grad_coef * d
//                        d = nesterov ? d + momentum * b : b
//   p = p - lr * d
// grad_coef is 1 - dampening for torch.optim.SGD (taken as given, so that other momentum
// conventions map onto the same pass exactly). All arrays are contiguous, n elements.
template <class T>
struct SgdArgs {
  T* param = nullptr;
  const T* grad = nullptr;
  T* buf = nullptr;  // momentum buffer; read unless first_step, written; unused without momentum
  int64_t n = 0;
  double lr = 0.0;
  double momentum = 0.0;
  double grad_coef = 1.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
  bool first_step = false;
  int n_threads = 0;  // 0: all the cores this process may use
};

// The record of one update (the bindings and the C-level API fill it the same way).
template <class T>
SgdArgs<T> sgd_args(T* param, const T* grad, T* buf, int64_t n, double lr, double momentum,
                    double grad_coef, double weight_decay, bool nesterov, bool maximize,
                    bool first_step, int n_threads) {
  SgdArgs<T> a;
  a.param = param;
  a.grad = grad;
  a.buf = buf;
  a.n = n;
  a.lr = lr;
  a.momentum = momentum;
  a.grad_coef = grad_coef;
  a.weight_decay = weight_decay;
  a.nesterov = nesterov;
  a.maximize = maximize;
  a.first_step = first_step;
  a.n_threads = n_threads;
  return a;
}

struct OptimKernels {
  void (*sgd_f32)(const SgdArgs<float>&);
  void (*sgd_f64)(const SgdArgs<double>&);
};
FL_DECLARE_TABLE(OptimKernels, optim_kernels)

}  // namespace fastloss
