#pragma once

// Branch-free exp for float and double on x <= 0 (and NaN), the domain of the softmax's
// shifted scores s - max(s): scalar code that the compiler turns into SIMD inside `omp
// simd` loops (no libm call per element). Cody-Waite range reduction, a polynomial of
// degree 11 (double: Chebyshev interpolation) / 7 (float: Taylor's) on |r| <= ln2/2, and
// a split 2^n scaling so that subnormal results are rounded once, not flushed; below the
// clamp the result is exactly 0 (exp(-inf) = 0), and NaN propagates through the
// arithmetic. Error <= 2 ulp (checked over the whole range in tests/test_vmath.py; below
// 1 ulp in a sampling of it). Positive x is outside the contract.
#include <cstring>
#include <limits>
#include <type_traits>

#include "config.hpp"
#include "simd.hpp"

FASTLOSS_NS_BEGIN

template <class To, class From>
FL_INLINE To bits_as(From v) {
  static_assert(sizeof(To) == sizeof(From), "size mismatch");
  To t;
  std::memcpy(&t, &v, sizeof(To));
  return t;
}

// The constants of exp for one element type.
template <class F>
struct ExpConst;
template <>
struct ExpConst<float> {
  static constexpr float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f,
                         ln2_lo = -2.12194440e-4f;
  // 1.5 * 2^23 + 127: adding it rounds to an integer n, and leaves n + 127 (the biased
  // exponent of 2^n) in the low bits
  static constexpr float shift = 12583039.0f;
  static constexpr float lo = -110.0f;         // exp(lo) rounds to 0
  static constexpr int bias = 127, mant = 23, degree = 7;
  static constexpr float coef[8] = {1.0f / 5040.0f, 1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f,
                                    1.0f / 6.0f,    0.5f,          1.0f,          1.0f};
};
template <>
struct ExpConst<double> {
  static constexpr double log2e = 1.4426950408889634074, ln2_hi = 6.93147180369123816490e-01,
                          ln2_lo = 1.90821492927058770002e-10;
  static constexpr double shift = 6755399441056767.0;  // 1.5 * 2^52 + 1023 (as for float)
  static constexpr double lo = -760.0;
  // exp(r) = 1 + r + r^2 g(r) on |r| <= ln2/2, g of degree 9 interpolating
  // (e^r - 1 - r) / r^2 at the Chebyshev nodes: relative error below 2e-17 (Taylor's
  // series needs degree 13 for that)
  static constexpr int bias = 1023, mant = 52, degree = 11;
  static constexpr double coef[12] = {
      0x1.af389ecfc4b9cp-26, 0x1.28917c89a43a7p-22, 0x1.71de0db2f6b19p-19,
      0x1.a019b9149a41cp-16, 0x1.a01a01a7c2efep-13, 0x1.6c16c17889ef1p-10,
      0x1.11111111109b5p-7, 0x1.5555555553d68p-5, 0x1.5555555555556p-3,
      0x1.0000000000001p-1, 1.0, 1.0};
};

// The element type of a scalar or of a SIMD vector, the bits as integers, and 2^n.
template <class V>
struct ElemOf {
  using type = V;
};
template <>
struct ElemOf<vec<float>> {
  using type = float;
};
template <>
struct ElemOf<vec<double>> {
  using type = double;
};
FL_INLINE int32_t int_bits(float x) { return bits_as<int32_t>(x); }
FL_INLINE int64_t int_bits(double x) { return bits_as<int64_t>(x); }
FL_INLINE ivec<float> int_bits(vec<float> x) { return ivec<float>(x); }
FL_INLINE ivec<double> int_bits(vec<double> x) { return ivec<double>(x); }
FL_INLINE float pow2(int32_t n) { return bits_as<float>(uint32_t(n + 127) << 23); }
FL_INLINE double pow2(int64_t n) { return bits_as<double>(uint64_t(n + 1023) << 52); }
FL_INLINE vec<float> pow2(ivec<float> n) { return vec<float>((n + 127) << 23); }
FL_INLINE vec<double> pow2(ivec<double> n) { return vec<double>((n + 1023) << 52); }

// 2^n from t = x log2e + shift (see exp_batch): its low bits hold n + bias, which the
// shift moves into the exponent field (the bits above shift out).
FL_INLINE float pow2_of_shifted(float t) { return bits_as<float>(bits_as<uint32_t>(t) << 23); }
FL_INLINE double pow2_of_shifted(double t) {
  return bits_as<double>(bits_as<uint64_t>(t) << 52);
}
FL_INLINE vec<float> pow2_of_shifted(vec<float> t) {
  typedef uint32_t U __attribute__((vector_size(sizeof(vec<float>))));
  return vec<float>(U(t) << 23);
}
FL_INLINE vec<double> pow2_of_shifted(vec<double> t) {
  typedef uint64_t U __attribute__((vector_size(sizeof(vec<double>))));
  return vec<double>(U(t) << 52);
}

