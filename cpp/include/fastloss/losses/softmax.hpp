// Softmax cross-entropy: the per-row math, once, for float and double.
//
//   p = softmax(s) (max-shifted), d_c = s_c - max(s), lse = log(sum_c exp(d_c))
//   L = -sum_c a_c log p_c = A * lse - sum_c a_c d_c,   dL/ds = A p - a,   A = sum_c a_c
//   hard label y:  a_c = (1 - eps) cw_y [c == y] + (eps / C) cw_c
//   soft target q: a_c = cw_c ((1 - eps) q_c + eps / C)
// (cw = class weights, 1 when absent; exactly PyTorch's cross_entropy.)
//
// The exponentials of a block of rows are taken in one flat SIMD pass (vexp_array) over a
// contiguous scratch block E; the row functions below prepare and finish each row.
#pragma once

#include <cmath>
#include <limits>

#include "../config.hpp"
#include "../vmath.hpp"

FASTLOSS_NS_BEGIN

// E[c] = s[c] - max(s); returns max(s).
template <class T>
FL_INLINE T softmax_shift_row(const T* FL_RESTRICT s, int64_t C, T* FL_RESTRICT e) {
  T mx = -std::numeric_limits<T>::infinity();
  FL_SIMD_REDUCE(max : mx)
  for (int64_t c = 0; c < C; ++c) mx = s[c] > mx ? s[c] : mx;
  FL_SIMD
  for (int64_t c = 0; c < C; ++c) e[c] = s[c] - mx;
  return mx;
}

template <class T>
FL_INLINE T row_sum(const T* FL_RESTRICT e, int64_t C) {
  T sum = 0;
  FL_SIMD_REDUCE(+ : sum)
  for (int64_t c = 0; c < C; ++c) sum += e[c];
  return sum;
}

// Options of the cross-entropy that are the same for every row.
template <class T>
struct SoftmaxCEParams {
  double eps = 0.0;                 // label smoothing
  const double* cw = nullptr;       // class weights or nullptr
  double sum_cw = 0.0;              // sum of class weights (C when absent)
  const T* cw_eps = nullptr;        // (eps / C) * cw_c as T, when eps > 0 and cw given
};

// Hard label: e holds exp(s - max) on entry; g (may equal e) receives gs * dL/ds.
template <class T>
FL_INLINE double softmax_ce_row_hard(const T* FL_RESTRICT s, T mx, int64_t C, int64_t y,
                                     const T* e, T* g, T gs, const SoftmaxCEParams<T>& P) {
  const double sum = double(row_sum(e, C));
  const double lse = std::log(sum);
  const double cy = P.cw ? P.cw[y] : 1.0;
  const double dy = double(s[y] - mx);
  double A, loss;
  if (P.eps > 0.0) {
    const double k = P.eps / double(C);
    double sd = 0.0;
    if (P.cw) {
      FL_SIMD_REDUCE(+ : sd)
      for (int64_t c = 0; c < C; ++c) sd += P.cw[c] * double(s[c] - mx);
    } else {
      FL_SIMD_REDUCE(+ : sd)
      for (int64_t c = 0; c < C; ++c) sd += double(s[c] - mx);
    }
    A = (1.0 - P.eps) * cy + k * P.sum_cw;
    loss = A * lse - (1.0 - P.eps) * cy * dy - k * sd;
  } else {
    A = cy;
    loss = cy * (lse - dy);
  }
  if (g) {
    const T k1 = T(double(gs) * A / sum);
    if (P.eps > 0.0) {
      if (P.cw_eps) {
        FL_SIMD
        for (int64_t c = 0; c < C; ++c) g[c] = e[c] * k1 - gs * P.cw_eps[c];
      } else {
        const T k2 = gs * T(P.eps / double(C));
        FL_SIMD
        for (int64_t c = 0; c < C; ++c) g[c] = e[c] * k1 - k2;
      }
    } else {
      FL_SIMD
      for (int64_t c = 0; c < C; ++c) g[c] = e[c] * k1;
    }
    g[y] -= gs * T((1.0 - P.eps) * cy);
  }
  return loss;
}

// Soft target q (a probability row): e holds exp(s - max) on entry.
template <class T>
FL_INLINE double softmax_ce_row_soft(const T* FL_RESTRICT s, T mx, int64_t C,
                                     const T* FL_RESTRICT q, const T* e, T* g, T gs,
                                     const SoftmaxCEParams<T>& P) {
  const double sum = double(row_sum(e, C));
  const double lse = std::log(sum);
  const double keep = 1.0 - P.eps, k = P.eps / double(C);
  double A = 0.0, ad = 0.0;
  FL_SIMD_REDUCE(+ : A, ad)
  for (int64_t c = 0; c < C; ++c) {
    const double a = (P.cw ? P.cw[c] : 1.0) * (keep * double(q[c]) + k);
    A += a;
    ad += a * double(s[c] - mx);
  }
  const double loss = A * lse - ad;
  if (g) {
    const T k1 = T(double(gs) * A / sum);
    FL_SIMD
    for (int64_t c = 0; c < C; ++c) {
      const T a = T((P.cw ? P.cw[c] : 1.0) * (keep * double(q[c]) + k));
      g[c] = e[c] * k1 - gs * a;
    }
  }
  return loss;
}

FASTLOSS_NS_END
