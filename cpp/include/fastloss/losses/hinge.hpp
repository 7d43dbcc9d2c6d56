// Multiclass hinge (SVM) loss: the per-row math, once, for float and double.
//
//   Weston-Watkins:  L = sum_{j != y} h(s_j - s_y + margin)
//   Crammer-Singer:  L = h(max_{j != y} s_j - s_y + margin), the gradient to the lowest
//                    such j on a tie; a NaN score counts as the max (as np.argmax does)
//   h(t) = max(0, t) or max(0, t)^2 (squared); NaN propagates to the loss as in NumPy.
//   A term's subgradient counts only where its margin is strictly > 0.
//
// Each row function returns the row's unweighted loss and, when g is given, writes
// g = gs * dL/ds for the row (gs carries the sample weight and the mean's 1/denominator).
#pragma once

#include <limits>

#include "../config.hpp"

FASTLOSS_NS_BEGIN

template <class T, bool Squared>
FL_INLINE T hinge_h(T m) {
  const T h = m <= T(0) ? T(0) : m;  // NaN stays NaN
  return Squared ? h * h : h;
}

template <class T, bool Squared>
FL_INLINE T hinge_dh(T m) {
  return m > T(0) ? (Squared ? T(2) * m : T(1)) : T(0);
}

template <class T, bool Squared>
FL_INLINE double hinge_ww_row(const T* FL_RESTRICT s, int64_t C, int64_t y, T margin,
                              T* FL_RESTRICT g, T gs) {
  const T sy = s[y];
  T loss = 0;
  if (g) {
    T cnt = 0;
    FL_SIMD_REDUCE(+ : loss, cnt)
    for (int64_t j = 0; j < C; ++j) {
      const T m = s[j] - sy + margin;
      const bool other = j != y;
      loss += other ? hinge_h<T, Squared>(m) : T(0);
      const T d = other ? hinge_dh<T, Squared>(m) : T(0);
      g[j] = gs * d;
      cnt += d;
    }
    g[y] = -(gs * cnt);
  } else {
    FL_SIMD_REDUCE(+ : loss)
    for (int64_t j = 0; j < C; ++j) {
      const T m = s[j] - sy + margin;
      loss += j != y ? hinge_h<T, Squared>(m) : T(0);
    }
  }
  return double(loss);
}

template <class T, bool Squared>
FL_INLINE double hinge_cs_row(const T* FL_RESTRICT s, int64_t C, int64_t y, T margin,
                              T* FL_RESTRICT g, T gs) {
  if (g) {
    FL_SIMD
    for (int64_t j = 0; j < C; ++j) g[j] = T(0);
  }
  if (C < 2) return 0.0;
  const T ninf = -std::numeric_limits<T>::infinity();
  T mx = ninf;
  int nans = 0;
  FL_SIMD_REDUCE2(max : mx, + : nans)
  for (int64_t j = 0; j < C; ++j) {
    const T v = j != y ? s[j] : ninf;
    mx = v > mx ? v : mx;
    nans += v != v;
  }
  int64_t jstar = -1;
  for (int64_t j = 0; j < C; ++j) {
    if (j == y) continue;
    if (nans ? s[j] != s[j] : s[j] == mx) {
      jstar = j;
      break;
    }
  }
  const T m = s[jstar] - s[y] + margin;
  if (g) {
    const T d = gs * hinge_dh<T, Squared>(m);
    g[jstar] += d;
    g[y] -= d;
  }
  return double(hinge_h<T, Squared>(m));
}

FASTLOSS_NS_END
