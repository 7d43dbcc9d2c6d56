// The one place that walks rows: fixed blocks whose boundaries depend only on the shape,
// OpenMP threads over blocks, and per-block partial results combined in block order, so
// that every thread count gives the same bits.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
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
#include <sys/mman.h>
#include <unistd.h>
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

// Threads that cannot be created: libgomp ends the process ("Thread creation failed",
// exit 1) when pthread_create fails for a team it starts. libgomp keeps the threads of the
// last team a calling thread started, and a smaller team lets the others exit, so a team
// larger than the last one creates threads: before it starts, a probe creates the threads
// it would add, on stacks of the size libgomp's threads get, joins them and unmaps their
// stacks (the room is then free for libgomp's). When the probe cannot create them all,
// the team gets one thread fewer than it found room for (at least the calling thread
// alone): fewer threads, never an exit; the results do not depend on the count. The probe
// runs on every such growth, not once: the room changes between calls, and threads that
// have just left a smaller team may still be holding their stacks.
#if defined(FASTLOSS_HAVE_ATFORK) && defined(_OPENMP)
// The stack libgomp's threads get: OMP_STACKSIZE (GOMP_STACKSIZE), else the process's
// default thread stack.
inline size_t omp_stack_bytes() {
  const char* s = std::getenv("OMP_STACKSIZE");
  if (!s || !*s) s = std::getenv("GOMP_STACKSIZE");
  size_t stack = 0;
  if (s && *s) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(s, &end, 10);
    while (end && *end == ' ') ++end;
    const char u = end && *end ? char(*end | 0x20) : 'k';
    const unsigned long long mul = u == 'b' ? 1ull : u == 'm' ? 1ull << 20 : u == 'g' ? 1ull << 30 : 1ull << 10;
    stack = size_t(v * mul);
  }
#if defined(__GLIBC__)
  pthread_attr_t d;
  if (!stack && pthread_getattr_default_np(&d) == 0) {
    pthread_attr_getstacksize(&d, &stack);
    pthread_attr_destroy(&d);
  }
#endif
  return stack ? stack : size_t(8) << 20;
}

struct ThreadProbe {
  pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
  static void* hold(void* self) {  // waits until the probe has created all its threads
    auto* p = static_cast<ThreadProbe*>(self);
    pthread_mutex_lock(&p->gate);
    pthread_mutex_unlock(&p->gate);
    return nullptr;
  }
  // How many of `extra` threads could exist at once (at most extra). The threads run on
  // stacks mapped here, of the size glibc would map (the stack and a guard page), which
  // are unmapped after the join: a probe leaves no stacks behind in glibc's cache, where
  // they would hold the room it measured.
  int run(int extra) {
    std::vector<pthread_t> ts;
    std::vector<void*> stacks;
    try {
      ts.reserve(size_t(extra));
      stacks.reserve(size_t(extra));
    } catch (const std::bad_alloc&) {
      return 0;
    }
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const size_t bytes = (omp_stack_bytes() + page - 1) / page * page + page;
    pthread_mutex_lock(&gate);
    for (int k = 0; k < extra; ++k) {
#if defined(MAP_STACK)
      const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK;
#else
      const int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#endif
      void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
      if (m == MAP_FAILED) break;
      pthread_attr_t attr;
      int rc = pthread_attr_init(&attr);
      if (rc == 0) {
        rc = pthread_attr_setstack(&attr, m, bytes);
        pthread_t t;
        if (rc == 0) rc = pthread_create(&t, &attr, &ThreadProbe::hold, this);
        pthread_attr_destroy(&attr);
        if (rc == 0) {
          ts.push_back(t);
          stacks.push_back(m);
          continue;
        }
      }
      munmap(m, bytes);
      break;
    }
    pthread_mutex_unlock(&gate);
    for (pthread_t t : ts) pthread_join(t, nullptr);
    for (void* m : stacks) munmap(m, bytes);
    return int(ts.size());
  }
};
#endif

// The team (threads, the caller included) this thread starts for a request of nt > 1:
// nt when the threads exist or can be created, fewer when they cannot.
inline int usable_team(int nt) {
#if defined(FASTLOSS_HAVE_ATFORK) && defined(_OPENMP)
  thread_local int pool = 1;  // the last team this thread started: libgomp keeps its threads
  int team = nt;
  if (nt > pool) {
    ThreadProbe probe;
    const int need = nt - pool;
    const int made = probe.run(need);
    if (made < need) team = std::max(1, pool + made - 1);  // (a thread's margin)
  }
  if (team > 1) pool = team;  // (a team of one is run without a region: the pool stays)
  return team;
#else
  return nt;
#endif
}

}  // namespace fastloss

FASTLOSS_NS_BEGIN

