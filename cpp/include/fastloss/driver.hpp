// The one place that walks rows: fixed blocks whose boundaries depend only on the shape,
// OpenMP threads over blocks, and per-block partial results combined in block order, so
// that every thread count gives the same bits.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <vector>

#include "config.hpp"
#include "types.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define FASTLOSS_HAVE_ATFORK 1
#endif

namespace fastloss {
// OpenMP's thread team does not survive fork(): in a child forked after the parent ran a
// parallel region, GCC's libgomp waits forever for threads that exist only in the parent
// (multiprocessing's default "fork" start method on Linux). A fork handler, installed when
// the first team starts, marks such a child, and every call in it stays on the calling
// thread (the same results: they never depend on the thread count). One flag per process
// (inline functions: one copy across the instruction-set variants).
inline std::atomic<bool>& forked_after_team() {
  static std::atomic<bool> flag{false};
  return flag;
}
// Called before a parallel region (cheap after the first call).
inline void note_team_start() {
#if defined(FASTLOSS_HAVE_ATFORK)
  static const int installed =
      pthread_atfork(nullptr, nullptr, [] { forked_after_team().store(true); });
  (void)installed;
#endif
}
}  // namespace fastloss

FASTLOSS_NS_BEGIN

// Below this many elements a call stays on the calling thread (no fork/join cost).
constexpr int64_t kParallelMinElems = int64_t(1) << 15;
// A block of rows holds about this many elements (fits L1/L2 with its gradient), and at
// most kBlockMaxRows rows (per-row scratch lives on the stack).
constexpr int64_t kBlockElems = 2048;
constexpr int64_t kBlockMaxRows = 512;

