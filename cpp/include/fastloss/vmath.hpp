#pragma once

// Branch-free exp for float and double on x <= 0 (and NaN), the domain of the softmax's
// shifted scores s - max(s): scalar code that the compiler turns into SIMD inside `omp
// simd` loops (no libm call per element). Cody-Waite range reduction, a Taylor polynomial
// of degree 13 (double) / 7 (float) on |r| <= ln2/2, and a split 2^n scaling so that
// subnormal results are rounded once, not flushed; below the clamp the result is exactly
// 0 (exp(-inf) = 0), and NaN propagates through the arithmetic. Error <= 2 ulp (checked
// over the whole range in tests/test_vmath.py). Positive x is outside the contract.
#include <cstring>
#include <limits>

#include "config.hpp"

FASTLOSS_NS_BEGIN

template <class To, class From>
FL_INLINE To bits_as(From v) {
  static_assert(sizeof(To) == sizeof(From), "size mismatch");
  To t;
  std::memcpy(&t, &v, sizeof(To));
  return t;
}

FL_INLINE double vexp(double x) {
  const double log2e = 1.4426950408889634074;
  const double ln2_hi = 6.93147180369123816490e-01;
  const double ln2_lo = 1.90821492927058770002e-10;
  const double shift = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  const double lo = -760.0;                 // exp(lo) rounds to 0
  const double xc = x < lo ? lo : x;        // NaN stays NaN
  const double t = xc * log2e + shift;
  const double n = t - shift;
  const int64_t ni = bits_as<int64_t>(t) - bits_as<int64_t>(shift);
  const double r = (xc - n * ln2_hi) - n * ln2_lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const int64_t n1 = ni >> 1, n2 = ni - n1;
  const double s1 = bits_as<double>(uint64_t(n1 + 1023) << 52);
  const double s2 = bits_as<double>(uint64_t(n2 + 1023) << 52);
  return (p * s1) * s2;
}

FL_INLINE float vexp(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f;
  const float ln2_lo = -2.12194440e-4f;
  const float shift = 12582912.0f;  // 1.5 * 2^23
  const float lo = -110.0f;         // exp(lo) rounds to 0
  const float xc = x < lo ? lo : x;
  const float t = xc * log2e + shift;
  const float n = t - shift;
  const int32_t ni = bits_as<int32_t>(t) - bits_as<int32_t>(shift);
  const float r = (xc - n * ln2_hi) - n * ln2_lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const float s1 = bits_as<float>(uint32_t(n1 + 127) << 23);
  const float s2 = bits_as<float>(uint32_t(n2 + 127) << 23);
  return (p * s1) * s2;
}

// Branch-free natural log for float and double: x = 2^e * m with m in [sqrt(1/2), sqrt(2)),
// log(m) = 2 atanh(z), z = (m - 1) / (m + 1), |z| <= 0.1716, by its odd series (11 terms
// in double, 5 in float: truncation below 1e-17 / 1e-8). log(0) = -inf, log(inf) = inf,
// negative or NaN gives NaN, subnormals are scaled first.
FL_INLINE double vlog(double x) {
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  const bool sub = x < 2.2250738585072014e-308;
  const double xs = sub ? x * 4503599627370496.0 : x;  // * 2^52
  const int64_t b = bits_as<int64_t>(xs);
  int64_t e = ((b >> 52) & 0x7ff) - 1023 - (sub ? 52 : 0);
  double m = bits_as<double>((b & 0x000fffffffffffffLL) | 0x3ff0000000000000LL);
  const bool big = m > 1.4142135623730951;
  m = big ? m * 0.5 : m;
  e = big ? e + 1 : e;
  const double z = (m - 1.0) / (m + 1.0);
  const double z2 = z * z;
  double p = 1.0 / 23;
  p = p * z2 + 1.0 / 21;
  p = p * z2 + 1.0 / 19;
  p = p * z2 + 1.0 / 17;
  p = p * z2 + 1.0 / 15;
  p = p * z2 + 1.0 / 13;
  p = p * z2 + 1.0 / 11;
  p = p * z2 + 1.0 / 9;
  p = p * z2 + 1.0 / 7;
  p = p * z2 + 1.0 / 5;
  p = p * z2 + 1.0 / 3;
  const double ed = double(e);
  double r = (ed * ln2_lo + 2.0 * z * z2 * p) + 2.0 * z + ed * ln2_hi;
  r = x == 0.0 ? -std::numeric_limits<double>::infinity() : r;
  r = x == std::numeric_limits<double>::infinity() ? x : r;
  r = (x < 0.0 || x != x) ? std::numeric_limits<double>::quiet_NaN() : r;
  return r;
}

FL_INLINE float vlog(float x) {
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  const bool sub = x < 1.17549435e-38f;
  const float xs = sub ? x * 8388608.0f : x;  // * 2^23
  const int32_t b = bits_as<int32_t>(xs);
  int32_t e = ((b >> 23) & 0xff) - 127 - (sub ? 23 : 0);
  float m = bits_as<float>((b & 0x007fffff) | 0x3f800000);
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  const float z = (m - 1.0f) / (m + 1.0f);
  const float z2 = z * z;
  float p = 1.0f / 11;
  p = p * z2 + 1.0f / 9;
  p = p * z2 + 1.0f / 7;
  p = p * z2 + 1.0f / 5;
  p = p * z2 + 1.0f / 3;
  const float ef = float(e);
  float r = (ef * ln2_lo + 2.0f * z * z2 * p) + 2.0f * z + ef * ln2_hi;
  r = x == 0.0f ? -std::numeric_limits<float>::infinity() : r;
  r = x == std::numeric_limits<float>::infinity() ? x : r;
  r = (x < 0.0f || x != x) ? std::numeric_limits<float>::quiet_NaN() : r;
  return r;
}

// out[k] = exp(in[k]) for k < n; in and out may be the same array.
template <class T>
inline void vexp_array(const T* in, T* out, int64_t n) {
  FL_SIMD
  for (int64_t k = 0; k < n; ++k) out[k] = vexp(in[k]);
}

FASTLOSS_NS_END
