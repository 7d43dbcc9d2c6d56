// Score-level entry points: a matrix of class scores in, loss (and gradient) out. These
// put the per-row math of losses/ into the driver's blocks; nothing here is specific to
// one thread count.
#pragma once

#include <vector>

#include "driver.hpp"
#include "losses/hinge.hpp"
#include "losses/softmax.hpp"
#include "types.hpp"
#include "vmath.hpp"

FASTLOSS_NS_BEGIN

// Scratch for one block's exponentials: the gradient rows when they are contiguous, else
// a local buffer.
template <class T>
struct BlockScratch {
  alignas(64) T local[kBlockElems];
  std::vector<T> heap;
  T* get(T* G, int64_t ldg, int64_t r0, int64_t rows, int64_t C) {
    if (G && ldg == C) return G + r0 * ldg;
    if (rows * C <= kBlockElems) return local;
    heap.resize(size_t(rows * C));
    return heap.data();
  }
};

// The sum of weights that "mean" divides by; checks the labels when it reads them.
template <class T>
double mean_denominator(const ScoreLossArgs<T>& a, LabelError& err) {
  const int64_t N = a.N;
  double d = 0.0;
  if (a.class_weight && a.y) {
    for (int64_t i = 0; i < N; ++i) {
      const int64_t y = a.y[i];
      if (!label_ok(y, a.C)) {
        err = LabelError{i, y};
        return 0.0;
      }
      d += (a.sample_weight ? a.sample_weight[i] : 1.0) * a.class_weight[y];
    }
  } else if (a.sample_weight) {
    for (int64_t i = 0; i < N; ++i) d += a.sample_weight[i];
  } else {
    d = double(N);
  }
  return d;
}

template <class T, class RowFn>
double hinge_block(const ScoreLossArgs<T>& a, int64_t r0, int64_t r1, double scale,
                   LabelError& err, RowFn row) {
  double acc = 0.0;
  const T margin = T(a.margin);
  for (int64_t i = r0; i < r1; ++i) {
    const int64_t y = a.y[i];
    if (!label_ok(y, a.C)) {
      if (err.row < 0) err = LabelError{i, y};
      continue;
    }
    double w = a.sample_weight ? a.sample_weight[i] : 1.0;
    if (a.class_weight) w *= a.class_weight[y];
    const double li = row(a.S + i * a.lds, a.C, y, margin, a.G ? a.G + i * a.ldg : nullptr,
                          T(w * scale));
    const double wl = w * li;
    if (a.L) a.L[i] = T(wl);
    acc += wl;
  }
  return acc;
}

template <class T>
double softmax_block(const ScoreLossArgs<T>& a, int64_t r0, int64_t r1, double scale,
                     LabelError& err, const SoftmaxCEParams<T>& P) {
  const int64_t C = a.C, rows = r1 - r0;
  BlockScratch<T> scratch;
  T* E = scratch.get(a.G, a.ldg, r0, rows, C);
  T mx_local[kBlockElems];
  std::vector<T> mx_heap;
  T* mx = mx_local;
  if (rows > kBlockElems) {
    mx_heap.resize(size_t(rows));
    mx = mx_heap.data();
  }
  for (int64_t r = 0; r < rows; ++r)
    mx[r] = softmax_shift_row(a.S + (r0 + r) * a.lds, C, E + r * C);
  vexp_array(E, E, rows * C);
  double acc = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r0 + r;
    const T* s = a.S + i * a.lds;
    T* g = a.G ? a.G + i * a.ldg : nullptr;
    const double w = a.sample_weight ? a.sample_weight[i] : 1.0;
    const T gs = T(w * scale);
    double li;
    if (a.Q) {
      li = softmax_ce_row_soft(s, mx[r], C, a.Q + i * a.ldq, E + r * C, g, gs, P);
    } else {
      const int64_t y = a.y[i];
      if (!label_ok(y, C)) {
        if (err.row < 0) err = LabelError{i, y};
        continue;
      }
      li = softmax_ce_row_hard(s, mx[r], C, y, E + r * C, g, gs, P);
    }
    const double wl = w * li;
    if (a.L) a.L[i] = T(wl);
    acc += wl;
  }
  return acc;
}

