// Score-level entry points: a matrix of class scores in, loss (and gradient) out. These
// put the per-row math of losses/ into the driver's blocks; nothing here depends on the
// thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
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

// The sum of weights that "mean" divides by (ignored rows left out); checks the labels
// when it reads them.
template <class T>
double mean_denominator(const ScoreLossArgs<T>& a, LabelError& err) {
  const int64_t N = a.N;
  double d = 0.0;
  if (a.y && (a.class_weight || a.has_ignore)) {
    for (int64_t i = 0; i < N; ++i) {
      const int64_t y = a.y[i];
      if (a.ignored(y)) continue;
      if (!label_ok(y, a.C)) {
        err = LabelError{i, y};
        return 0.0;
      }
      d += (a.sample_weight ? a.sample_weight[i] : 1.0) *
           (a.class_weight ? a.class_weight[y] : 1.0);
    }
  } else if (a.sample_weight) {
    for (int64_t i = 0; i < N; ++i) d += a.sample_weight[i];
  } else {
    d = double(N);
  }
  return d;
}

// An ignored row (ScoreLossArgs::ignored): loss 0 and gradient row 0.
template <class T>
void clear_row(const ScoreLossArgs<T>& a, int64_t i) {
  if (a.G) std::fill_n(a.G + i * a.ldg, a.C, T(0));
  if (a.L) a.L[i] = T(0);
}

// The hinge row functions as types, so that the block loop inlines them.
template <class T, bool Sq, bool Grad, int CT>
struct HingeWW {
  FL_INLINE T operator()(const T* s, int64_t C, int64_t y, T margin, T* g, T gs) const {
    return hinge_ww_row<T, Sq, Grad, CT>(s, C, y, margin, g, gs);
  }
};
template <class T, bool Sq, bool Grad, int CT>
struct HingeCS {
  FL_INLINE T operator()(const T* s, int64_t C, int64_t y, T margin, T* g, T gs) const {
    return hinge_cs_row<T, Sq, Grad, CT>(s, C, y, margin, g, gs);
  }
};