// Above this every lane's 2^n is a normal number: one multiply by 2^n rounds exactly like
// the split scaling of exp_batch (both exact there).
template <class F>
constexpr F kExpNormalMin = sizeof(F) == 4 ? F(-86.5) : F(-707.0);

// v[j] = exp(v[j]) for j < G, each an element or a SIMD vector, x <= 0 or NaN. exp(x) =
// 2^n p(r): t = x log2e + shift (whose low bits hold n, see ExpConst::shift), r = x - n
// ln2 (Cody-Waite), p by Horner. The G polynomials run interleaved, step by step, so that
// G independent chains of multiply-adds are in flight rather than one (the same operations
// per lane as G = 1, so the same bits). Normal: every lane's 2^n is a normal number (x >=
// kExpNormalMin), one multiply by 2^n; else x is clamped below (exp = 0 there) and scaled
// by 2^(n/2) 2^(n - n/2), so that a subnormal result is rounded once. NaN stays NaN.
template <int G, bool Normal, class V>
FL_INLINE void exp_batch(V* v) {
  using F = typename ElemOf<V>::type;
  using K = ExpConst<F>;
  V t[G], r[G], p[G];
#pragma GCC unroll 16
  for (int j = 0; j < G; ++j) {
    const V lo = V{} + K::lo;
    const V xc = Normal ? v[j] : (v[j] < lo ? lo : v[j]);
    t[j] = xc * K::log2e + K::shift;
    const V n = t[j] - K::shift;
    r[j] = (xc - n * K::ln2_hi) - n * K::ln2_lo;
    p[j] = V{} + K::coef[0];
  }
#pragma GCC unroll 16
  for (int k = 1; k <= K::degree; ++k) {
    // With many chains their r's do not all fit in registers: the coefficient held in a
    // register (the empty asm hides that it is a constant) lets each multiply-add take
    // its r straight from memory, where the compiler otherwise reloaded r into a register
    // and took the coefficient from memory (one instruction more per step; 200 x 10
    // softmax 12 % faster in double, 7 % in float, on AVX2). The same operations.
    V c = V{} + K::coef[k];
    if constexpr (G > 1) asm("" : "+v"(c));
#pragma GCC unroll 16
    for (int j = 0; j < G; ++j) p[j] = p[j] * r[j] + c;
  }
#pragma GCC unroll 16
  for (int j = 0; j < G; ++j) {
    if constexpr (Normal) {
      v[j] = p[j] * pow2_of_shifted(t[j]);
    } else {
      const auto ni = int_bits(t[j]) - int_bits(V{} + K::shift);
      const decltype(ni) n1 = ni >> 1, n2 = ni - n1;
      v[j] = (p[j] * pow2(n1)) * pow2(n2);
    }
  }
}

// exp for x <= 0 or NaN, one element or a vector.
template <class V>
FL_INLINE V vexp(V x) {
  exp_batch<1, false>(&x);
  return x;
}

// exp where x >= kExpNormalMin (or NaN).
template <class V>
FL_INLINE V vexp_normal(V x) {
  exp_batch<1, true>(&x);
  return x;
}

template <class F>
struct LogConst;
template <>
struct LogConst<float> {
  static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  static constexpr float tiny = 1.17549435e-38f, up = 8388608.0f;  // 2^23: subnormals scaled
  static constexpr float sqrt2 = 1.41421356f;
  static constexpr int32_t mant = 23, bias = 127, emask = 0xff, mmask = 0x007fffff,
                           one = 0x3f800000;
  static constexpr int ncoef = 5;
  static constexpr float coef[5] = {1.0f / 11, 1.0f / 9, 1.0f / 7, 1.0f / 5, 1.0f / 3};
};
template <>
struct LogConst<double> {
  static constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  static constexpr double tiny = 2.2250738585072014e-308, up = 4503599627370496.0;  // 2^52
  static constexpr double sqrt2 = 1.4142135623730951;
  static constexpr int64_t mant = 52, bias = 1023, emask = 0x7ff, mmask = 0x000fffffffffffffLL,
                           one = 0x3ff0000000000000LL;
  static constexpr int ncoef = 11;
  static constexpr double coef[11] = {1.0 / 23, 1.0 / 21, 1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13,
                                      1.0 / 11, 1.0 / 9,  1.0 / 7,  1.0 / 5,  1.0 / 3};
};

