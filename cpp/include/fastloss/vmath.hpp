// Branch-free exp for float and double, written as scalar code that the compiler turns
// into SIMD inside `omp simd` loops (no libm call per element). Cody-Waite range
// reduction, a Taylor polynomial of degree 13 (double) / 7 (float) on |r| <= ln2/2, and a
// split 2^n scaling so that subnormal results are rounded once, not flushed. Overflow
// gives +inf, underflow 0, NaN stays NaN. Error: <= 2 ulp (checked over the whole range in
// tests/test_vmath.py through fastloss.softmax).
#pragma once

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
  const double hi = 709.782712893384, lo = -745.2;
  double xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  xc = (x == x) ? xc : 0.0;
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
  const double s1 = bits_as<double>((n1 + 1023) << 52);
  const double s2 = bits_as<double>((n2 + 1023) << 52);
  double res = (p * s1) * s2;
  res = x > hi ? std::numeric_limits<double>::infinity() : res;
  res = x < lo ? 0.0 : res;
  return (x == x) ? res : x;
}

FL_INLINE float vexp(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f;
  const float ln2_lo = -2.12194440e-4f;
  const float shift = 12582912.0f;  // 1.5 * 2^23
  const float hi = 88.7228317f, lo = -103.972084f;
  float xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  xc = (x == x) ? xc : 0.0f;
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
  const float s1 = bits_as<float>((n1 + 127) << 23);
  const float s2 = bits_as<float>((n2 + 127) << 23);
  float res = (p * s1) * s2;
  res = x > hi ? std::numeric_limits<float>::infinity() : res;
  res = x < lo ? 0.0f : res;
  return (x == x) ? res : x;
}

// out[k] = exp(in[k]) for k < n; in and out may be the same array.
template <class T>
inline void vexp_array(const T* in, T* out, int64_t n) {
  FL_SIMD
  for (int64_t k = 0; k < n; ++k) out[k] = vexp(in[k]);
}

FASTLOSS_NS_END