template <class T, class RowFn>
double hinge_block(const ScoreLossArgs<T>& a, int64_t r0, int64_t r1, double scale,
                   LabelError& err, RowFn row) {
  double acc[4] = {0.0, 0.0, 0.0, 0.0};  // independent chains, fixed order
  const T margin = T(a.margin);
  for (int64_t i = r0; i < r1; ++i) {
    const int64_t y = a.y[i];
    if (a.ignored(y)) {
      clear_row(a, i);
      continue;
    }
    if (!label_ok(y, a.C)) {
      if (err.row < 0) err = LabelError{i, y};
      continue;
    }
    double w = a.sample_weight ? a.sample_weight[i] : 1.0;
    if (a.class_weight) w *= a.class_weight[y];
    const double li = double(row(a.S + i * a.lds, a.C, y, margin,
                                 a.G ? a.G + i * a.ldg : nullptr, T(w * scale)));
    const double wl = w * li;
    if (a.L) a.L[i] = T(wl);
    acc[i & 3] += wl;
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

template <class T, bool Grad, int CT>
double softmax_block(const ScoreLossArgs<T>& a, int64_t r0, int64_t r1, double scale,
                     LabelError& err, const SoftmaxCEParams<T>& P) {
  const int64_t C = CT > 0 ? CT : a.C, rows = r1 - r0;
  const bool soft = a.Q != nullptr;
  BlockScratch<T> scratch;
  T* E = scratch.get(Grad ? a.G : nullptr, a.ldg, r0, rows, C);
  alignas(64) T dy[kBlockMaxRows], aux[kBlockMaxRows], A[kBlockMaxRows], sm[kBlockMaxRows];
  int64_t yr[kBlockMaxRows];
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r0 + r;
    int64_t y = 0;
    if (!soft) {
      y = a.y[i];
      if (a.ignored(y)) {
        y = -2;  // (rows < 0 are skipped; -2: cleared after the exps)
      } else if (!label_ok(y, C)) {
        if (err.row < 0) err = LabelError{i, y};
        y = -1;
      }
    }
    yr[r] = y;
    const T* q = soft ? a.Q + i * a.ldq : nullptr;
    T* e = E + r * C;
    const T* s = a.S + i * a.lds;
    const T mx = softmax_shift_row<T, CT>(s, C, e);
    if (y < 0) continue;
    dy[r] = softmax_ce_prepare<T, CT>(s, mx, e, C, y, q, P, &aux[r]);
    A[r] = soft ? aux[r] : softmax_ce_mass(y, P);
  }
  vexp_array(E, E, rows * C);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r0 + r, y = yr[r];
    if (y < 0) {
      sm[r] = T(1);
      if (y == -2) clear_row(a, i);  // (after its exps: E may be its gradient row)
      continue;
    }
    const double w = a.sample_weight ? a.sample_weight[i] : 1.0;
    const T* q = soft ? a.Q + i * a.ldq : nullptr;
    T* g = Grad ? a.G + i * a.ldg : nullptr;
    sm[r] = softmax_ce_finish<T, Grad, CT>(E + r * C, C, y, q, A[r], g, T(w * scale), P);
  }
  FL_SIMD
  for (int64_t r = 0; r < rows; ++r) sm[r] = vlog(sm[r]);
  double acc[4] = {0.0, 0.0, 0.0, 0.0};  // independent chains, fixed order
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r0 + r;
    if (yr[r] < 0) continue;
    const double w = a.sample_weight ? a.sample_weight[i] : 1.0;
    // C == 0 (soft targets of no class): the empty sum -sum_c q_c log p_c is 0 (the
    // rearranged A lse - sum_c a_c d_c would be 0 * log 0 = NaN)
    const double wl = C > 0 ? w * softmax_ce_loss(soft, yr[r], sm[r], dy[r], aux[r], A[r], P)
                            : w * 0.0;
    if (a.L) a.L[i] = T(wl);
    acc[r & 3] += wl;
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// ---- Short rows (at most kLaneMaxC classes): W rows at a time, one per SIMD lane -------
// CT > 0: C fixed at compile time; CT == -1: C at run time.
constexpr int64_t kLaneMaxC = 16;

// Walks rows r0..r1 in groups of W: checks the labels, gathers the group's scores (and
// soft targets) class by class into vectors, lets fn compute the losses and gradients,
// weighs and sums the losses, and scatters the gradients back into rows. A short last
// group repeats its last row in the unused lanes. class_in_weight: the sample weight
// includes class_weight[y] (the hinge); otherwise the loss applies class weights itself.
// col[j][l] = row l's element j, row l at row(l): by SIMD element for a compile-time C
// (the compiler unrolls it into gathers and shuffles), through memory row by row for a
// run-time C.
template <class T, int CT, class RowAt>
FL_INLINE void gather_lanes(RowAt row, int C, vec<T>* col) {
  constexpr int W = width<T>();
  if constexpr (CT > 0) {
    for (int j = 0; j < CT; ++j)
      for (int l = 0; l < W; ++l) col[j][l] = row(l)[j];
  } else {
    T* c = reinterpret_cast<T*>(col);  // vector types alias their element type
    for (int l = 0; l < W; ++l) {
      const T* r = row(l);
      for (int j = 0; j < C; ++j) c[j * W + l] = r[j];
    }
  }
}

// row(l)[j] = col[j][l] for the first nl lanes.
template <class T, int CT, class RowAt>
FL_INLINE void scatter_lanes(const vec<T>* col, int C, int nl, RowAt row) {
  constexpr int W = width<T>();
  if constexpr (CT > 0) {
    for (int l = 0; l < nl; ++l)
      for (int j = 0; j < CT; ++j) row(l)[j] = col[j][l];
  } else {
    const T* c = reinterpret_cast<const T*>(col);
    for (int l = 0; l < nl; ++l) {
      T* r = row(l);
      for (int j = 0; j < C; ++j) r[j] = c[j * W + l];
    }
  }
}

// The same for a compile-time C on SIMD targets with a transpose (simd.hpp): whole-vector
// loads of the W rows at base (row stride ld), W x W transposes. The loads of the last
// chunk read up to W - 1 elements past a row's end: the caller checks that these lie in the
// rows that follow, inside its own block (see lane_block).
template <class T, int CT>
constexpr bool lanes_overread() {  // whether gather_lanes_fast reads past a row's end
  constexpr int W = width<T>(), tail = CT - (CT + W - 1) / W * W + W;
  return !(tail == W || (tail == 2 && kHaveCols2));
}

template <class T, int CT>
FL_INLINE void gather_lanes_fast(const T* base, int64_t ld, vec<T>* col) {
  constexpr int W = width<T>(), NB = (CT + W - 1) / W, tail = CT - (NB - 1) * W;
  if constexpr (tail == 2 && tail < W && kHaveCols2) {  // (the last two columns by pairs)
    vec<T> c0, c1;
    load_cols2(base + (NB - 1) * W, ld, c0, c1);
    col[(NB - 1) * W] = c0;
    col[(NB - 1) * W + 1] = c1;
    for (int b = 0; b + 1 < NB; ++b) {
      vec<T> v[W];
      for (int l = 0; l < W; ++l) v[l] = load(base + l * ld + b * W);
      transpose(v);
      for (int j = 0; j < W; ++j) col[b * W + j] = v[j];
    }
    return;
  }
  for (int b = 0; b < NB; ++b) {
    vec<T> v[W];
    for (int l = 0; l < W; ++l) v[l] = load(base + l * ld + b * W);
    transpose(v);
    for (int j = 0; j < W; ++j)
      if (b * W + j < CT) col[b * W + j] = v[j];
  }
}

// row l of base = the lanes l of col, for all W rows. With contiguous rows (ld == CT) the
// last chunk of row l is stored whole: what spills into row l + 1 is rewritten when that
// row is stored next (the last row stores only its own elements); else element-wise.
template <class T, int CT>
FL_INLINE void scatter_lanes_fast(const vec<T>* col, T* base, int64_t ld) {
  constexpr int W = width<T>(), NB = (CT + W - 1) / W, tail = CT - (NB - 1) * W;
  if constexpr (tail <= 2 && tail < W && kHaveCols2) {
    for (int b = 0; b + 1 < NB; ++b) {
      vec<T> v[W];
      for (int j = 0; j < W; ++j) v[j] = col[b * W + j];
      transpose(v);
      for (int l = 0; l < W; ++l) store(base + l * ld + b * W, v[l]);
    }
    if constexpr (tail == 2) {
      store_cols2(base + (NB - 1) * W, ld, col[(NB - 1) * W], col[(NB - 1) * W + 1]);
    } else {  // one column
      for (int l = 0; l < W; ++l) base[l * ld + (NB - 1) * W] = col[(NB - 1) * W][l];
    }
    return;
  }
  vec<T> v[NB][W];
  for (int b = 0; b < NB; ++b) {
    for (int j = 0; j < W; ++j) v[b][j] = b * W + j < CT ? col[b * W + j] : vec<T>{};
    transpose(v[b]);
  }
  const bool spill = ld == CT && W - tail <= CT;
  for (int l = 0; l < W; ++l) {
    T* r = base + l * ld;
    for (int b = 0; b + 1 < NB; ++b) store(r + b * W, v[b][l]);
    if (tail == W || (spill && l + 1 < W))
      store(r + (NB - 1) * W, v[NB - 1][l]);
    else
      store_part(r + (NB - 1) * W, v[NB - 1][l], tail);
  }
}

template <class T, int CT, bool Grad, class LaneFn>
double lane_block(const ScoreLossArgs<T>& a, int64_t r0, int64_t r1, double scale,
                  LabelError& err, bool class_in_weight, const LaneFn& fn) {
  using V = vec<T>;
  using M = ivec<T>;
  using I = typename VecT<T>::I;
  constexpr int W = width<T>();
  constexpr int NC = CT > 0 ? CT : int(kLaneMaxC);
  const int C = CT > 0 ? CT : int(a.C);
  V col[NC]{}, qcol[NC]{}, out[NC]{};
  alignas(64) double w[W];
  int64_t row[W];
  double acc[4] = {0.0, 0.0, 0.0, 0.0};  // independent chains, fixed order
  using DV = typename VecT<double, W * int(sizeof(double))>::V;  // W doubles
  DV vacc{};  // full groups without per-row outputs: a chain per lane, fixed order
  // Whole-vector loads of a group read up to W - 1 elements past its last row: fast only
  // when the next row exists, belongs to this block (no other thread writes it), and the
  // overread ends inside it.
  constexpr int NBv = (NC + W - 1) / W;
  auto fast_rows = [&](int64_t ld, int64_t i0) {
    if constexpr (CT > 0) {
      if (!has_transpose<T>() || ld < C) return false;
      return !lanes_overread<T, CT>() || (i0 + W < r1 && NBv * W <= ld + C);
    }
    return false;
  };
  // an ignored label that load_labels takes for a valid one
  const bool ignore_in_range = a.has_ignore && label_ok(a.ignore_index, C);
  for (int64_t i0 = r0; i0 < r1; i0 += W) {
    const int nl = int(std::min<int64_t>(W, r1 - i0));
    M y{};
    V gs{};
    M ign{};  // the lanes of ignored rows (-1)
    bool any_ign = false;
    bool simple = nl == W && !(class_in_weight && a.class_weight);
    if (simple && a.y)  // the common case in SIMD: a full group, valid labels
      simple = load_labels<T>(a.y + i0, C, y);
    if (simple && ignore_in_range)
      for (int l = 0; l < W; ++l) simple &= !a.ignored(a.y[i0 + l]);
    if (simple) {
      if (a.sample_weight) {
        for (int l = 0; l < W; ++l) {
          w[l] = a.sample_weight[i0 + l];
          gs[l] = T(w[l] * scale);
        }
      } else {
        gs = splat(T(scale));  // (w unused: unit weights)
      }
      if constexpr (CT > 0 && has_transpose<T>()) {
        if (fast_rows(a.lds, i0))
          gather_lanes_fast<T, CT>(a.S + i0 * a.lds, a.lds, col);
        else
          gather_lanes<T, CT>([&](int l) { return a.S + (i0 + l) * a.lds; }, C, col);
        if (a.Q) {
          if (fast_rows(a.ldq, i0))
            gather_lanes_fast<T, CT>(a.Q + i0 * a.ldq, a.ldq, qcol);
          else
            gather_lanes<T, CT>([&](int l) { return a.Q + (i0 + l) * a.ldq; }, C, qcol);
        }
      } else {
        gather_lanes<T, CT>([&](int l) { return a.S + (i0 + l) * a.lds; }, C, col);
        if (a.Q) gather_lanes<T, CT>([&](int l) { return a.Q + (i0 + l) * a.ldq; }, C, qcol);
      }
    } else {
      for (int l = 0; l < W; ++l) {
        const int64_t i = i0 + std::min(l, nl - 1);
        row[l] = i;
        double wi = a.sample_weight ? a.sample_weight[i] : 1.0;
        y[l] = 0;
        if (a.y) {
          const int64_t yv = a.y[i];
          if (a.ignored(yv)) {
            ign[l] = -1;
            any_ign = true;
            wi = 0.0;
          } else if (label_ok(yv, C)) {
            y[l] = I(yv);
            if (class_in_weight && a.class_weight) wi *= a.class_weight[yv];
          } else {
            if (err.row < 0 && l < nl) err = LabelError{i, yv};
            wi = 0.0;
          }
        }
        w[l] = wi;
        gs[l] = T(wi * scale);
      }
      gather_lanes<T, CT>([&](int l) { return a.S + row[l] * a.lds; }, C, col);
      if (a.Q) gather_lanes<T, CT>([&](int l) { return a.Q + row[l] * a.ldq; }, C, qcol);
    }
    // the label's score of each lane, read from its row (an invalid label reads class 0)
    V sy{};
    if (a.y) {
      if (simple && a.lds < (int64_t(1) << 27))
        sy = gather_at(a.S + i0 * a.lds, iota<T>() * I(a.lds) + y);
      else
        for (int l = 0; l < W; ++l) sy[l] = a.S[(simple ? i0 + l : row[l]) * a.lds + y[l]];
    }
    V loss = fn(col, qcol, C, y, sy, gs, out);
    if (any_ign) {  // ignored rows: loss 0, gradient 0 (not 0 times a NaN or inf)
      for (int j = 0; j < C; ++j) out[j] = (ign != 0) ? V{} : out[j];
      loss = (ign != 0) ? V{} : loss;
    }
    // the gradient stored before the losses are summed (float: 6-16 % faster this way)
    if (Grad) {
      bool whole = false;
      if constexpr (CT > 0 && has_transpose<T>()) {
        whole = nl == W && a.ldg >= C;
        if (whole) scatter_lanes_fast<T, CT>(out, a.G + i0 * a.ldg, a.ldg);
      }
      if (!whole) scatter_lanes<T, CT>(out, C, nl, [&](int l) { return a.G + (i0 + l) * a.ldg; });
    }
    if (nl == W && !a.L) {
      if (simple && !a.sample_weight) {
        vacc += __builtin_convertvector(loss, DV);
      } else {
        DV wv;
        std::memcpy(&wv, w, sizeof wv);
        vacc += __builtin_convertvector(loss, DV) * wv;
      }
    } else {
      for (int l = 0; l < nl; ++l) {
        const double wl = (simple && !a.sample_weight ? 1.0 : w[l]) * double(loss[l]);
        if (a.L) a.L[i0 + l] = T(wl);
        acc[l & 3] += wl;
      }
    }
  }
  alignas(64) double lanes[W];
  std::memcpy(lanes, &vacc, sizeof lanes);
  for (int h = W / 2; h > 0; h /= 2)  // the lanes' chains, pairwise
    for (int l = 0; l < h; ++l) lanes[l] += lanes[l + h];
  return lanes[0] + ((acc[0] + acc[1]) + (acc[2] + acc[3]));
}

// The options of the cross-entropy for one call, with the class weights as T (on the stack
// for up to kLocal classes: no allocation in a small call), and (eps / C) cw_c only when
// eps > 0 (the only case that reads them).
template <class T>
struct SoftmaxParamsHolder {
  static constexpr int64_t kLocal = 32;
  T cw_local[kLocal], ecw_local[kLocal];
  std::vector<T> cw_heap, ecw_heap;
  SoftmaxCEParams<T> P;
  SoftmaxParamsHolder(int64_t C, const double* class_weight, double eps) {
    T* cw = cw_local;
    T* ecw = ecw_local;
    if (C > kLocal) {
      cw_heap.resize(size_t(C));
      cw = cw_heap.data();
      if (eps > 0.0) {
        ecw_heap.resize(size_t(C));
        ecw = ecw_heap.data();
      }
    }
    P.eps = T(eps);
    P.keep = T(1.0 - eps);
    const double eps_c = C > 0 ? eps / double(C) : 0.0;
    P.eps_c = T(eps_c);
    P.weighted = class_weight != nullptr;
    // (eps / C) times each class weight, and their sum, formed in double: the sums
    // sum_c cw_c (d_c) would overflow for weights near the largest finite value
    double eps_sum = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      const double w = class_weight ? class_weight[c] : 1.0;
      cw[c] = T(w);
      if (eps > 0.0) {
        ecw[c] = T(eps_c * w);
        eps_sum += eps_c * w;
      }
    }
    P.cw = cw;
    P.ecw = eps > 0.0 ? ecw : nullptr;
    P.eps_sum_cw = T(eps_sum);
  }
  SoftmaxParamsHolder(const SoftmaxParamsHolder&) = delete;
  SoftmaxParamsHolder& operator=(const SoftmaxParamsHolder&) = delete;
};