// Teams that lose to the calling thread alone. When other work keeps the cores busy (a
// second training job, a compile), a thread of a team can wait milliseconds for a core,
// and a region of a fraction of a millisecond -- an SGD step's -- then takes several
// times as long as its work on one thread (2.6-4.7x beside one busy process on 2
// cores). Each region measures itself: its wall time against the CPU time its threads
// spent on its items (the work's time on one thread, or a little more). A region that
// took kTeamLossNs longer than that (its threads waited for a core, before or during
// their work) closes the gate of its loop and work class: those calls run on the
// calling thread for kTeamBackoffMinNs, twice as long after each further loss (at most
// kTeamBackoffMaxNs), and the first region after that measures again. A gate per
// parallel loop (per F) and per power of two of its work (a cheap call's losses do not
// keep a large one off its team); results never depend on the gates.
constexpr int64_t kTeamLossNs = 200000;
constexpr int64_t kTeamBackoffMinNs = 10000000;
constexpr int64_t kTeamBackoffMaxNs = 1000000000;
constexpr int kTeamGateClasses = 64;

inline int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The calling thread's CPU time (its wall time where the system has no such clock).
inline int64_t thread_cpu_ns() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
    return int64_t(ts.tv_sec) * 1000000000 + int64_t(ts.tv_nsec);
#endif
  return steady_ns();
}

struct TeamGate {
  std::atomic<int64_t> closed_until{0};  // steady_ns; 0: open
  std::atomic<int64_t> backoff{0};       // the last closing's length, 0 after a win
};

// The work class of a loop: the bit length of its work (elements, FMAs: the caller's unit).
inline int team_gate_class(int64_t work) {
  int c = 0;
  while (c + 1 < kTeamGateClasses && work >> c > 1) ++c;
  return c;
}

inline bool team_gate_open(const TeamGate& g, int64_t now) {
  const int64_t until = g.closed_until.load(std::memory_order_relaxed);
  return until == 0 || now >= until;
}

// A region's measurement, at time now: its wall time and its threads' CPU time.
inline void team_gate_report(TeamGate& g, int64_t wall, int64_t cpu, int64_t now) {
  if (wall > cpu + kTeamLossNs) {
    const int64_t b = g.backoff.load(std::memory_order_relaxed);
    const int64_t nb = b == 0 ? kTeamBackoffMinNs : std::min(kTeamBackoffMaxNs, 2 * b);
    g.backoff.store(nb, std::memory_order_relaxed);
    g.closed_until.store(now + nb, std::memory_order_relaxed);
  } else if (g.backoff.load(std::memory_order_relaxed) != 0) {
    g.backoff.store(0, std::memory_order_relaxed);
    g.closed_until.store(0, std::memory_order_relaxed);
  }
}

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

