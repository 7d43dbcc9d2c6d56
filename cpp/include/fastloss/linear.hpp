// Model-level loss: loss(X[idx] @ W + b, y[idx]) + reg * R(W), and dW (db), in one pass
// over X. Each block of rows is loaded once: its scores (a register-blocked X_b . W),
// its per-row losses and gradient rows (the score-level block of score.hpp, so the loss
// math is the same code), and its contribution X_b^T dS to dW, before the block leaves
// the cache. Rows are split into fixed chunks (a function of the row count only), each
// with its own dW partial, combined in chunk order: the same bits for every thread count.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "driver.hpp"
#include "linear_kernels.hpp"
#include "score.hpp"
#include "simd.hpp"
#include "types.hpp"

FASTLOSS_NS_BEGIN

// Rows of one block: their packed copy stays in L2 from the forward to the backward pass.
// 16 rows of CIFAR-10 are 197 KB; with the copy, the next block being fetched, packed W
// and the dW partial, about 840 KB of a 1 MB L2 (8 rows: slower backward, the dW tile
// loaded and stored twice as often; 16 vs 8: 58 vs 62 ms at the CIFAR-10 shape here).
constexpr int kLinearRows = 16;
// A chunk (one dW partial) holds at least this many rows.
constexpr int64_t kLinearChunkRows = 128;
constexpr int64_t kLinearMaxChunks = 64;
// The dW partials together stay within about this many bytes.
constexpr int64_t kLinearPartialBytes = int64_t(64) << 20;
// The combination of the partials and the penalty walk spans of this many SIMD chunks
// of d (a span's penalty is one partial sum).
constexpr int64_t kLinearCombineChunks = 32;

// W and dW are kept "packed": for each SIMD chunk of d, the chunk of every class, one
// after the other (Wp[(d / W) * C * W + c * W + lane] = W[d + lane][c]), so that the
// kernels read them as one sequential stream, beside the streams of X's rows, and the
// hardware prefetcher follows all of them.
//
// The forward also writes the block's rows, as it loads them, into a packed copy for the
// backward: steps of kBwdChunks SIMD chunks of d, each with the chunks of all the block's
// rows one after the other (Xp[((k / DG) * R + r) * DG * W + (k % DG) * W + lane] =
// x_r[k * W + lane], zero padded past D). The backward then reads one sequential stream
// instead of R rows whose strides (12,292 bytes for CIFAR-10) put the lines of a step in
// one L1 set, and needs no tests for the end of the rows.
constexpr int kBwdClasses = 5, kBwdChunks = 2;

