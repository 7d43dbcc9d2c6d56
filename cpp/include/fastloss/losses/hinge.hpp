// Multiclass hinge (SVM) loss: the per-row math, once, for float and double.
//
//   Weston-Watkins:  L = sum_{j != y} h(s_j - s_y + margin)
//   Crammer-Singer:  L = h(max_{j != y} s_j - s_y + margin), the gradient to the lowest
//                    such j on a tie; a NaN score counts as the max (as np.argmax does)
//   h(t) = max(0, t) or max(0, t)^2 (squared); NaN propagates to the loss as in NumPy.
//   A term's subgradient counts only where its margin is strictly > 0.
//
// Each row function returns the row's unweighted loss and, when Grad, writes
// g = gs * dL/ds for the row (gs carries the sample weight and the mean's 1/denominator).
// CT > 0 fixes the number of classes at compile time (CT == C), so that short rows unroll.
#pragma once

#include <limits>

#include "../config.hpp"
#include "../simd.hpp"

FASTLOSS_NS_BEGIN

// h(m) on the lanes where `on`, 0 elsewhere (NaN stays NaN), and its derivative where
// m > 0; for a scalar type or a SIMD vector V with mask type M.
template <bool Squared, class V, class M>
FL_INLINE V hinge_term(V m, M on) {
  const V h = (on & ~(m <= V{})) ? m : V{};
  return Squared ? h * h : h;
}
template <bool Squared, class V, class M>
FL_INLINE V hinge_slope(V m, M on) {
  return (on & (m > V{})) ? (Squared ? m + m : V{} + 1) : V{};
}

template <class T, bool Squared, bool Grad, int CT>
FL_INLINE T hinge_ww_row(const T* s, int64_t C_, int64_t y, T margin, T* g, T gs) {
  using V = vec<T>;
  using M = ivec<T>;
  using I = typename VecT<T>::I;
  const int64_t C = CT > 0 ? CT : C_;
  const V sy = splat(s[y]), mg = splat(margin);
  const M yv = M{} + I(y), cv = M{} + I(C);
  V acc{}, cnt{};
  for (int64_t k = 0; k < chunks<T>(C); ++k) {
    const M idx = iota<T>() + I(k * width<T>());
    const M valid = (idx != yv) & (idx < cv);
    const V m = load_chunk(s, k, C, T(0)) - sy + mg;
    acc += hinge_term<Squared>(m, valid);
    if (Grad) {
      const V d = hinge_slope<Squared>(m, valid);
      cnt += d;
      store_chunk(g, k, C, d * gs);
    }
  }
  if (Grad) g[y] = -(gs * hsum(cnt));
  return hsum(acc);
}

template <class T, bool Squared, bool Grad, int CT>
FL_INLINE T hinge_cs_row(const T* s, int64_t C_, int64_t y, T margin, T* g, T gs) {
  using V = vec<T>;
  using M = ivec<T>;
  using I = typename VecT<T>::I;
  const int64_t C = CT > 0 ? CT : C_;
  // The entries outside j* and y are 0 * gs: NaN when gs is (a mean over a zero total
  // weight, an infinite weight), as the other losses and NumPy give them.
  if (C < 2) {
    if (Grad)
      for (int64_t k = 0; k < chunks<T>(C); ++k) store_chunk(g, k, C, V{} * gs);
    return T(0);
  }
  const T ninf = -std::numeric_limits<T>::infinity();
  const M yv = M{} + I(y), cv = M{} + I(C);
  V mx = splat(ninf);
  M nan{};
  for (int64_t k = 0; k < chunks<T>(C); ++k) {
    const M idx = iota<T>() + I(k * width<T>());
    const M valid = (idx != yv) & (idx < cv);
    const V x = load_chunk(s, k, C, ninf);
    const V v = valid ? x : splat(ninf);
    mx = v > mx ? v : mx;
    nan |= valid & (x != x);
  }
  const T mxs = hmax(mx);
  // a true lane is -1: hmax(nan) is 0 unless every lane saw a NaN, hmax(-nan) is 1 if any did
  const bool any_nan = hmax(M{} - nan) != 0;
  int64_t jstar = -1;
  for (int64_t j = 0; j < C; ++j) {
    if (j == y) continue;
    if (any_nan ? s[j] != s[j] : s[j] == mxs) {
      jstar = j;
      break;
    }
  }
  const T m = s[jstar] - s[y] + margin;
  if (Grad)  // after every read of s (g may be s itself); 0 * gs as above
    for (int64_t k = 0; k < chunks<T>(C); ++k) store_chunk(g, k, C, V{} * gs);
  if (Grad && m > T(0)) {  // = (not += on 0 * gs): +-inf, not NaN, for an infinite gs
    const T d = gs * (Squared ? m + m : T(1));
    g[jstar] = d;
    g[y] = -d;
  }
  const T h = m <= T(0) ? T(0) : m;
  return Squared ? h * h : h;
}

