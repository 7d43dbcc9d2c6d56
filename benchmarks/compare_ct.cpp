// A compiled class count (CT = C) against the run-time copy (CT = -1) of the short-row
// score kernels, side by side in one process: 20,000 rows, loss and gradient, one thread,
// calls alternated round by round, medians of the thread's CPU time (steady on a busy
// machine). Which counts get a copy is FL_CLASS_COUNTS in cpp/include/fastloss/driver.hpp.
//
//   g++ -std=c++17 -O3 -DNDEBUG -fno-math-errno -fno-trapping-math -fopenmp \
//       -DFASTLOSS_ISA=avx2 -mavx2 -mfma -mf16c -mbmi -mbmi2 -Icpp/include \
//       benchmarks/compare_ct.cpp -o /tmp/compare_ct && /tmp/compare_ct
//
// (for AVX-512: -DFASTLOSS_ISA=avx512 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2
// -mfma -mf16c -mbmi -mbmi2 -mprefer-vector-width=512)
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "fastloss/score.hpp"

static double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

using namespace fastloss;
using namespace fastloss::FASTLOSS_ISA;

template <class T, int CT, BlockKind K>
double run(const ScoreLossArgs<T>& a, const SoftmaxCEParams<T>* P) {
  ScoreBlock<T> sb;
  sb.P = P;
  sb.scale = 1.0 / a.N;
  sb.margin = T(1);
  LabelError err;
  double s = 0;
  const int64_t br = 256;
  for (int64_t r = 0; r < a.N; r += br)
    s += score_block_entry<T, CT, true, K>(sb, a, r, std::min(a.N, r + br), err);
  return s;
}

template <class T, int C, BlockKind K>
void cmp(const char* name) {
  const int64_t N = 20000;
  std::mt19937 g(1);
  std::normal_distribution<double> nd;
  std::vector<T> S(N * C), G(N * C);
  std::vector<int64_t> y(N);
  for (auto& v : S) v = T(nd(g));
  for (auto& v : y) v = g() % C;
  ScoreLossArgs<T> a;
  a.S = S.data(); a.N = N; a.C = C; a.lds = C; a.y = y.data(); a.G = G.data(); a.ldg = C;
  a.loss = K == BlockKind::ce ? ScoreLoss::softmax : ScoreLoss::hinge_ww;
  SoftmaxParamsHolder<T> params(C, nullptr, 0.0);
  std::vector<double> t1, t2;
  volatile double sink = 0;
  for (int rep = 0; rep < 41; ++rep) {
    for (int w = 0; w < 2; ++w) {
      double t0 = cpu_now();
      for (int k = 0; k < 5; ++k) sink = sink + (w == 0 ? run<T, C, K>(a, &params.P) : run<T, -1, K>(a, &params.P));
      double t = (cpu_now() - t0) / 5;
      (w == 0 ? t1 : t2).push_back(t);
    }
  }
  std::sort(t1.begin(), t1.end()); std::sort(t2.begin(), t2.end());
  std::printf("%-8s %-6s C=%2d  CT=C %8.1f us  CT=-1 %8.1f us  runtime/compile-time %.2f\n", name,
              sizeof(T) == 4 ? "f32" : "f64", C, t1[20] * 1e6, t2[20] * 1e6, t2[20] / t1[20]);
}

template <int C>
void all() {
  cmp<float, C, BlockKind::ce>("softmax");
  cmp<double, C, BlockKind::ce>("softmax");
  cmp<float, C, BlockKind::hinge_ww>("hinge");
  cmp<double, C, BlockKind::hinge_ww>("hinge");
}

int main() {
  all<2>(); all<3>(); all<5>(); all<8>(); all<10>(); all<16>();
}