// One block of rows of a score-level loss, chosen once per call (loss, squared, gradient
// or not, C fixed at compile time or not) and then called per block through a pointer:
// block(a, r0, r1, err) returns the weighted loss sum of rows r0..r1 of `a` and writes
// their gradient rows. The model-level kernels (linear.hpp) call it on their own blocks.
template <class T>
struct ScoreBlock {
  using Fn = double (*)(const ScoreBlock&, const ScoreLossArgs<T>&, int64_t, int64_t,
                        LabelError&);
  Fn fn = nullptr;
  const SoftmaxCEParams<T>* P = nullptr;
  double scale = 1.0;
  T margin = T(1);
  double operator()(const ScoreLossArgs<T>& a, int64_t r0, int64_t r1, LabelError& err) const {
    return fn(*this, a, r0, r1, err);
  }
};

enum class BlockKind : int { hinge_ww, hinge_ww2, hinge_cs, hinge_cs2, ce, ce_soft };

template <class T, int CT, bool Grad, BlockKind K>
double score_block_entry(const ScoreBlock<T>& sb, const ScoreLossArgs<T>& a, int64_t r0,
                         int64_t r1, LabelError& err) {
  const double scale = sb.scale;
  const T mg = sb.margin;
  using V = vec<T>;
  using M = ivec<T>;
  if constexpr (CT != 0) {  // short rows: the lanes
    if constexpr (K == BlockKind::hinge_ww || K == BlockKind::hinge_ww2) {
      constexpr bool Sq = K == BlockKind::hinge_ww2;
      return lane_block<T, CT, Grad>(
          a, r0, r1, scale, err, true,
          [&](const V* c, const V*, int C, M y, V sy, V gs, V* o) {
            return hinge_ww_lanes<T, Sq, Grad, CT>(c, C, y, sy, mg, gs, o);
          });
    } else if constexpr (K == BlockKind::hinge_cs || K == BlockKind::hinge_cs2) {
      constexpr bool Sq = K == BlockKind::hinge_cs2;
      return lane_block<T, CT, Grad>(
          a, r0, r1, scale, err, true,
          [&](const V* c, const V*, int C, M y, V sy, V gs, V* o) {
            return hinge_cs_lanes<T, Sq, Grad, CT>(c, C, y, sy, mg, gs, o);
          });
    } else {
      constexpr bool Soft = K == BlockKind::ce_soft;
      const SoftmaxCEParams<T>& P = *sb.P;
      return lane_block<T, CT, Grad>(
          a, r0, r1, scale, err, false,
          [&](const V* c, const V* q, int C, M y, V sy, V gs, V* o) {
            V E[kLaneMaxC];
            return softmax_ce_lanes<T, Grad, Soft, CT>(c, q, C, y, sy, gs, P, E, o);
          });
    }
  } else {  // long rows (or C == 1): SIMD along the row
    if constexpr (K == BlockKind::hinge_ww)
      return hinge_block(a, r0, r1, scale, err, HingeWW<T, false, Grad, 0>{});
    else if constexpr (K == BlockKind::hinge_ww2)
      return hinge_block(a, r0, r1, scale, err, HingeWW<T, true, Grad, 0>{});
    else if constexpr (K == BlockKind::hinge_cs)
      return hinge_block(a, r0, r1, scale, err, HingeCS<T, false, Grad, 0>{});
    else if constexpr (K == BlockKind::hinge_cs2)
      return hinge_block(a, r0, r1, scale, err, HingeCS<T, true, Grad, 0>{});
    else
      return softmax_block<T, Grad, 0>(a, r0, r1, scale, err, *sb.P);
  }
}