inline int max_threads() {
#if defined(_OPENMP)
  if (forked_after_team().load(std::memory_order_relaxed)) return 1;
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// The most threads one call starts. Threads beyond the number of blocks have nothing to
// do, and far more threads than processors only cost their creation (a request for 200000
// threads exhausted the address space and crashed the process); the results never depend
// on the count.
inline int thread_cap() {
#if defined(_OPENMP)
  return std::max(64, 4 * omp_get_num_procs());
#else
  return 1;
#endif
}

inline int resolve_threads(int n_threads, int64_t n_blocks) {
  if (forked_after_team().load(std::memory_order_relaxed)) return 1;
  const int64_t want = n_threads > 0 ? n_threads : max_threads();
  return int(std::max<int64_t>(1, std::min<int64_t>({want, n_blocks, int64_t(thread_cap())})));
}

// Rows per block for rows of C elements: a function of C only.
inline int64_t block_rows(int64_t C) {
  return std::min(kBlockMaxRows, std::max<int64_t>(1, kBlockElems / std::max<int64_t>(C, 1)));
}

// Calls f(i) for every i in [0, n): spread over nt OpenMP threads (static schedule) when
// par, else in order on the calling thread. Results must not depend on which thread runs i.
template <class F>
void parallel_for(int64_t n, int nt, bool par, F&& f) {
#if defined(_OPENMP)
  if (par && nt > 1) {
    note_team_start();
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#else
  (void)nt;
  (void)par;
#endif
  for (int64_t i = 0; i < n; ++i) f(i);
}

// Calls f(block, row_begin, row_end) for every block of `rows` rows of N, spread over
// threads when the work (N x width elements) is large enough.
template <class F>
void for_row_blocks(int64_t N, int64_t rows, int64_t width, int n_threads, F&& f) {
  const int64_t n_blocks = (N + rows - 1) / rows;
  const int nt = resolve_threads(n_threads, n_blocks);
  const bool par = nt > 1 && n_blocks > 1 && N * std::max<int64_t>(width, 1) >= kParallelMinElems;
  parallel_for(n_blocks, nt, par,
               [&](int64_t b) { f(b, b * rows, std::min(N, (b + 1) * rows)); });
}

// Per-block partial sums and first label errors, combined in block order.
struct BlockPartials {
  std::vector<double> sum;
  std::vector<LabelError> err;
  explicit BlockPartials(int64_t n_blocks) : sum(size_t(n_blocks), 0.0), err(size_t(n_blocks)) {}
  double total() const {
    double s = 0.0;
    for (double v : sum) s += v;
    return s;
  }
  LabelError first_error() const {
    for (const LabelError& e : err)
      if (e.row >= 0) return e;
    return LabelError{};
  }
};

// Runs f(row_begin, row_end, LabelError&) -> double over fixed blocks and returns the
// ordered sum and the first label error.
template <class F>
double reduce_row_blocks(int64_t N, int64_t rows, int64_t width, int n_threads, LabelError& err,
                         F&& f) {
  const int64_t n_blocks = (N + rows - 1) / rows;
  if (n_blocks <= 1) return N > 0 ? f(int64_t(0), N, err) : 0.0;
  BlockPartials parts(n_blocks);
  for_row_blocks(N, rows, width, n_threads, [&](int64_t b, int64_t r0, int64_t r1) {
    parts.sum[size_t(b)] = f(r0, r1, parts.err[size_t(b)]);
  });
  err = parts.first_error();
  return parts.total();
}

// The class counts whose short rows get a compiled copy of their own (C fixed at compile
// time: the class loop unrolled into registers, about twice as fast as the run-time copy),
// listed once: with_class_count switches on them, and src/isa_scores_*.cpp compile their
// block functions. Each costs build time at every SIMD level, so a count is listed where
// users have it (2 to 8 and 10 classes: binary, iris, digits, CIFAR-10), and only the
// AVX2 and AVX-512 levels compile them (FL_FIXED_CLASS_COUNTS, set by CMakeLists.txt; the
// baseline level is the fallback of CPUs older than AVX2). benchmarks/compare_ct.cpp
// measures a count's copy against the run-time one.
#define FL_CLASS_COUNTS(X) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(10)
#ifndef FL_FIXED_CLASS_COUNTS
#define FL_FIXED_CLASS_COUNTS 0
#endif

// Calls f(std::integral_constant<int, CT>): CT = C for the counts of FL_CLASS_COUNTS
// when `fixed` (and the level compiles them), CT = -1 for the other short rows (C <= 16,
// C at run time), CT = 0 for long rows.
template <class F>
decltype(auto) with_class_count(int64_t C, bool fixed, F&& f) {
#if FL_FIXED_CLASS_COUNTS
  if (fixed) {
    switch (C) {
#define FL_CLASS_CASE_(n) \
  case n:                 \
    return f(std::integral_constant<int, n>{});
      FL_CLASS_COUNTS(FL_CLASS_CASE_)
#undef FL_CLASS_CASE_
      default:
        break;
    }
  }
#else
  (void)fixed;
#endif
  if (C >= 1 && C <= 16) return f(std::integral_constant<int, -1>{});
  return f(std::integral_constant<int, 0>{});
}

// Scratch memory of the calling thread, kept from one call to the next (up to
// kScratchKeepBytes a buffer), so that repeated calls -- an SGD loop -- do not fault in
// and zero fresh pages each time. One buffer per Slot; uninitialised; valid for the
// lease's lifetime, and only one lease of a slot at a time on a thread.
constexpr size_t kScratchKeepBytes = size_t(32) << 20;

struct ScratchBuf {
  void* p = nullptr;
  size_t cap = 0;
  ScratchBuf() = default;
  ScratchBuf(const ScratchBuf&) = delete;
  ScratchBuf& operator=(const ScratchBuf&) = delete;
  ~ScratchBuf() { std::free(p); }
};

template <int Slot>
ScratchBuf& scratch_buf() {
  thread_local ScratchBuf b;
  return b;
}

template <class V, int Slot>
class ScratchLease {
 public:
  explicit ScratchLease(size_t n) : b_(scratch_buf<Slot>()) {
    const size_t bytes = std::max<size_t>(64, (n * sizeof(V) + 63) / 64 * 64);
    if (b_.cap < bytes) {
      std::free(b_.p);
      b_.p = std::aligned_alloc(64, bytes);
      b_.cap = b_.p ? bytes : 0;
      if (!b_.p) throw std::bad_alloc();
    }
  }
  ~ScratchLease() {
    if (b_.cap > kScratchKeepBytes) {
      std::free(b_.p);
      b_.p = nullptr;
      b_.cap = 0;
    }
  }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  V* data() const { return static_cast<V*>(b_.p); }

 private:
  ScratchBuf& b_;
};

FL_INLINE bool label_ok(int64_t y, int64_t C) { return uint64_t(y) < uint64_t(C); }

FASTLOSS_NS_END