// Forward: S[r][c] = x_r . w_c for NR rows at once (each load of W serves NR rows) and
// CG classes, over the SIMD chunks [k0, k1) of d: one panel. The per-lane accumulators
// live in acc (acc[r * C + c], one vector per row and class) between panels; a panel of W
// is small enough to stay in L1 while all the block's rows pass over it, so W is read
// from L2 once per block, not once per pair of rows. Each lane sums its chunks in order
// of d whatever the panels: the same bits as one pass. FIRST (the first group of classes):
// also store the rows' chunks in the packed copy xp when there is one (xp at the first of
// these NR rows; R rows in the block) and prefetch the next block's rows xn (nn of them).
template <class T, int NR, int CG, bool FIRST>
FL_INLINE void linear_forward_tile(const T* const* FL_RESTRICT x, int64_t D, int64_t k0,
                                   int64_t k1, const T* FL_RESTRICT Wt, int64_t c0, int64_t C,
                                   vec<T>* FL_RESTRICT acc_mem, T* FL_RESTRICT xp, int R,
                                   const T* const* xn, int nn) {
  using V = vec<T>;
  constexpr int W = width<T>();
  constexpr int DG = kBwdChunks;
  V acc[NR][CG];
  for (int r = 0; r < NR; ++r)
    for (int g = 0; g < CG; ++g) acc[r][g] = acc_mem[r * C + c0 + g];
  const T* xl[NR];  // (in registers: the stores of the packed copy could alias x)
  for (int r = 0; r < NR; ++r) xl[r] = x[r];
  const T* nl[NR] = {};
  for (int r = 0; r < nn; ++r) nl[r] = xn[r];
  // one chunk k: its loads of x (stored at xp + q in the packed copy if pack) and FMAs
  auto chunk = [&](auto pack, int64_t k, int64_t q) FL_LAMBDA_INLINE {
    V xv[NR];
    for (int r = 0; r < NR; ++r) xv[r] = load(xl[r] + k * W);
    if (decltype(pack)::value)
      for (int r = 0; r < NR; ++r) store(xp + q + r * (DG * W), xv[r]);
    const T* wp = Wt + k * C * W + c0 * W;
    for (int g = 0; g < CG; ++g) {
      V w = load(wp + g * W);
      in_register(w);
      for (int r = 0; r < NR; ++r) acc[r][g] += xv[r] * w;
    }
  };
  const int64_t kfull = std::min(k1, D / W);
  // Whole steps of DG chunks (k0 is a multiple of DG), then the rest.
  auto run = [&](auto pack) FL_LAMBDA_INLINE {
    int64_t k = k0;
    int64_t q = (k0 / DG) * R * (DG * W);  // (an offset: xp is null without the copy)
    for (; k + DG <= kfull; k += DG, q += R * (DG * W)) {
      if (FIRST)
        for (int r = 0; r < NR; ++r)
          if (r < nn) __builtin_prefetch(nl[r] + k * W, 0, 2);
      for (int j = 0; j < DG; ++j) chunk(pack, k + j, q + j * W);
    }
    for (; k < kfull; ++k) chunk(pack, k, q + (k % DG) * W);
    if (kfull < k1) {  // the partial last chunk of the rows (W is zero padded)
      V xv[NR];
      for (int r = 0; r < NR; ++r) xv[r] = load_part(xl[r] + kfull * W, D - kfull * W, T(0));
      if (decltype(pack)::value)
        for (int r = 0; r < NR; ++r) store(xp + q + r * (DG * W) + (kfull % DG) * W, xv[r]);
      const T* wp = Wt + kfull * C * W + c0 * W;
      for (int g = 0; g < CG; ++g) {
        const V w = load(wp + g * W);
        for (int r = 0; r < NR; ++r) acc[r][g] += xv[r] * w;
      }
    }
  };
  if (FIRST && xp)
    run(std::true_type{});
  else
    run(std::false_type{});
  for (int r = 0; r < NR; ++r)
    for (int g = 0; g < CG; ++g) acc_mem[r * C + c0 + g] = acc[r][g];
}

// All classes of NR rows over one panel: groups of kFwdClasses, then the rest; the first
// group packs the rows.
constexpr int kFwdClasses = 6;
// A panel of W (all classes) takes at most about this many bytes (L1 holds it).
constexpr int64_t kFwdPanelBytes = 16 << 10;