// The kinds that have a copy per compiled class count (CT > 0): the Weston-Watkins hinge
// and the cross-entropy with labels, the losses of the CS231n and PyTorch defaults. The
// squared hinge, Crammer-Singer and soft targets run the run-time copy (CT = -1).
constexpr bool kind_has_fixed_counts(BlockKind k) {
  return k == BlockKind::hinge_ww || k == BlockKind::ce;
}

template <class T, int CT, bool Grad>
typename ScoreBlock<T>::Fn score_block_fn(BlockKind k) {
  if constexpr (CT > 0) {  // (a kind_has_fixed_counts)
    return k == BlockKind::hinge_ww ? &score_block_entry<T, CT, Grad, BlockKind::hinge_ww>
                                    : &score_block_entry<T, CT, Grad, BlockKind::ce>;
  } else {
    switch (k) {
      case BlockKind::hinge_ww:
        return &score_block_entry<T, CT, Grad, BlockKind::hinge_ww>;
      case BlockKind::hinge_ww2:
        return &score_block_entry<T, CT, Grad, BlockKind::hinge_ww2>;
      case BlockKind::hinge_cs:
        return &score_block_entry<T, CT, Grad, BlockKind::hinge_cs>;
      case BlockKind::hinge_cs2:
        return &score_block_entry<T, CT, Grad, BlockKind::hinge_cs2>;
      case BlockKind::ce:
        return &score_block_entry<T, CT, Grad, BlockKind::ce>;
      default:
        return &score_block_entry<T, CT, Grad, BlockKind::ce_soft>;
    }
  }
}