// The most threads one call starts: 2 per processor, at least 8. Threads beyond the
// number of blocks have nothing to do, and more threads than processors only cost their
// creation and their stacks (64 threads of 8 MB stacks did not fit in a 600 MB address
// space); the results never depend on the count.
inline int thread_cap() {
#if defined(_OPENMP)
  return std::max(8, 2 * omp_get_num_procs());
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

// Scratch memory of the calling thread, kept from one call to the next (up to
// kScratchKeepBytes a buffer), so that repeated calls -- an SGD loop -- do not fault in
// and zero fresh pages each time. One buffer per slot; uninitialised; valid for the
// lease's lifetime, and only one lease of a slot at a time on a thread.
//
// After an allocation fails the kept buffers are given back, so that a MemoryError does
// not leave the process holding the scratch of the call that failed: the failing thread
// frees its idle buffers, every lease alive at the failure frees its buffer when it ends
// (the drop epoch has moved), and parallel_for frees the idle buffers of its team.
constexpr size_t kScratchKeepBytes = size_t(32) << 20;
constexpr int kScratchSlots = 8;

struct ScratchBuf {
  void* p = nullptr;
  size_t cap = 0;
  bool leased = false;
  ScratchBuf() = default;
  ScratchBuf(const ScratchBuf&) = delete;
  ScratchBuf& operator=(const ScratchBuf&) = delete;
  ~ScratchBuf() { std::free(p); }
  void release() {
    std::free(p);
    p = nullptr;
    cap = 0;
  }
};

inline ScratchBuf* scratch_bufs() {
  thread_local ScratchBuf b[kScratchSlots];
  return b;
}

inline std::atomic<unsigned>& scratch_drop_epoch() {
  static std::atomic<unsigned> e{0};
  return e;
}

// Frees the calling thread's scratch buffers that no lease holds.
inline void drop_idle_scratch() {
  ScratchBuf* b = scratch_bufs();
  for (int s = 0; s < kScratchSlots; ++s)
    if (!b[s].leased) b[s].release();
}

template <class V, int Slot>
class ScratchLease {
  static_assert(Slot >= 0 && Slot < kScratchSlots, "scratch slot out of range");

 public:
  explicit ScratchLease(size_t n)
      : b_(scratch_bufs()[Slot]), epoch_(scratch_drop_epoch().load(std::memory_order_relaxed)) {
    const size_t bytes = std::max<size_t>(64, (n * sizeof(V) + 63) / 64 * 64);
    if (b_.cap < bytes) {
      b_.release();
      b_.p = std::aligned_alloc(64, bytes);
      if (!b_.p) {
        scratch_drop_epoch().fetch_add(1, std::memory_order_relaxed);
        drop_idle_scratch();
        throw std::bad_alloc();
      }
      b_.cap = bytes;
    }
    b_.leased = true;
  }
  ~ScratchLease() {
    b_.leased = false;
    if (b_.cap > kScratchKeepBytes ||
        scratch_drop_epoch().load(std::memory_order_relaxed) != epoch_)
      b_.release();
  }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  V* data() const { return static_cast<V*>(b_.p); }

 private:
  ScratchBuf& b_;
  unsigned epoch_;
};

// Calls f(i) for every i in [0, n) and then, once every f(i) has returned, g(j) for
// every j in [0, m): on one team of nt OpenMP threads (each a contiguous range of i, a
// barrier, then a contiguous range of j) when par and the team gate of this loop and its
// work (any unit, for the gate's class) is open, else in order on the calling thread.
// Results must not depend on which thread runs i or j. A second step that reads what the
// first wrote (a reduction of per-chunk partials) so costs no second team start.
//
// An exception thrown by f or g (std::bad_alloc from scratch memory) must not leave the
// parallel region, where it would end the process (std::terminate): the exception of the
// first item (f's before g's, the lowest index) is kept, the threads skip their remaining
// items and the second step, and it is rethrown on the calling thread after the region.
template <class F, class G>
void parallel_for_then(int64_t n, F&& f, int64_t m, G&& g, int64_t work, int nt, bool par) {
#if defined(_OPENMP)
  static TeamGate gates[kTeamGateClasses];  // (this loop's: one per F and G)
  TeamGate& gate = gates[team_gate_class(work)];
  if (par && nt > 1 && !team_gate_open(gate, steady_ns())) par = false;
  if (par && nt > 1) nt = usable_team(nt);
  if (par && nt > 1) {
    note_team_start();
    std::exception_ptr first;
    int64_t first_i = n + m;
    std::atomic<bool> failed{false};
    std::atomic<int64_t> cpu{0};
    // items [lo, hi) of fn, numbered from base for the order of their exceptions
    auto run = [&](int64_t lo, int64_t hi, int64_t base, auto& fn) {
      for (int64_t i = lo; i < hi; ++i) {
        if (failed.load(std::memory_order_relaxed)) break;
        try {
          fn(i);
        } catch (...) {
          failed.store(true, std::memory_order_relaxed);
#pragma omp critical(fastloss_parallel_for_error)
          if (base + i < first_i) {
            first_i = base + i;
            first = std::current_exception();
          }
        }
      }
    };
    const int64_t t0 = steady_ns();
#pragma omp parallel num_threads(nt)
    {
      const int64_t t = omp_get_thread_num(), team = omp_get_num_threads();
      const int64_t i0 = n * t / team, i1 = n * (t + 1) / team;
      // (the CPU time spent on items: not the time spinning at the barrier)
      const int64_t s0 = i1 > i0 ? thread_cpu_ns() : 0;
      run(i0, i1, 0, f);
      if (i1 > i0) cpu.fetch_add(thread_cpu_ns() - s0, std::memory_order_relaxed);
      if (m > 0) {
#pragma omp barrier
        const int64_t j0 = m * t / team, j1 = m * (t + 1) / team;
        const int64_t s1 = j1 > j0 ? thread_cpu_ns() : 0;
        run(j0, j1, n, g);
        if (j1 > j0) cpu.fetch_add(thread_cpu_ns() - s1, std::memory_order_relaxed);
      }
    }
    if (first) {
      // the team's threads give back the scratch they keep (see ScratchLease)
#pragma omp parallel num_threads(nt)
      drop_idle_scratch();
      std::rethrow_exception(first);
    }
    const int64_t t1 = steady_ns();
    team_gate_report(gate, t1 - t0, cpu.load(), t1);
    return;
  }
#else
  (void)work;
  (void)nt;
  (void)par;
#endif
  for (int64_t i = 0; i < n; ++i) f(i);
  for (int64_t j = 0; j < m; ++j) g(j);
}

// Calls f(i) for every i in [0, n), as parallel_for_then with no second step.
template <class F>
void parallel_for(int64_t n, int64_t work, int nt, bool par, F&& f) {
  parallel_for_then(n, f, 0, [](int64_t) {}, work, nt, par);
}

// Calls f(block, row_begin, row_end) for every block of `rows` rows of N, spread over
// threads when the work (N x width elements) is large enough.
template <class F>
void for_row_blocks(int64_t N, int64_t rows, int64_t width, int n_threads, F&& f) {
  const int64_t n_blocks = (N + rows - 1) / rows;
  const int nt = resolve_threads(n_threads, n_blocks);
  const bool par = nt > 1 && n_blocks > 1 && N * std::max<int64_t>(width, 1) >= kParallelMinElems;
  parallel_for(n_blocks, N * std::max<int64_t>(width, 1), nt, par,
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

FL_INLINE bool label_ok(int64_t y, int64_t C) { return uint64_t(y) < uint64_t(C); }

FASTLOSS_NS_END
