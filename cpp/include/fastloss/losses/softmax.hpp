// Softmax cross-entropy: the per-row math, once, for float and double.
//
//   p = softmax(s) (max-shifted), d_c = s_c - max(s), lse = log(sum_c exp(d_c))
//   L = -sum_c a_c log p_c = A * lse - sum_c a_c d_c,   dL/ds = A p - a,   A = sum_c a_c
//   hard label y:  a_c = (1 - eps) cw_y [c == y] + (eps / C) cw_c
//   soft target q: a_c = cw_c ((1 - eps) q_c + eps / C)
// (cw = class weights, 1 when absent; exactly PyTorch's cross_entropy.)
//
// A row is done in three steps around two flat SIMD passes that the block driver makes
// over all the rows of a block (score.hpp): prepare (e = s - max, and the target sums),
// then exp over the block, then finish (the gradient from e, the row's exp sum), then log
// over the block's sums, then the loss. CT > 0 fixes C at compile time.
#pragma once

#include <cmath>
#include <limits>

#include "../config.hpp"
#include "../simd.hpp"
#include "../vmath.hpp"

FASTLOSS_NS_BEGIN

// Options of the cross-entropy that are the same for every row.
template <class T>
struct SoftmaxCEParams {
  T eps = 0;            // label smoothing
  T keep = 1;           // 1 - eps
  T eps_c = 0;          // eps / C
  const T* cw = nullptr;  // class weights as T (all ones when none were given)
  const T* ecw = nullptr;  // (eps / C) cw_c, formed in double (null when eps = 0)
  bool weighted = false;  // class weights were given
  T eps_sum_cw = 0;       // (eps / C) sum_c cw_c, summed in double
};

// e = s - max(s); returns max(s).
template <class T, int CT>
FL_INLINE T softmax_shift_row(const T* s, int64_t C_, T* e) {
  using V = vec<T>;
  const int64_t C = CT > 0 ? CT : C_;
  const T ninf = -std::numeric_limits<T>::infinity();
  V mx = splat(ninf);
  for (int64_t k = 0; k < chunks<T>(C); ++k) {
    const V x = load_chunk(s, k, C, ninf);
    mx = x > mx ? x : mx;
  }
  const T m = hmax(mx);
  for (int64_t k = 0; k < chunks<T>(C); ++k) store_chunk(e, k, C, load_chunk(s, k, C, T(0)) - m);
  return m;
}

template <class T, int CT>
FL_INLINE T row_sum(const T* FL_RESTRICT e, int64_t C_) {
  const int64_t C = CT > 0 ? CT : C_;
  vec<T> acc{};
  for (int64_t k = 0; k < chunks<T>(C); ++k) acc += load_chunk(e, k, C, T(0));
  return hsum(acc);
}

// sum_c w_c e_c
template <class T, int CT>
FL_INLINE T row_dot(const T* FL_RESTRICT w, const T* FL_RESTRICT e, int64_t C_) {
  const int64_t C = CT > 0 ? CT : C_;
  vec<T> acc{};
  for (int64_t k = 0; k < chunks<T>(C); ++k)
    acc += load_chunk(w, k, C, T(0)) * load_chunk(e, k, C, T(0));
  return hsum(acc);
}

// Soft target: the weights a_c = cw_c (keep q_c + eps/C) of chunk k.
template <class T>
FL_INLINE vec<T> soft_weights(const T* q, int64_t k, int64_t C, const SoftmaxCEParams<T>& P) {
  return load_chunk(P.cw, k, C, T(0)) * (load_chunk(q, k, C, T(0)) * P.keep + P.eps_c);
}