// Integers as floats of the same width (small integers: exact), and bits as floats.
FL_INLINE float int_value(int32_t e) { return float(e); }
FL_INLINE double int_value(int64_t e) { return double(e); }
FL_INLINE vec<float> int_value(ivec<float> e) { return __builtin_convertvector(e, vec<float>); }
FL_INLINE vec<double> int_value(ivec<double> e) {  // (no int64 -> double before AVX-512)
  const vec<double> magic = splat(6755399441055744.0);  // 1.5 * 2^52
  return vec<double>(e + ivec<double>(magic)) - magic;
}
FL_INLINE float from_bits(int32_t b) { return bits_as<float>(b); }
FL_INLINE double from_bits(int64_t b) { return bits_as<double>(b); }
FL_INLINE vec<float> from_bits(ivec<float> b) { return vec<float>(b); }
FL_INLINE vec<double> from_bits(ivec<double> b) { return vec<double>(b); }

// sum_k c[k] x^(N-1-k) (c highest degree first), by Estrin's scheme: pairs c x + c', then
// pairs of those with x^2, x^4, ...: log2(N) dependent steps rather than Horner's N - 1.
// For polynomials whose terms fall off fast (|x| small), where its rounding is Horner's.
template <class V, class F, int N>
FL_INLINE V poly_estrin(V x, const F (&c)[N]) {
  constexpr int H = (N + 1) / 2;
  V q[H];
#pragma GCC unroll 16
  for (int i = 0; i < H; ++i) {  // from the constant term up
    const int k = N - 1 - 2 * i;
    q[i] = k >= 1 ? x * c[k - 1] + c[k] : V{} + c[k];
  }
  int n = H;
#pragma GCC unroll 8
  while (n > 1) {
    x = x * x;
#pragma GCC unroll 16
    for (int i = 0; i < n / 2; ++i) q[i] = q[2 * i] + q[2 * i + 1] * x;
    if (n % 2) q[n / 2] = q[n - 1];
    n = (n + 1) / 2;
  }
  return q[0];
}

// Branch-free natural log for float and double, one element or a SIMD vector of them (the
// same operations, so the same bits per lane): x = 2^e * m with m in [sqrt(1/2), sqrt(2)),
// log(m) = 2 atanh(z), z = (m - 1) / (m + 1), |z| <= 0.1716, by its odd series (11 terms
// in double, 5 in float: truncation below 1e-17 / 1e-8). log(0) = -inf, log(inf) = inf,
// negative or NaN gives NaN, subnormals are scaled first.
template <class V>
FL_INLINE V vlog(V x) {
  using F = typename ElemOf<V>::type;
  using K = LogConst<F>;
  using I = decltype(int_bits(x));
  const V zero{}, one = zero + F(1);
  const auto sub = x < K::tiny;
  const V xs = sub ? x * (zero + K::up) : x;
  const I b = int_bits(xs);
  I e = ((b >> K::mant) & K::emask) - K::bias - (sub ? I{} + K::mant : I{});
  V m = from_bits((b & K::mmask) | K::one);
  const auto big = m > K::sqrt2;
  m = big ? m * (zero + F(0.5)) : m;
  e = big ? e + 1 : e;
  const V z = (m - one) / (m + one);
  const V z2 = z * z;
  const V p = poly_estrin(z2, K::coef);
  const V ef = int_value(e);
  V r = (ef * K::ln2_lo + F(2) * z * z2 * p) + F(2) * z + ef * K::ln2_hi;
  const V inf = zero + std::numeric_limits<F>::infinity();
  r = x == zero ? -inf : r;
  r = x == inf ? x : r;
  r = (x < zero || x != x) ? zero + std::numeric_limits<F>::quiet_NaN() : r;
  return r;
}

// v[j] = exp(v[j]) for j < n (CT > 0: n = CT, known at compile time), v[j] <= 0 (or NaN);
// lo <= min_j v[j] lane by lane (NaN lanes aside): one test for all the vectors, and all
// their polynomials interleaved (5 at a time for a run-time n).
template <int CT, bool Normal, class V>
FL_INLINE void exp_vectors_as(V* v, int n) {
  if constexpr (CT > 0) {
    exp_batch<CT, Normal>(v);
  } else {
    int j = 0;
    for (; j + 5 <= n; j += 5) exp_batch<5, Normal>(v + j);
    for (; j < n; ++j) exp_batch<1, Normal>(v + j);
  }
}
template <int CT, class V>
FL_INLINE void vexp_vectors(V* v, int n, V lo) {
  using T = std::remove_reference_t<decltype(lo[0])>;
  if (!any(lo < kExpNormalMin<T>))
    exp_vectors_as<CT, true>(v, n);
  else
    exp_vectors_as<CT, false>(v, n);
}

// out[k] = exp(in[k]) for k < n; in and out may be the same array.
template <class T>
inline void vexp_array(const T* in, T* out, int64_t n) {
  FL_SIMD
  for (int64_t k = 0; k < n; ++k) out[k] = vexp(in[k]);
}

FASTLOSS_NS_END
