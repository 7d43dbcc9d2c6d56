// Plain argument and result records passed from the bindings to the kernels. They hold
// pointers and sizes only, are the same for every instruction-set level, and carry no
// Python types.
#pragma once

#include <cstdint>

namespace fastloss {

enum class Reduction : int { none = 0, sum = 1, mean = 2 };
enum class ScoreLoss : int { hinge_ww = 0, hinge_cs = 1, softmax = 2 };

// The first label outside [0, C), by row; row == -1 when every label is valid.
struct LabelError {
  int64_t row = -1;
  int64_t value = 0;
};

// One score-level loss call: scores S (N x C, row stride lds, unit column stride). The
// gradient G may be S itself (computed in place).
template <class T>
struct ScoreLossArgs {
  const T* S = nullptr;
  int64_t N = 0, C = 0, lds = 0;
  const int64_t* y = nullptr;  // hard labels (N,), or nullptr with soft targets
  const T* Q = nullptr;        // soft targets (N x C, row stride ldq), or nullptr
  int64_t ldq = 0;
  const double* sample_weight = nullptr;  // (N,) or nullptr
  const double* class_weight = nullptr;   // (C,) or nullptr
  // When has_ignore, a label equal to ignore_index (any value, in [0, C) or not) marks a
  // row that contributes nothing: loss 0, gradient row 0, weight 0 in the mean's
  // denominator (PyTorch's ignore_index).
  bool has_ignore = false;
  int64_t ignore_index = 0;
  bool ignored(int64_t label) const { return has_ignore && label == ignore_index; }
  ScoreLoss loss = ScoreLoss::softmax;
  double margin = 1.0;           // hinge
  bool squared = false;          // hinge
  double label_smoothing = 0.0;  // softmax
  Reduction reduction = Reduction::mean;
  T* G = nullptr;  // gradient out (N x C, row stride ldg), or nullptr for loss only
  int64_t ldg = 0;
  T* L = nullptr;  // per-row weighted losses out (reduction none), or nullptr
  int n_threads = 0;  // 0: all the cores this process may use
  // > 0: the factor of every gradient row instead of the reduction's (a caller that
  // splits one "mean" over several calls passes 1 / its total weight with "sum").
  double grad_scale = 0.0;
};

struct ScoreLossResult {
  double loss = 0.0;   // the reduced loss (sum or mean); 0 for reduction none
  double denom = 0.0;  // the mean's denominator (sum of weights)
  LabelError error;
};

enum class Penalty : int { l2 = 0, l1 = 1, elasticnet = 2 };

// One model-level call: loss(X[idx] @ W + b, y[idx]) + reg * R(W).
template <class T>
struct LinearArgs {
  const T* X = nullptr;  // N x D, row stride ldx, unit column stride
  int64_t N = 0, D = 0, ldx = 0;
  const T* W = nullptr;  // D x C, row stride ldw
  int64_t C = 0, ldw = 0;
  const T* b = nullptr;          // (C,) or nullptr
  const int64_t* y = nullptr;    // (N,) labels, or nullptr with soft targets
  const T* Q = nullptr;          // (N x C) soft targets, row stride ldq, or nullptr
  int64_t ldq = 0;
  const int64_t* indices = nullptr;  // (M,) rows of X in [0, N), or nullptr for all
  int64_t M = 0;
  const double* sample_weight = nullptr;  // (N,)
  const double* class_weight = nullptr;   // (C,)
  ScoreLoss loss = ScoreLoss::softmax;
  double margin = 1.0;
  bool squared = false;
  double label_smoothing = 0.0;
  Reduction reduction = Reduction::mean;  // mean or sum
  double reg = 0.0;
  Penalty penalty = Penalty::l2;
  double l1_ratio = 0.5;
  T* dW = nullptr;  // D x C contiguous, or nullptr for the loss only
  T* db = nullptr;  // (C,) or nullptr
  T* dX = nullptr;  // M x D contiguous (the rows in the order taken), or nullptr; with dW
  int n_threads = 0;
};

struct LinearResult {
  double loss = 0.0, data_loss = 0.0, reg_loss = 0.0;
  LabelError error;
};

}  // namespace fastloss