// The block functions of one class count CT (a count of FL_CLASS_COUNTS, -1 or 0), with
// and without the gradient. Each CT is instantiated in one of src/isa_scores_*.cpp (a few
// counts a file, so that the build compiles them side by side); other units see them
// through FL_SCORE_CT_EXTERN.
template <class T, int CT>
typename ScoreBlock<T>::Fn score_block_fn_ct(BlockKind k, bool grad) {
  return grad ? score_block_fn<T, CT, true>(k) : score_block_fn<T, CT, false>(k);
}

#define FL_SCORE_CT_INSTANCE(prefix, CT)                                                 \
  prefix ScoreBlock<float>::Fn score_block_fn_ct<float, CT>(BlockKind, bool);           \
  prefix ScoreBlock<double>::Fn score_block_fn_ct<double, CT>(BlockKind, bool);
#define FL_SCORE_CT_EXTERN_(CT) FL_SCORE_CT_INSTANCE(extern template, CT)
#if FL_FIXED_CLASS_COUNTS
#define FL_SCORE_CT_EXTERN             \
  FL_CLASS_COUNTS(FL_SCORE_CT_EXTERN_) \
  FL_SCORE_CT_EXTERN_(-1)              \
  FL_SCORE_CT_EXTERN_(0)
#else
#define FL_SCORE_CT_EXTERN \
  FL_SCORE_CT_EXTERN_(-1)  \
  FL_SCORE_CT_EXTERN_(0)