template <class T, int NR>
FL_INLINE void linear_forward_rows(const T* const* x, int64_t D, int64_t k0, int64_t k1,
                                   const T* Wt, int64_t C, vec<T>* acc, T* xp, int R,
                                   const T* const* xn, int nn) {
  constexpr int G = kFwdClasses;
  const int64_t c1 = std::min<int64_t>(C, G);  // the first group, which packs
  switch (c1) {
    case 6: linear_forward_tile<T, NR, 6, true>(x, D, k0, k1, Wt, 0, C, acc, xp, R, xn, nn); break;
    case 5: linear_forward_tile<T, NR, 5, true>(x, D, k0, k1, Wt, 0, C, acc, xp, R, xn, nn); break;
    case 4: linear_forward_tile<T, NR, 4, true>(x, D, k0, k1, Wt, 0, C, acc, xp, R, xn, nn); break;
    case 3: linear_forward_tile<T, NR, 3, true>(x, D, k0, k1, Wt, 0, C, acc, xp, R, xn, nn); break;
    case 2: linear_forward_tile<T, NR, 2, true>(x, D, k0, k1, Wt, 0, C, acc, xp, R, xn, nn); break;
    default: linear_forward_tile<T, NR, 1, true>(x, D, k0, k1, Wt, 0, C, acc, xp, R, xn, nn); break;
  }
  int64_t c0 = c1;
  for (; c0 + G <= C; c0 += G)
    linear_forward_tile<T, NR, G, false>(x, D, k0, k1, Wt, c0, C, acc, xp, R, nullptr, 0);
  switch (C - c0) {
    case 5: linear_forward_tile<T, NR, 5, false>(x, D, k0, k1, Wt, c0, C, acc, xp, R, nullptr, 0); break;
    case 4: linear_forward_tile<T, NR, 4, false>(x, D, k0, k1, Wt, c0, C, acc, xp, R, nullptr, 0); break;
    case 3: linear_forward_tile<T, NR, 3, false>(x, D, k0, k1, Wt, c0, C, acc, xp, R, nullptr, 0); break;
    case 2: linear_forward_tile<T, NR, 2, false>(x, D, k0, k1, Wt, c0, C, acc, xp, R, nullptr, 0); break;
    case 1: linear_forward_tile<T, NR, 1, false>(x, D, k0, k1, Wt, c0, C, acc, xp, R, nullptr, 0); break;
    default: break;
  }
}

// acc: scratch of at least R * C vectors. Xp: the packed copy of the rows (at least
// R * ceil(Dp / (W * DG)) * DG * W elements), or null for the forward alone.
template <class T>
void linear_forward_block(const T* const* xr, int R, int64_t D, const T* Wt, int64_t Dp,
                          int64_t C, T* S, vec<T>* acc, T* Xp, const T* const* xn, int Rn) {
  constexpr int W = width<T>();
  const int64_t nk = Dp / W;
  // (a whole number of steps of the packed copy)
  const int64_t panel =
      std::max<int64_t>(16, kFwdPanelBytes / std::max<int64_t>(1, C * W * int64_t(sizeof(T)))) /
      kBwdChunks * kBwdChunks;
  for (int64_t i = 0; i < int64_t(R) * C; ++i) acc[i] = vec<T>{};
  auto nn = [&](int r, int n) { return std::max(0, std::min(n, Rn - r)); };
  for (int64_t k0 = 0; k0 < nk; k0 += panel) {
    const int64_t k1 = std::min(nk, k0 + panel);
    int r = 0;
    for (; r + 2 <= R; r += 2)
      linear_forward_rows<T, 2>(xr + r, D, k0, k1, Wt, C, acc + r * C,
                                Xp ? Xp + r * kBwdChunks * W : nullptr, R, xn + r, nn(r, 2));
    if (r < R)
      linear_forward_rows<T, 1>(xr + r, D, k0, k1, Wt, C, acc + r * C,
                                Xp ? Xp + r * kBwdChunks * W : nullptr, R, xn + r, nn(r, 1));
  }
  for (int64_t i = 0; i < int64_t(R) * C; ++i) S[i] = hsum(acc[i]);
}