// Before exp. Hard label: returns d_y = e_y = s_y - max and sets *aux =
// sum_c (eps / C) cw_c d_c (needed with eps > 0). Soft target: sets *aux = A = sum_c a_c and returns
// sum_c a_c d_c. Reads e only, so e may be s itself (in place).
template <class T, int CT>
FL_INLINE T softmax_ce_prepare(const T* s, T mx, const T* e, int64_t C_,
                               int64_t y, const T* q, const SoftmaxCEParams<T>& P, T* aux) {
  const int64_t C = CT > 0 ? CT : C_;
  if (q) {
    vec<T> A{}, ad{};
    for (int64_t k = 0; k < chunks<T>(C); ++k) {
      const vec<T> a = soft_weights(q, k, C, P);
      A += a;
      ad += a * load_chunk(e, k, C, T(0));
    }
    *aux = hsum(A);
    return hsum(ad);
  }
  *aux = P.eps > T(0) ? row_dot<T, CT>(P.ecw, e, C) : T(0);
  (void)s;
  (void)mx;
  return e[y];
}

// The target mass A of a hard-label row.
template <class T>
FL_INLINE T softmax_ce_mass(int64_t y, const SoftmaxCEParams<T>& P) {
  const T cy = P.cw[y];
  return P.eps > T(0) ? P.keep * cy + P.eps_sum_cw : cy;
}

// After exp (e holds exp(s - max)): returns sum_c e_c and, when Grad, writes
// g = gs * (A p - a) (g may be e itself).
template <class T, bool Grad, int CT>
FL_INLINE T softmax_ce_finish(const T* e, int64_t C_, int64_t y, const T* q, T A, T* g, T gs,
                              const SoftmaxCEParams<T>& P) {
  const int64_t C = CT > 0 ? CT : C_;
  const T sum = row_sum<T, CT>(e, C);
  if (!Grad) return sum;
  // gs folded into p's factor saves a multiply, unless gs * A overflows (huge weights):
  // then (A p - a) * gs, NumPy's order (finite where the true gradient is finite).
  const bool fold = !q && std::isfinite(gs * A);  // (soft targets may be negative)
  const T k1 = fold ? gs * A / sum : A / sum, ka = fold ? gs : T(1), kg = fold ? T(1) : gs;
  if (q) {
    for (int64_t k = 0; k < chunks<T>(C); ++k)
      store_chunk(g, k, C,
                  (load_chunk(e, k, C, T(0)) * k1 - soft_weights(q, k, C, P) * ka) * kg);
    return sum;
  }
  using M = ivec<T>;
  using I = typename VecT<T>::I;
  const M yv = M{} + I(y);
  const vec<T> ky = splat(ka * (P.keep * P.cw[y]));  // the label's share of a (times gs)
  for (int64_t k = 0; k < chunks<T>(C); ++k) {
    const M at_y = (iota<T>() + I(k * width<T>())) == yv;
    vec<T> v = load_chunk(e, k, C, T(0)) * k1 - (at_y ? ky : vec<T>{});
    if (P.eps > T(0)) v -= load_chunk(P.ecw, k, C, T(0)) * ka;
    store_chunk(g, k, C, fold ? v : v * kg);
  }
  return sum;
}

// sum_j v[j] for j < n (CT > 0: n = CT, known at compile time, summed pairwise: log2(n)
// dependent adds rather than n - 1).
template <int CT, class V>
FL_INLINE V sum_vectors(const V* v, int n) {
  if constexpr (CT > 0) {
    V s[CT];
#pragma GCC unroll 16
    for (int j = 0; j < CT; ++j) s[j] = v[j];
#pragma GCC unroll 8
    for (int m = CT; m > 1; m = (m + 1) / 2) {
#pragma GCC unroll 16
      for (int i = 0; i < m / 2; ++i) s[i] = s[2 * i] + s[2 * i + 1];
      if (m % 2) s[m / 2] = s[m - 1];
    }
    return s[0];
  } else {
    V s{};
    for (int j = 0; j < n; ++j) s += v[j];
    return s;
  }
}