#endif

// The block function for a call's options (a.loss, a.squared, a.Q, a.C, gradient or not).
template <class T>
ScoreBlock<T> make_score_block(const ScoreLossArgs<T>& a, bool grad,
                               const SoftmaxCEParams<T>* P, double scale) {
  BlockKind k;
  switch (a.loss) {
    case ScoreLoss::hinge_ww:
      k = a.squared ? BlockKind::hinge_ww2 : BlockKind::hinge_ww;
      break;
    case ScoreLoss::hinge_cs:
      k = a.squared ? BlockKind::hinge_cs2 : BlockKind::hinge_cs;
      break;
    default:
      k = a.Q ? BlockKind::ce_soft : BlockKind::ce;
  }
  ScoreBlock<T> sb;
  sb.P = P;
  sb.scale = scale;
  sb.margin = T(a.margin);
  sb.fn = with_class_count(a.C, kind_has_fixed_counts(k), [&](auto ct) {
    return score_block_fn_ct<T, decltype(ct)::value>(k, grad);
  });
  return sb;
}

// make_score_block is instantiated once per level, in src/isa_losses.cpp; other kernel
// units (isa_linear.cpp) declare FL_SCORE_BLOCK_INSTANCES(extern template) to use it.
#define FL_SCORE_BLOCK_INSTANCES(prefix)                                                 \
  prefix ScoreBlock<float> make_score_block<float>(const ScoreLossArgs<float>&, bool,   \
                                                   const SoftmaxCEParams<float>*, double); \
  prefix ScoreBlock<double> make_score_block<double>(const ScoreLossArgs<double>&, bool, \
                                                     const SoftmaxCEParams<double>*, double);