// Backward: dWt[c][d] += sum_r G[r][c] x_r[d], a small GEMM (C x R) . (R x D) done in
// register tiles of CG classes x DG SIMD chunks of d, each tile loaded and stored once per
// block while the block's rows (the packed copy) stream through it.
//
// One step s (DG SIMD chunks of d; nk of them inside Dp) for the classes [c0, c0 + CG).
template <class T, int CG>
FL_INLINE void linear_backward_tile(const T* FL_RESTRICT xs, int R, const T* FL_RESTRICT G,
                                    int64_t C, int64_t c0, T* FL_RESTRICT dWt, int64_t s,
                                    int nk, bool fresh) {
  using V = vec<T>;
  constexpr int W = width<T>();
  constexpr int DG = kBwdChunks;
  V acc[CG][DG];
  auto at = [&](int g, int k) { return dWt + (s * DG + k) * C * W + (c0 + g) * W; };
  for (int g = 0; g < CG; ++g)
    for (int k = 0; k < DG; ++k) acc[g][k] = !fresh && k < nk ? load(at(g, k)) : V{};
  auto row = [&](int r, const V* xv) {
    const T* gr = G + int64_t(r) * C + c0;
    for (int g = 0; g < CG; ++g) {
      const V b = gr[g] - V{};  // (a broadcast: x - 0 is x, where 0 + x is not for -0)
      for (int k = 0; k < DG; ++k) acc[g][k] += b * xv[k];
    }
  };
  if (nk == DG) {  // (all but perhaps the last step: no tests in the row loop)
    for (int r = 0; r < R; ++r) {
      V xv[DG];
      for (int k = 0; k < DG; ++k) xv[k] = load(xs + (r * DG + k) * W);
      row(r, xv);
    }
  } else {
    for (int r = 0; r < R; ++r) {
      V xv[DG];
      for (int k = 0; k < DG; ++k) xv[k] = k < nk ? load(xs + (r * DG + k) * W) : V{};
      row(r, xv);
    }
  }
  for (int g = 0; g < CG; ++g)
    for (int k = 0; k < nk; ++k) store(at(g, k), acc[g][k]);
}

// Steps of d outermost, so that the rows' chunks of a step are read from L2 once and
// serve every group of classes from L1.
// xn (Rn rows, or none): rows fetched into the cache while this block's backward computes,
// one line of each row per step of d, so that memory streams during the backward too. The
// driver passes the block after next: the forward of a block fetches the next block, so
// each block is requested twice, early (a backward) and again just before it is read
// (the forward before it). CIFAR-10 shape, 2 threads: 76 -> 70 ms (median of 8 pairs).
// fresh: the partial dWt has not been written yet (the tiles start from zero instead of
// loading it: no zero fill of the partials).
template <class T>
void linear_backward_block(const T* Xp, int R, int64_t D, const T* G, int64_t C, T* dWt,
                           int64_t Dp, const T* const* xn, int Rn, bool fresh) {
  constexpr int CGm = kBwdClasses;
  constexpr int W = width<T>();
  constexpr int step = kBwdChunks * W;
  constexpr int line = 64 / int(sizeof(T));
  const int64_t nkall = Dp / W;
  for (int64_t s = 0; s * step < Dp; ++s) {
    const int64_t d = s * step;
    for (int64_t e = d; e < std::min(d + step, D); e += line)
      for (int r = 0; r < Rn; ++r) __builtin_prefetch(xn[r] + e, 0, 2);
    const int nk = int(std::min<int64_t>(kBwdChunks, nkall - s * kBwdChunks));
    const T* xs = Xp + s * R * step;
    int64_t c0 = 0;
    for (; c0 + CGm <= C; c0 += CGm) linear_backward_tile<T, CGm>(xs, R, G, C, c0, dWt, s, nk, fresh);
    switch (C - c0) {
      case 4: linear_backward_tile<T, 4>(xs, R, G, C, c0, dWt, s, nk, fresh); break;
      case 3: linear_backward_tile<T, 3>(xs, R, G, C, c0, dWt, s, nk, fresh); break;
      case 2: linear_backward_tile<T, 2>(xs, R, G, C, c0, dWt, s, nk, fresh); break;
      case 1: linear_backward_tile<T, 1>(xs, R, G, C, c0, dWt, s, nk, fresh); break;
      default: break;
    }
  }
}

// The gradient of the rows: dX_r = G_r W^T for the R rows of a block (dx[r]: row r of
// dX), from the packed W. Each SIMD chunk of d sums its classes in order (the same bits
// for every thread count); chunk by chunk, so that the chunk's packed W (C vectors) stays
// in cache while the block's rows, NR at a time, pass over it.
template <class T, int NR>
FL_INLINE void linear_dx_rows(const T* FL_RESTRICT G, int64_t C, const T* FL_RESTRICT wk,
                              T* const* dx, int64_t off, int64_t n) {
  using V = vec<T>;
  V acc[NR] = {};
  for (int64_t c = 0; c < C; ++c) {
    V w = load(wk + c * width<T>());
    in_register(w);
    for (int r = 0; r < NR; ++r) acc[r] += (G[r * C + c] - V{}) * w;
  }
  for (int r = 0; r < NR; ++r) {
    if (n == width<T>())
      store(dx[r] + off, acc[r]);
    else
      store_part(dx[r] + off, acc[r], n);
  }
}