// ---- The same math over W rows at once ("lanes"), for rows of at most 16 classes -------
// col[j] (qcol[j]) holds class j's scores (soft targets) of W rows, one row per lane, sy
// the scores at their labels (col[y] lane by lane);
// E is scratch for CT vectors. Returns the unweighted losses and, when Grad, writes
// out[j] = gs * dL/ds_j. The exps of all CT x W entries are one vexp pass, with one test
// of its range for all of them.
template <class T, bool Grad, bool Soft, int CT>
FL_INLINE vec<T> softmax_ce_lanes(const vec<T>* col, const vec<T>* qcol, int C, ivec<T> y,
                                  vec<T> sy, vec<T> gs, const SoftmaxCEParams<T>& P,
                                  vec<T>* E, vec<T>* out) {
  using V = vec<T>;
  const int n = CT > 0 ? CT : C;
  V mx = col[0];
  for (int j = 1; j < n; ++j) mx = col[j] > mx ? col[j] : mx;
  V dy{}, aux{}, A{}, cy = splat(T(1)), lo{};
  for (int j = 0; j < n; ++j) {
    const V d = col[j] - mx;
    E[j] = d;
    lo = d < lo ? d : lo;
    if (Soft) {
      const V a = (qcol[j] * P.keep + P.eps_c) * P.cw[j];
      A += a;
      aux += a * d;
    } else {
      if (P.eps > T(0)) aux += d * P.ecw[j];
    }
  }
  if (!Soft) {
    dy = sy - mx;  // (sy = col[y]: the same bits as d at y)
    if (P.weighted) cy = gather_at(P.cw, y);
  }
  vexp_vectors<CT>(E, n, lo);
  const V sum = sum_vectors<CT>(E, n);
  if (!Soft) A = P.eps > T(0) ? cy * P.keep + P.eps_sum_cw : cy;
  if (Grad) {
    // gs folded into p's factor saves a multiply per entry, unless gs * A overflows in some
    // lane (huge weights): then (A p - a) * gs, NumPy's order.
    const V gA = gs * A;
    if (!Soft && hsum(gA - gA) == T(0)) {  // every lane finite (soft targets: a_j may exceed A)
      const V k1 = gA / sum, ky = gs * cy * P.keep;
      ivec<T> yj = y;  // y - j: the label's lanes where 0 (no per-class constants)
      for (int j = 0; j < n; ++j) {
        V g = E[j] * k1 - ((yj == 0) ? ky : V{});
        yj -= 1;
        // (the empty asm keeps the compiler from turning yj == 0 back into y == j, whose
        // constant j it builds in three instructions per class: double 3 % faster)
        asm("" : "+v"(yj));
        if (P.eps > T(0)) g -= gs * P.ecw[j];
        out[j] = g;
      }
    } else {
      const V k1 = A / sum;
      ivec<T> yj = y;
      for (int j = 0; j < n; ++j, yj -= 1) {
        V g = E[j] * k1;
        if (Soft)
          g -= (qcol[j] * P.keep + P.eps_c) * P.cw[j];
        else {
          g -= (yj == 0) ? cy * P.keep : V{};
          if (P.eps > T(0)) g -= splat(P.ecw[j]);
        }
        out[j] = g * gs;
      }
    }
  }
  // the losses after the gradient: the log's dependent chain then overlaps the stores
  const V lse = vlog(sum);
  if (Soft) return A * lse - aux;
  if (P.eps > T(0))  // with eps = 1 the label's term is absent (not 0 * -inf = NaN)
    return A * lse - (P.keep > T(0) ? cy * dy * P.keep : V{}) - aux;
  return cy * (lse - dy);
}

// The row's loss from lse = log(sum), the prepared d_y (or sum a d) and aux.
template <class T>
FL_INLINE double softmax_ce_loss(bool soft, int64_t y, T lse, T dy_or_ad, T aux, T A,
                                 const SoftmaxCEParams<T>& P) {
  if (soft) return double(A) * double(lse) - double(dy_or_ad);
  const double cy = double(P.cw[y]);
  if (P.eps > T(0))  // with eps = 1 the label's term is absent (not 0 * -inf = NaN)
    return double(A) * double(lse) -
           (P.keep > T(0) ? double(P.keep) * cy * double(dy_or_ad) : 0.0) -
           double(aux);
  return cy * (double(lse) - double(dy_or_ad));
}

FASTLOSS_NS_END