// float32 rows whose weight times the gradient's factor exceeds float's range: the
// blocks' factor T(w * scale) is inf there, so the row's zero entries would be 0 * inf =
// NaN where the exact gradient has 0. Those rows (found after a scan of the largest
// weights, and only when one may overflow) are computed again with the factor divided by
// 2^k, and their gradient multiplied back by 2^k in double: zeros stay zeros, products
// beyond float's range round to inf, as the exact gradient rounded to float does.
template <class T>
void regrade_overflowing_rows(const ScoreLossArgs<T>& a, const ScoreBlock<T>& block,
                              double scale) {
  const double big = double(std::numeric_limits<T>::max());
  double sw_max = 1.0, cw_max = 1.0;
  if (a.sample_weight) {
    sw_max = 0.0;
    for (int64_t i = 0; i < a.N; ++i) sw_max = std::max(sw_max, a.sample_weight[i]);
  }
  if (a.class_weight) {
    cw_max = 0.0;
    for (int64_t c = 0; c < a.C; ++c) cw_max = std::max(cw_max, a.class_weight[c]);
  }
  if (!(sw_max * cw_max * scale > big)) return;
  ScoreLossArgs<T> one = a;
  one.L = nullptr;
  for (int64_t i = 0; i < a.N; ++i) {
    double w = a.sample_weight ? a.sample_weight[i] : 1.0;
    if (a.class_weight && a.y) {
      const int64_t y = a.y[i];
      if (a.ignored(y) || !label_ok(y, a.C)) continue;
      w *= a.class_weight[y];
    }
    const double f = w * scale;
    if (!(f > big) || !std::isfinite(f)) continue;
    int e = 0;
    std::frexp(f, &e);
    const int k = e - 64;  // (the factor becomes about 2^64: C times it stays in range)
    ScoreBlock<T> b = block;
    b.scale = std::ldexp(scale, -k);
    LabelError err;
    b(one, i, i + 1, err);
    T* g = a.G + i * a.ldg;
    for (int64_t c = 0; c < a.C; ++c) g[c] = T(std::ldexp(double(g[c]), k));
  }
}