template <class T>
void linear_dx_block(const T* G, int R, int64_t C, const T* Wt, int64_t D, T* const* dx) {
  constexpr int W = width<T>();
  for (int64_t k = 0; k < chunks<T>(D); ++k) {
    const T* wk = Wt + k * C * W;
    const int64_t n = std::min<int64_t>(W, D - k * W);
    int r = 0;
    for (; r + 4 <= R; r += 4) linear_dx_rows<T, 4>(G + r * C, C, wk, dx + r, k * W, n);
    for (; r < R; ++r) linear_dx_rows<T, 1>(G + r * C, C, wk, dx + r, k * W, n);
  }
}

// The benchmarks' phase clock (linear_phase_seconds): a no-op without it.
struct PhaseClock {
  double* out;  // null: off
  std::chrono::steady_clock::time_point t0;
  explicit PhaseClock(double* o) : out(o) {
    if (out) t0 = std::chrono::steady_clock::now();
  }
  // Adds the time since the previous lap (or the start) to out[phase].
  void lap(int phase) {
    if (!out) return;
    const auto t = std::chrono::steady_clock::now();
    out[phase] += std::chrono::duration<double>(t - t0).count();
    t0 = t;
  }
};

template <class T>
LinearResult linear_loss(const LinearArgs<T>& a) {
  LinearResult res;
  double* const phases = linear_phase_seconds();
  PhaseClock clock(phases);
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

  // Fixed chunks of rows, each with its own partials.
  constexpr int VW = width<T>();
  const int64_t Dp = chunks<T>(std::max<int64_t>(D, 1)) * VW;
  const int64_t nkc = Dp / VW;  // SIMD chunks of d
  const int64_t per_partial = std::max<int64_t>(1, C * Dp * int64_t(sizeof(T)));
  // (at least 2 chunks when there are rows for them, even past the partials' budget: with
  // one chunk a call with many classes would run on one thread)
  const int64_t max_chunks =
      std::max<int64_t>(2, std::min(kLinearMaxChunks, kLinearPartialBytes / per_partial));
  const int64_t K = std::max<int64_t>(
      1, std::min(max_chunks, (M + kLinearChunkRows - 1) / kLinearChunkRows));
  const int64_t rows_per_chunk = (M + K - 1) / K;
  const int nt = resolve_threads(a.n_threads, K);
  // Threads only for work worth a fork/join: a CS231n minibatch (200 x 3,073, C = 10) takes
  // two; a digits minibatch stays on one.
  const bool par = nt > 1 && K > 1 && M * D * C >= (int64_t(1) << 21);

  // W packed (see above; zero padded to Dp), the layout of both kernels, and the dW
  // partials in the same layout: scratch kept between calls (whole vectors, aligned, so no
  // load of W or dW splits a cache line).
  const bool grad = a.dW != nullptr;
  ScratchLease<vec<T>, 0> Wt_mem(size_t(C * nkc));
  ScratchLease<vec<T>, 1> dWt_mem(grad ? size_t(K * C * nkc) : 0);
  T* const Wt = reinterpret_cast<T*>(Wt_mem.data());
  T* const dWt = reinterpret_cast<T*>(dWt_mem.data());
  for (int64_t k = 0; k < nkc; ++k) {
    T* wk = Wt + k * C * VW;
    const int64_t nl = std::min<int64_t>(VW, D - k * VW);
    for (int l = 0; l < VW; ++l) {
      if (l < nl) {
        const T* src = a.W + (k * VW + l) * a.ldw;
        for (int64_t c = 0; c < C; ++c) wk[c * VW + l] = src[c];
      } else {
        for (int64_t c = 0; c < C; ++c) wk[c * VW + l] = T(0);
      }
    }
  }

  clock.lap(0);
  // (per chunk: forward, loss rows, backward; added to phase_seconds after the chunks)
  std::vector<double> chunk_phases(phases ? size_t(K * 5) : 0, 0.0);

  ScoreLossArgs<T> proto;
  proto.C = C;
  proto.loss = a.loss;
  proto.margin = a.margin;
  proto.squared = a.squared;
  proto.label_smoothing = a.label_smoothing;
  proto.class_weight = a.class_weight;
  proto.Q = a.Q ? a.Q : nullptr;
  const SoftmaxParamsHolder<T> params(C, a.class_weight, a.label_smoothing);
  const ScoreBlock<T> block = make_score_block(proto, grad, &params.P, scale);

  std::vector<double> db(grad && a.db ? size_t(K * C) : 0, 0.0);
  std::vector<double> lsum(size_t(K), 0.0);
  std::vector<LabelError> errs(static_cast<size_t>(K));
  // the block's rows packed for the backward (whole steps of kBwdChunks SIMD chunks)
  const int64_t xp_len = kLinearRows * ((nkc + kBwdChunks - 1) / kBwdChunks) * kBwdChunks;

  auto run_chunk = [&](int64_t k) {
    const int64_t i0 = k * rows_per_chunk, i1 = std::min(M, i0 + rows_per_chunk);
    T* dW_k = grad ? dWt + k * C * Dp : nullptr;
    double* db_k = db.empty() ? nullptr : db.data() + k * C;
    // per-thread scratch: scores, gradient rows, targets, the forward's accumulators
    ScratchLease<T, 2> S_mem(size_t(kLinearRows * C));
    ScratchLease<T, 3> G_mem(size_t(kLinearRows * C));
    ScratchLease<T, 4> Q_mem(a.Q ? size_t(kLinearRows * C) : 0);
    ScratchLease<vec<T>, 5> facc(size_t(kLinearRows * C));
    ScratchLease<vec<T>, 6> Xp_mem(grad ? size_t(xp_len) : 0);
    T* const S = S_mem.data();
    T* const Gb = G_mem.data();
    T* const Qb = Q_mem.data();
    T* const Xp = grad ? reinterpret_cast<T*>(Xp_mem.data()) : nullptr;
    int64_t yb[kLinearRows];
    double swb[kLinearRows];
    const T* xr[kLinearRows];
    const T* xn[kLinearRows];
    const T* xnn[kLinearRows];
    double acc = 0.0;
    bool fresh = true;  // (the first backward of the chunk writes its partial, unread)
    LabelError& err = errs[size_t(k)];
    PhaseClock cclock(phases ? chunk_phases.data() + k * 5 : nullptr);
    for (int64_t r0 = i0; r0 < i1; r0 += kLinearRows) {
      const int R = int(std::min<int64_t>(kLinearRows, i1 - r0));
      for (int r = 0; r < R; ++r) {
        const int64_t xi = xrow(r0 + r);
        xr[r] = a.X + xi * a.ldx;
        if (a.y) yb[r] = a.y[xi];
        if (a.sample_weight) swb[r] = a.sample_weight[xi];
        if (a.Q)
          for (int64_t c = 0; c < C; ++c) Qb[r * C + c] = a.Q[xi * a.ldq + c];
      }
      const int Rn = int(std::min<int64_t>(kLinearRows, i1 - (r0 + R)));
      for (int r = 0; r < Rn; ++r) xn[r] = a.X + xrow(r0 + R + r) * a.ldx;
      linear_forward_block(xr, R, D, Wt, Dp, C, S, facc.data(), Xp, xn, Rn);
      cclock.lap(1);
      if (a.b)
        for (int r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c) S[r * C + c] += a.b[c];
      ScoreLossArgs<T> sa = proto;
      sa.S = S;
      sa.N = R;
      sa.lds = C;
      sa.y = a.y ? yb : nullptr;
      sa.Q = a.Q ? Qb : nullptr;
      sa.ldq = C;
      sa.sample_weight = a.sample_weight ? swb : nullptr;
      sa.G = grad ? Gb : nullptr;
      sa.ldg = C;
      LabelError e;
      acc += block(sa, 0, R, e);
      cclock.lap(2);
      if (e.row >= 0 && err.row < 0) err = LabelError{xrow(r0 + e.row), e.value};
      if (err.row >= 0 || !grad) continue;  // (after an error only the labels matter)
      // (the block after next: the next one was fetched during the forward)
      const int Rnn = int(std::max<int64_t>(0, std::min<int64_t>(kLinearRows, i1 - (r0 + R + Rn))));
      for (int r = 0; r < Rnn; ++r) xnn[r] = a.X + xrow(r0 + R + Rn + r) * a.ldx;
      linear_backward_block(Xp, R, D, Gb, C, dW_k, Dp, xnn, Rnn, fresh);
      fresh = false;
      if (a.dX) {
        T* dxr[kLinearRows];
        for (int r = 0; r < R; ++r) dxr[r] = a.dX + (r0 + r) * D;
        linear_dx_block(Gb, R, C, Wt, D, dxr);
      }
      if (db_k)
        for (int r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c) db_k[c] += double(Gb[r * C + c]);
      cclock.lap(3);
    }
    if (grad && fresh) std::fill(dW_k, dW_k + C * Dp, T(0));  // (no rows)
    lsum[size_t(k)] = acc;
  };
  // Regularization (never on the bias) and the combination of the partials: each element
  // of dW sums its K partials in chunk order, in double, then adds its penalty's gradient;
  // the penalty itself is summed over fixed spans of d, then over the spans in order. The
  // same bits for every thread count.
  const double l1 = a.penalty == Penalty::l1 ? 1.0 : a.penalty == Penalty::elasticnet ? a.l1_ratio : 0.0;
  const double l2 = a.penalty == Penalty::l2 ? 1.0 : a.penalty == Penalty::elasticnet ? 1.0 - a.l1_ratio : 0.0;
  const double reg = a.reg;
  const int64_t span = kLinearCombineChunks;  // SIMD chunks of d per span
  const int64_t n_spans = (nkc + span - 1) / span;
  std::vector<double> rspan(size_t(n_spans), 0.0);
  // (one branch-free copy per penalty: a term with a zero coefficient is absent, not
  // 0 * inf = NaN for an infinite w)
  auto combine_span = [&](int64_t sp, auto has_l1, auto has_l2) {
    constexpr bool L1 = decltype(has_l1)::value, L2 = decltype(has_l2)::value;
    const double c1 = reg * l1, c2 = 2.0 * reg * l2;
    // Per-lane sums of the penalty in registers (added in lane order at the end:
    // independent chains, not one chain of dependent adds), W read from its packed copy
    // (zero past D: no term); a SIMD chunk of VW elements is summed in NP native vectors of
    // doubles. Each class's chunk goes to a tile as one vector, and the tile (C x VW) is
    // stored transposed as the chunk's VW rows of dW, one contiguous block of VW x C.
    using DV = vec<double>;
    constexpr int DW = width<double>(), NP = VW / DW;
    typedef T TH __attribute__((vector_size(DW * sizeof(T))));  // DW elements of T
    auto widen = [](const T* p) {
      TH h;
      std::memcpy(&h, p, sizeof h);
      return __builtin_convertvector(h, DV);
    };
    DV rs1[NP] = {}, rs2[NP] = {};
    ScratchLease<T, 7> tile_mem(grad ? size_t(VW * C) : 0);
    T* const tile = tile_mem.data();
    for (int64_t k = sp * span; k < std::min(nkc, (sp + 1) * span); ++k) {
      const int64_t nl = std::min<int64_t>(VW, D - k * VW);
      for (int64_t c = 0; c < C; ++c) {
        const T* src = dWt + k * C * VW + c * VW;
        const T* wk = Wt + k * C * VW + c * VW;
        DV g[NP] = {}, w[NP];
        if (grad)
          for (int64_t p = 0; p < K; ++p)
            for (int q = 0; q < NP; ++q) g[q] += widen(src + p * C * Dp + q * DW);
        for (int q = 0; q < NP; ++q) w[q] = widen(wk + q * DW);
        if (L1)
          for (int q = 0; q < NP; ++q) {
            ivec<double> bits;
            std::memcpy(&bits, &w[q], sizeof bits);
            bits &= ~(ivec<double>{} + std::numeric_limits<int64_t>::min());  // |w|
            DV aw;
            std::memcpy(&aw, &bits, sizeof aw);
            rs1[q] += aw;
            // np.sign: NaN stays (w * 0), and so do the zeros
            g[q] += c1 * (w[q] > 0.0 ? DV{} + 1.0 : (w[q] < 0.0 ? DV{} - 1.0 : w[q] * 0.0));
          }
        if (L2)
          for (int q = 0; q < NP; ++q) {
            rs2[q] += w[q] * w[q];
            g[q] += c2 * w[q];
          }
        if (grad)
          for (int q = 0; q < NP; ++q) {
            const TH out = __builtin_convertvector(g[q], TH);
            std::memcpy(tile + c * VW + q * DW, &out, sizeof out);
          }
      }
      if (grad) {
        T* dst = a.dW + k * VW * C;
        for (int64_t l = 0; l < nl; ++l)
          for (int64_t c = 0; c < C; ++c) dst[l * C + c] = tile[c * VW + l];
      }
    }
    double s1 = 0.0, s2 = 0.0;
    for (int q = 0; q < NP; ++q)
      for (int j = 0; j < DW; ++j) {
        s1 += rs1[q][j];
        s2 += rs2[q][j];
      }
    rspan[size_t(sp)] = (L1 ? l1 * s1 : 0.0) + (L2 ? l2 * s2 : 0.0);
  };
  auto combine = [&](int64_t sp) {
    using std::false_type;
    using std::true_type;
    const bool h1 = reg != 0.0 && l1 != 0.0, h2 = reg != 0.0 && l2 != 0.0;
    if (h1 && h2) combine_span(sp, true_type{}, true_type{});
    else if (h1) combine_span(sp, true_type{}, false_type{});
    else if (h2) combine_span(sp, false_type{}, true_type{});
    else combine_span(sp, false_type{}, false_type{});
  };
  // The combination runs on the chunks' team once every chunk is done (one team start a
  // call, a barrier between the two steps), and not at all after a label out of range.
  std::vector<double> span_phases(phases ? size_t(n_spans) : 0, 0.0);
  auto combine_after_chunks = [&](int64_t sp) {
    for (const LabelError& e : errs)
      if (e.row >= 0) return;
    PhaseClock sclock(phases ? span_phases.data() + sp : nullptr);
    combine(sp);
    sclock.lap(0);
  };
  parallel_for_then(K, run_chunk, n_spans, combine_after_chunks, M * D * C, nt, par);
  for (size_t i = 0; i < chunk_phases.size(); ++i) phases[i % 5] += chunk_phases[i];
  for (double v : span_phases) phases[4] += v;
  clock.lap(5);  // (the team's wall time: the chunks and the combination, overlapped)
  for (const LabelError& e : errs)
    if (e.row >= 0) {
      res.error = e;
      return res;
    }
  double total = 0.0;
  for (double v : lsum) total += v;
  res.data_loss = a.reduction == Reduction::mean ? total / denom : total;
  double rsum = 0.0;
  for (double v : rspan) rsum += v;
  if (grad && a.db)
    for (int64_t c = 0; c < C; ++c) {
      double g = 0.0;
      for (int64_t k = 0; k < K; ++k) g += db[size_t(k * C + c)];
      a.db[c] = T(g);
    }
  res.reg_loss = a.reg * rsum;
  res.loss = res.data_loss + res.reg_loss;
  clock.lap(4);
  return res;
}

FASTLOSS_NS_END