template <class T>
ScoreLossResult score_loss(const ScoreLossArgs<T>& a) {
  ScoreLossResult res;
  double denom = 1.0;
  if (a.reduction == Reduction::mean) {
    denom = mean_denominator(a, res.error);
    if (res.error.row >= 0) return res;
  }
  const double scale = a.reduction == Reduction::mean ? 1.0 / denom : 1.0;
  const int64_t rows = block_rows(a.C);

  std::vector<T> cw_eps;
  SoftmaxCEParams<T> P;
  P.eps = a.label_smoothing;
  P.cw = a.class_weight;
  P.sum_cw = double(a.C);
  if (a.class_weight) {
    P.sum_cw = 0.0;
    for (int64_t c = 0; c < a.C; ++c) P.sum_cw += a.class_weight[c];
    if (a.label_smoothing > 0.0) {
      cw_eps.resize(size_t(a.C));
      for (int64_t c = 0; c < a.C; ++c)
        cw_eps[size_t(c)] = T(a.label_smoothing / double(a.C) * a.class_weight[c]);
      P.cw_eps = cw_eps.data();
    }
  }

  auto run = [&](auto&& block) {
    return reduce_row_blocks(a.N, rows, a.C, a.n_threads, res.error,
                             [&](int64_t r0, int64_t r1, LabelError& err) {
                               return block(r0, r1, err);
                             });
  };
  double total = 0.0;
  switch (a.loss) {
    case ScoreLoss::hinge_ww:
      total = run([&](int64_t r0, int64_t r1, LabelError& err) {
        return a.squared ? hinge_block(a, r0, r1, scale, err, hinge_ww_row<T, true>)
                         : hinge_block(a, r0, r1, scale, err, hinge_ww_row<T, false>);
      });
      break;
    case ScoreLoss::hinge_cs:
      total = run([&](int64_t r0, int64_t r1, LabelError& err) {
        return a.squared ? hinge_block(a, r0, r1, scale, err, hinge_cs_row<T, true>)
                         : hinge_block(a, r0, r1, scale, err, hinge_cs_row<T, false>);
      });
      break;
    case ScoreLoss::softmax:
      total = run([&](int64_t r0, int64_t r1, LabelError& err) {
        return softmax_block(a, r0, r1, scale, err, P);
      });
      break;
  }
  res.denom = denom;
  res.loss = a.reduction == Reduction::mean ? total / denom : total;
  return res;
}

// out = softmax(S) or log_softmax(S), row by row.
template <class T>
void softmax_rows(const T* S, int64_t N, int64_t C, int64_t lds, T* out, int64_t ldo, bool log,
                  int n_threads) {
  const int64_t rows = block_rows(C);
  for_row_blocks(N, rows, C, n_threads, [&](int64_t, int64_t r0, int64_t r1) {
    const int64_t nr = r1 - r0;
    BlockScratch<T> scratch;
    T* E = scratch.get(log ? nullptr : out, ldo, r0, nr, C);
    for (int64_t r = 0; r < nr; ++r) {
      const T* s = S + (r0 + r) * lds;
      const T mx = softmax_shift_row(s, C, E + r * C);
      if (log) {
        T* o = out + (r0 + r) * ldo;
        vexp_array(E + r * C, E + r * C, C);
        const T lse = T(std::log(double(row_sum(E + r * C, C))));
        FL_SIMD
        for (int64_t c = 0; c < C; ++c) o[c] = (s[c] - mx) - lse;
      }
    }
    if (log) return;
    vexp_array(E, E, nr * C);
    for (int64_t r = 0; r < nr; ++r) {
      T* e = E + r * C;
      T* o = out + (r0 + r) * ldo;
      const T inv = T(1) / row_sum(e, C);
      FL_SIMD
      for (int64_t c = 0; c < C; ++c) o[c] = e[c] * inv;
    }
  });
}

FASTLOSS_NS_END