// ---- The same math over W rows at once ("lanes"), for rows of at most 16 classes -------
// col[j] holds class j's scores of W rows (one row per SIMD lane), y their labels, sy
// their label's scores (col[y] lane by lane), gs their gradient scales. Returns the unweighted losses and, when Grad, writes out[j] =
// gs * dL/ds_j. No horizontal operation: every step is one vector op per class.

template <class T, bool Squared, bool Grad, int CT>
FL_INLINE vec<T> hinge_ww_lanes(const vec<T>* col, int C, ivec<T> y, vec<T> sy, T margin,
                                vec<T> gs, vec<T>* out) {
  using V = vec<T>;
  const int n = CT > 0 ? CT : C;
  V acc{}, cnt{};
  for (int j = 0; j < n; ++j) {
    const V m = col[j] - sy + margin;
    acc += hinge_term<Squared>(m, y != j);
    if (Grad) {
      const V d = hinge_slope<Squared>(m, y != j);
      cnt += d;
      out[j] = d * gs;
    }
  }
  if (Grad)
    for (int j = 0; j < n; ++j) out[j] = (y == j) ? -(gs * cnt) : out[j];
  return acc;
}

template <class T, bool Squared, bool Grad, int CT>
FL_INLINE vec<T> hinge_cs_lanes(const vec<T>* col, int C, ivec<T> y, vec<T> sy, T margin,
                                vec<T> gs, vec<T>* out) {
  using V = vec<T>;
  using M = ivec<T>;
  const int n = CT > 0 ? CT : C;
  if (n < 2) {
    if (Grad)
      for (int j = 0; j < n; ++j) out[j] = V{} * gs;
    return V{};
  }
  const V ninf = splat(-std::numeric_limits<T>::infinity());
  V mx = ninf;
  M nan{};
  for (int j = 0; j < n; ++j) {
    const V v = (y != j) ? col[j] : ninf;
    mx = v > mx ? v : mx;
    nan |= (y != j) & (col[j] != col[j]);
  }
  M jstar = M{} - 1;
  for (int j = 0; j < n; ++j) {
    const M hit = (y != j) & ((nan & (col[j] != col[j])) | (~nan & (col[j] == mx)));
    jstar = ((jstar < 0) & hit) ? M{} + j : jstar;
  }
  V sj{};
  for (int j = 0; j < n; ++j) sj = (jstar == j) ? col[j] : sj;
  const V m = sj - sy + margin;
  const M all = M{} == 0;
  if (Grad) {  // gs * (+-slope or 0): the same bits as +-(gs * slope), NaN with gs
    const V d = hinge_slope<Squared>(m, all);
    for (int j = 0; j < n; ++j) out[j] = gs * (((jstar == j) ? d : V{}) - ((y == j) ? d : V{}));
  }
  return hinge_term<Squared>(m, all);
}

FASTLOSS_NS_END
