// Model-level loss: loss(X[idx] @ W + b, y[idx]) + reg * R(W), and dW (db), in one pass
// over X. Each block of rows is loaded once: its scores (a register-blocked X_b . W),
// its per-row losses and gradient rows (the score-level block of score.hpp, so the loss
// math is the same code), and its contribution X_b^T dS to dW, before the block leaves
// the cache. Rows are split into fixed chunks (a function of the row count only), each
// with its own dW partial, combined in chunk order: the same bits for every thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "driver.hpp"
#include "score.hpp"
#include "simd.hpp"
#include "types.hpp"

FASTLOSS_NS_BEGIN

// Rows of one block: their X rows stay in L2 from the forward to the backward pass (8 rows
// of CIFAR-10 are 98 KB, leaving room in a 512 KB L2 for packed W and the dW partial).
constexpr int kLinearRows = 8;
// A chunk (one dW partial) holds at least this many rows.
constexpr int64_t kLinearChunkRows = 128;
constexpr int64_t kLinearMaxChunks = 64;
// The dW partials together stay within about this many bytes.
constexpr int64_t kLinearPartialBytes = int64_t(64) << 20;

// W and dW are kept "packed": for each SIMD chunk of d, the chunk of every class, one
// after the other (Wp[(d / W) * C * W + c * W + lane] = W[d + lane][c]), so that the
// kernels read them as one sequential stream, beside the streams of X's rows, and the
// hardware prefetcher follows all of them.
//
// Forward: S[r][c] = x_r . w_c for NR rows at once (each load of W serves NR rows) and
// CG classes, over the SIMD chunks [k0, k1) of d: one panel. The per-lane accumulators
// live in acc (acc[r * C + c], one vector per row and class) between panels; a panel of W
// is small enough to stay in L1 while all the block's rows pass over it, so W is read
// from L2 once per block, not once per pair of rows. Each lane sums its chunks in order
// of d whatever the panels: the same bits as one pass.
template <class T, int NR, int CG>
FL_INLINE void linear_forward_tile(const T* const* FL_RESTRICT x, int64_t D, int64_t k0,
                                   int64_t k1, const T* FL_RESTRICT Wt, int64_t c0, int64_t C,
                                   vec<T>* FL_RESTRICT acc_mem) {
  using V = vec<T>;
  constexpr int W = width<T>();
  V acc[NR][CG];
  for (int r = 0; r < NR; ++r)
    for (int g = 0; g < CG; ++g) acc[r][g] = acc_mem[r * C + c0 + g];
  const int64_t kfull = std::min(k1, D / W);
  for (int64_t k = k0; k < kfull; ++k) {
    V xv[NR];
    for (int r = 0; r < NR; ++r) xv[r] = load(x[r] + k * W);
    const T* wp = Wt + k * C * W + c0 * W;
    for (int g = 0; g < CG; ++g) {
      V w = load(wp + g * W);
      in_register(w);
      for (int r = 0; r < NR; ++r) acc[r][g] += xv[r] * w;
    }
  }
  if (kfull < k1) {  // the partial last chunk of the rows (W is zero padded)
    V xv[NR];
    for (int r = 0; r < NR; ++r) xv[r] = load_part(x[r] + kfull * W, D - kfull * W, T(0));
    const T* wp = Wt + kfull * C * W + c0 * W;
    for (int g = 0; g < CG; ++g) {
      const V w = load(wp + g * W);
      for (int r = 0; r < NR; ++r) acc[r][g] += xv[r] * w;
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int g = 0; g < CG; ++g) acc_mem[r * C + c0 + g] = acc[r][g];
}

// All classes of NR rows over one panel: groups of kFwdClasses, then the rest.
constexpr int kFwdClasses = 6;
// A panel of W (all classes) takes at most about this many bytes (L1 holds it).
constexpr int64_t kFwdPanelBytes = 16 << 10;

template <class T, int NR>
FL_INLINE void linear_forward_rows(const T* const* x, int64_t D, int64_t k0, int64_t k1,
                                   const T* Wt, int64_t C, vec<T>* acc) {
  constexpr int G = kFwdClasses;
  int64_t c0 = 0;
  for (; c0 + G <= C; c0 += G) linear_forward_tile<T, NR, G>(x, D, k0, k1, Wt, c0, C, acc);
  switch (C - c0) {
    case 5: linear_forward_tile<T, NR, 5>(x, D, k0, k1, Wt, c0, C, acc); break;
    case 4: linear_forward_tile<T, NR, 4>(x, D, k0, k1, Wt, c0, C, acc); break;
    case 3: linear_forward_tile<T, NR, 3>(x, D, k0, k1, Wt, c0, C, acc); break;
    case 2: linear_forward_tile<T, NR, 2>(x, D, k0, k1, Wt, c0, C, acc); break;
    case 1: linear_forward_tile<T, NR, 1>(x, D, k0, k1, Wt, c0, C, acc); break;
    default: break;
  }
}

// acc: scratch of at least R * C vectors.
template <class T>
void linear_forward_block(const T* const* xr, int R, int64_t D, const T* Wt, int64_t Dp,
                          int64_t C, T* S, vec<T>* acc) {
  constexpr int W = width<T>();
  const int64_t nk = Dp / W;
  const int64_t panel =
      std::max<int64_t>(16, kFwdPanelBytes / std::max<int64_t>(1, C * W * int64_t(sizeof(T))));
  for (int64_t i = 0; i < int64_t(R) * C; ++i) acc[i] = vec<T>{};
  for (int64_t k0 = 0; k0 < nk; k0 += panel) {
    const int64_t k1 = std::min(nk, k0 + panel);
    int r = 0;
    for (; r + 2 <= R; r += 2) linear_forward_rows<T, 2>(xr + r, D, k0, k1, Wt, C, acc + r * C);
    if (r < R) linear_forward_rows<T, 1>(xr + r, D, k0, k1, Wt, C, acc + r * C);
  }
  for (int64_t i = 0; i < int64_t(R) * C; ++i) S[i] = hsum(acc[i]);
}

// Backward: dWt[c][d] += sum_r G[r][c] x_r[d], a small GEMM (C x R) . (R x D) done in
// register tiles of CG classes x DG SIMD chunks of d, each tile loaded and stored once per
// block while the block's rows stream through it.
constexpr int kBwdClasses = 5, kBwdChunks = 2;

// One step of DG SIMD chunks of d at d, for the classes [c0, c0 + CG).
template <class T, int CG>
FL_INLINE void linear_backward_tile(const T* const* FL_RESTRICT x, int R, int64_t D,
                                    const T* FL_RESTRICT G, int64_t C, int64_t c0,
                                    T* FL_RESTRICT dWt, int64_t Dp, int64_t d) {
  using V = vec<T>;
  constexpr int W = width<T>();
  constexpr int DG = kBwdChunks;
  const int64_t dfull = D / W * W;
  const int nk = int(std::min<int64_t>(DG, (Dp - d) / W));
  V acc[CG][DG];
  auto at = [&](int g, int k) { return dWt + ((d / W) + k) * C * W + (c0 + g) * W; };
  for (int g = 0; g < CG; ++g)
    for (int k = 0; k < DG; ++k) acc[g][k] = k < nk ? load(at(g, k)) : V{};
  auto row = [&](int r, const V* xv) {
    const T* gr = G + int64_t(r) * C + c0;
    for (int g = 0; g < CG; ++g) {
      const V b = gr[g] - V{};  // (a broadcast: x - 0 is x, where 0 + x is not for -0)
      for (int k = 0; k < DG; ++k) acc[g][k] += b * xv[k];
    }
  };
  if (d + DG * W <= dfull) {  // (all but the last steps: no tests in the row loop)
    for (int r = 0; r < R; ++r) {
      V xv[DG];
      for (int k = 0; k < DG; ++k) xv[k] = load(x[r] + d + k * W);
      row(r, xv);
    }
  } else {
    for (int r = 0; r < R; ++r) {
      V xv[DG];
      for (int k = 0; k < DG; ++k) {
        const int64_t dk = d + k * W;
        xv[k] = dk + W <= dfull ? load(x[r] + dk)
                                : (dk < D ? load_part(x[r] + dk, D - dk, T(0)) : V{});
      }
      row(r, xv);
    }
  }
  for (int g = 0; g < CG; ++g)
    for (int k = 0; k < nk; ++k) store(at(g, k), acc[g][k]);
}

// Steps of d outermost, so that the rows' lines of a step are read from L2 once and
// serve every group of classes from L1.
// xn (Rn rows, or none): the next block's rows, fetched into the cache while this block's
// backward computes, one line of each row per step of d, so that memory streams the next
// block during the backward and the next forward reads it from the cache.
template <class T>
void linear_backward_block(const T* const* xr, int R, int64_t D, const T* G, int64_t C, T* dWt,
                           int64_t Dp, const T* const* xn, int Rn) {
  constexpr int CGm = kBwdClasses;
  constexpr int step = kBwdChunks * width<T>();
  constexpr int line = 64 / int(sizeof(T));
  for (int64_t d = 0; d < Dp; d += step) {
    for (int64_t e = d; e < std::min(d + step, D); e += line)
      for (int r = 0; r < Rn; ++r) __builtin_prefetch(xn[r] + e, 0, 2);
    int64_t c0 = 0;
    for (; c0 + CGm <= C; c0 += CGm) linear_backward_tile<T, CGm>(xr, R, D, G, C, c0, dWt, Dp, d);
    switch (C - c0) {
      case 4: linear_backward_tile<T, 4>(xr, R, D, G, C, c0, dWt, Dp, d); break;
      case 3: linear_backward_tile<T, 3>(xr, R, D, G, C, c0, dWt, Dp, d); break;
      case 2: linear_backward_tile<T, 2>(xr, R, D, G, C, c0, dWt, Dp, d); break;
      case 1: linear_backward_tile<T, 1>(xr, R, D, G, C, c0, dWt, Dp, d); break;
      default: break;
    }
  }
}

template <class T>
LinearResult linear_loss(const LinearArgs<T>& a) {
  LinearResult res;
  const int64_t M = a.indices ? a.M : a.N, D = a.D, C = a.C;
  auto xrow = [&](int64_t i) { return a.indices ? a.indices[i] : i; };

  // The mean's denominator, over the rows taken (labels checked when read).
  double denom = 1.0;
  if (a.reduction == Reduction::mean) {
    denom = 0.0;
    for (int64_t i = 0; i < M; ++i) {
      const int64_t k = xrow(i);
      double w = a.sample_weight ? a.sample_weight[k] : 1.0;
      if (a.class_weight && a.y) {
        const int64_t y = a.y[k];
        if (!label_ok(y, C)) {
          res.error = LabelError{k, y};
          return res;
        }
        w *= a.class_weight[y];
      }
      denom += w;
    }
  }
  const double scale = a.reduction == Reduction::mean ? 1.0 / denom : 1.0;

  // W packed (see above; zero padded to Dp), the layout of both kernels.
  constexpr int VW = width<T>();
  const int64_t Dp = chunks<T>(std::max<int64_t>(D, 1)) * VW;
  auto packed = [&](int64_t d, int64_t c) { return size_t((d / VW) * C * VW + c * VW + d % VW); };
  // (whole vectors: aligned to the vector width, so no load of W or dW splits a cache line)
  std::vector<vec<T>> Wt_mem(size_t(C * Dp / VW));
  T* const Wt = reinterpret_cast<T*>(Wt_mem.data());
  for (int64_t d = 0; d < D; ++d)
    for (int64_t c = 0; c < C; ++c) Wt[packed(d, c)] = a.W[d * a.ldw + c];

  ScoreLossArgs<T> proto;
  proto.C = C;
  proto.loss = a.loss;
  proto.margin = a.margin;
  proto.squared = a.squared;
  proto.label_smoothing = a.label_smoothing;
  proto.class_weight = a.class_weight;
  proto.Q = a.Q ? a.Q : nullptr;
  const SoftmaxParamsHolder<T> params(C, a.class_weight, a.label_smoothing);
  const bool grad = a.dW != nullptr;
  const ScoreBlock<T> block = make_score_block(proto, grad, &params.P, scale);

  // Fixed chunks of rows, each with its own partials.
  const int64_t per_partial = std::max<int64_t>(1, C * Dp * int64_t(sizeof(T)));
  const int64_t max_chunks =
      std::max<int64_t>(1, std::min(kLinearMaxChunks, kLinearPartialBytes / per_partial));
  const int64_t K = std::max<int64_t>(
      1, std::min(max_chunks, (M + kLinearChunkRows - 1) / kLinearChunkRows));
  const int64_t rows_per_chunk = (M + K - 1) / K;
  std::vector<vec<T>> dWt_mem(grad ? size_t(K * C * Dp / VW) : 0);
  T* const dWt = reinterpret_cast<T*>(dWt_mem.data());
  std::vector<double> db(grad && a.db ? size_t(K * C) : 0, 0.0);
  std::vector<double> lsum(size_t(K), 0.0);
  std::vector<LabelError> errs(static_cast<size_t>(K));

  const int nt = resolve_threads(a.n_threads, K);
  // Threads only for work worth a fork/join: a CS231n minibatch (200 x 3,073, C = 10) takes
  // two (0.32 s instead of 0.42 s for 300 SGD steps); a digits minibatch stays on one.
  const bool par = nt > 1 && K > 1 && M * D * C >= (int64_t(1) << 21);
  auto run_chunk = [&](int64_t k) {
    const int64_t i0 = k * rows_per_chunk, i1 = std::min(M, i0 + rows_per_chunk);
    T* dW_k = grad ? dWt + k * C * Dp : nullptr;
    double* db_k = db.empty() ? nullptr : db.data() + k * C;
    std::vector<T> S(size_t(kLinearRows * C)), Gb(size_t(kLinearRows * C)),
        Qb(a.Q ? size_t(kLinearRows * C) : 0);
    std::vector<vec<T>> facc(size_t(kLinearRows * C));  // the forward's accumulators
    int64_t yb[kLinearRows];
    double swb[kLinearRows];
    const T* xr[kLinearRows];
    const T* xn[kLinearRows];
    double acc = 0.0;
    LabelError& err = errs[size_t(k)];
    for (int64_t r0 = i0; r0 < i1; r0 += kLinearRows) {
      const int R = int(std::min<int64_t>(kLinearRows, i1 - r0));
      for (int r = 0; r < R; ++r) {
        const int64_t xi = xrow(r0 + r);
        xr[r] = a.X + xi * a.ldx;
        if (a.y) yb[r] = a.y[xi];
        if (a.sample_weight) swb[r] = a.sample_weight[xi];
        if (a.Q)
          for (int64_t c = 0; c < C; ++c) Qb[size_t(r * C + c)] = a.Q[xi * a.ldq + c];
      }
      linear_forward_block(xr, R, D, Wt, Dp, C, S.data(), facc.data());
      if (a.b)
        for (int r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c) S[size_t(r * C + c)] += a.b[c];
      ScoreLossArgs<T> sa = proto;
      sa.S = S.data();
      sa.N = R;
      sa.lds = C;
      sa.y = a.y ? yb : nullptr;
      sa.Q = a.Q ? Qb.data() : nullptr;
      sa.ldq = C;
      sa.sample_weight = a.sample_weight ? swb : nullptr;
      sa.G = grad ? Gb.data() : nullptr;
      sa.ldg = C;
      LabelError e;
      acc += block(sa, 0, R, e);
      if (e.row >= 0 && err.row < 0) err = LabelError{xrow(r0 + e.row), e.value};
      if (e.row >= 0 || !grad) continue;
      const int Rn = int(std::min<int64_t>(kLinearRows, i1 - (r0 + R)));
      for (int r = 0; r < Rn; ++r) xn[r] = a.X + xrow(r0 + R + r) * a.ldx;
      linear_backward_block(xr, R, D, Gb.data(), C, dW_k, Dp, xn, Rn);
      if (db_k)
        for (int r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c) db_k[c] += double(Gb[size_t(r * C + c)]);
    }
    lsum[size_t(k)] = acc;
  };
  if (par) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t k = 0; k < K; ++k) run_chunk(k);
  } else {
    for (int64_t k = 0; k < K; ++k) run_chunk(k);
  }
  for (const LabelError& e : errs)
    if (e.row >= 0) {
      res.error = e;
      return res;
    }
  double total = 0.0;
  for (double v : lsum) total += v;
  res.data_loss = a.reduction == Reduction::mean ? total / denom : total;

  // Regularization (never on the bias) and the combination of the partials, in order.
  double rsum = 0.0;
  const double l1 = a.penalty == Penalty::l1 ? 1.0 : a.penalty == Penalty::elasticnet ? a.l1_ratio : 0.0;
  const double l2 = a.penalty == Penalty::l2 ? 1.0 : a.penalty == Penalty::elasticnet ? 1.0 - a.l1_ratio : 0.0;
  for (int64_t d = 0; d < D; ++d) {
    for (int64_t c = 0; c < C; ++c) {
      const double w = double(a.W[d * a.ldw + c]);
      // a term with a zero coefficient is absent (not 0 * inf = NaN for an infinite w)
      if (a.reg != 0.0)
        rsum += (l1 != 0.0 ? l1 * std::fabs(w) : 0.0) + (l2 != 0.0 ? l2 * w * w : 0.0);
      if (!grad) continue;
      double g = 0.0;
      for (int64_t k = 0; k < K; ++k) g += double(dWt[size_t(k * C * Dp) + packed(d, c)]);
      if (a.reg != 0.0) {
        const double sgn = w > 0.0 ? 1.0 : (w < 0.0 ? -1.0 : w * 0.0);  // np.sign: NaN stays
        g += a.reg * ((l1 != 0.0 ? l1 * sgn : 0.0) + (l2 != 0.0 ? 2.0 * l2 * w : 0.0));
      }
      a.dW[d * C + c] = T(g);
    }
  }
  if (grad && a.db)
    for (int64_t c = 0; c < C; ++c) {
      double g = 0.0;
      for (int64_t k = 0; k < K; ++k) g += db[size_t(k * C + c)];
      a.db[c] = T(g);
    }
  res.reg_loss = a.reg * rsum;
  res.loss = res.data_loss + res.reg_loss;
  return res;
}

FASTLOSS_NS_END