template <class T>
ScoreLossResult score_loss(const ScoreLossArgs<T>& a) {
  ScoreLossResult res;
  double denom = 1.0;
  if (a.reduction == Reduction::mean) {
    denom = mean_denominator(a, res.error);
    if (res.error.row >= 0) return res;
  }
  const double scale =
      a.grad_scale > 0.0 ? a.grad_scale : (a.reduction == Reduction::mean ? 1.0 / denom : 1.0);
  const SoftmaxParamsHolder<T> params(a.C, a.class_weight, a.label_smoothing);
  const ScoreBlock<T> block = make_score_block(a, a.G != nullptr, &params.P, scale);
  const double total = reduce_row_blocks(
      a.N, block_rows(a.C), a.C, a.n_threads, res.error,
      [&](int64_t r0, int64_t r1, LabelError& err) { return block(a, r0, r1, err); });
  if constexpr (std::is_same_v<T, float>) {
    // ("mean" without an explicit factor: every w / sum(w) <= 1, nothing can overflow)
    const bool may_overflow = a.reduction != Reduction::mean || a.grad_scale > 0.0;
    if (a.G && may_overflow && (a.sample_weight || a.class_weight) && res.error.row < 0)
      regrade_overflowing_rows(a, block, scale);
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
    alignas(64) T mx[kBlockMaxRows], sm[kBlockMaxRows];
    for (int64_t r = 0; r < nr; ++r) mx[r] = softmax_shift_row<T, 0>(S + (r0 + r) * lds, C, E + r * C);
    vexp_array(E, E, nr * C);
    for (int64_t r = 0; r < nr; ++r) sm[r] = row_sum<T, 0>(E + r * C, C);
    if (log) {
      FL_SIMD
      for (int64_t r = 0; r < nr; ++r) sm[r] = vlog(sm[r]);
    }
    for (int64_t r = 0; r < nr; ++r) {
      const T* s = S + (r0 + r) * lds;
      T* o = out + (r0 + r) * ldo;
      if (log) {
        FL_SIMD
        for (int64_t c = 0; c < C; ++c) o[c] = (s[c] - mx[r]) - sm[r];
      } else {
        const T inv = T(1) / sm[r];
        const T* e = E + r * C;
        FL_SIMD
        for (int64_t c = 0; c < C; ++c) o[c] = e[c] * inv;
      }
    }
  });
}

FASTLOSS_NS_END
