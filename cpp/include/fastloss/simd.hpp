// Portable SIMD vectors (GCC/Clang vector extensions) whose width follows the instruction
// set the translation unit is compiled for: 16 bytes baseline, 32 with AVX2, 64 with
// AVX-512. The per-row math of the losses is written once with these.
#pragma once

#include <cstring>
#include <limits>
#include <type_traits>

#include "config.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

FASTLOSS_NS_BEGIN

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX2__) || defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

template <class T, int Bytes = kVecBytes>
struct VecT {
  static constexpr int W = Bytes / int(sizeof(T));
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef T V __attribute__((vector_size(Bytes)));
  typedef I M __attribute__((vector_size(Bytes)));  // masks and indices
};

template <class T>
using vec = typename VecT<T>::V;
template <class T>
using ivec = typename VecT<T>::M;
template <class T>
constexpr int width() {
  return VecT<T>::W;
}

// x in every lane. (In the default rounding mode x - 0 is x for every x, signed zeros
// included, so the compiler drops the subtraction and broadcasts, from memory when x comes
// from there; 0 + x is not, as 0 + -0 is +0, and costs an addition on every splat.)
template <class T>
FL_INLINE vec<T> splat(T x) {
  return x - vec<T>{};
}

template <class T>
FL_INLINE ivec<T> iota() {
  ivec<T> v{};
  for (int i = 0; i < width<T>(); ++i) v[i] = typename VecT<T>::I(i);
  return v;
}

template <class T>
FL_INLINE vec<T> load(const T* p) {
  vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The first n (< width) elements from p, the rest `fill`.
template <class T>
FL_INLINE vec<T> load_part(const T* p, int64_t n, T fill) {
  vec<T> v = splat(fill);
  for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  return v;
}

// Keeps v in a register: GCC otherwise folds a load used by several FMAs into each of them
// (one load per use), which makes a register-blocked product bound by the load ports.
template <class V>
FL_INLINE void in_register(V& v) {
#if defined(__GNUC__) && defined(__x86_64__)
  __asm__("" : "+x"(v));
#else
  (void)v;
#endif
}

template <class T>
FL_INLINE void store(T* p, vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}

template <class T>
FL_INLINE void store_part(T* p, vec<T> v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = v[i];
}

// Loads chunk k of a row of C elements (full, or the partial last one filled with `fill`).
template <class T>
FL_INLINE vec<T> load_chunk(const T* row, int64_t k, int64_t C, T fill) {
  const int64_t off = k * width<T>();
  return off + width<T>() <= C ? load(row + off) : load_part(row + off, C - off, fill);
}

template <class T>
FL_INLINE void store_chunk(T* row, int64_t k, int64_t C, vec<T> v) {
  const int64_t off = k * width<T>();
  if (off + width<T>() <= C)
    store(row + off, v);
  else
    store_part(row + off, v, C - off);
}

// Horizontal sum and max (max ignores NaN lanes unless all are NaN) by halving.
template <class V>
FL_INLINE auto hsum(V v) {
  constexpr int n = int(sizeof(V) / sizeof(v[0]));
  if constexpr (n == 1) {
    return v[0];
  } else {
    using E = std::remove_reference_t<decltype(v[0])>;
    typedef E H __attribute__((vector_size(sizeof(V) / 2)));
    H lo, hi;
    std::memcpy(&lo, &v, sizeof(H));
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(H), sizeof(H));
    return hsum(lo + hi);
  }
}

template <class V>
FL_INLINE auto hmax(V v) {
  constexpr int n = int(sizeof(V) / sizeof(v[0]));
  if constexpr (n == 1) {
    return v[0];
  } else {
    using E = std::remove_reference_t<decltype(v[0])>;
    typedef E H __attribute__((vector_size(sizeof(V) / 2)));
    H lo, hi;
    std::memcpy(&lo, &v, sizeof(H));
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(H), sizeof(H));
    return hmax(H(lo > hi ? lo : hi));
  }
}

// In-place transpose of a square block of W vectors of W elements (v[i][j] <-> v[j][i]):
// the shuffle networks of SSE2 and AVX (has_transpose<T>() says where there is one; the
// AVX-512 widths keep element-wise code).
template <class T>
constexpr bool has_transpose() {
#if defined(__AVX512F__)
  return false;
#elif defined(__AVX__)
  return kVecBytes == 32;
#elif defined(__SSE2__)
  return kVecBytes == 16;
#else
  return false;
#endif
}

#if defined(__AVX__) && !defined(__AVX512F__)
FL_INLINE void transpose(vec<float>* v) {  // 8 x 8
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = __m256(v[i]);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = vec<float>(_mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    v[i + 4] = vec<float>(_mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
FL_INLINE void transpose(vec<double>* v) {  // 4 x 4
  const __m256d t0 = _mm256_unpacklo_pd(__m256d(v[0]), __m256d(v[1]));
  const __m256d t1 = _mm256_unpackhi_pd(__m256d(v[0]), __m256d(v[1]));
  const __m256d t2 = _mm256_unpacklo_pd(__m256d(v[2]), __m256d(v[3]));
  const __m256d t3 = _mm256_unpackhi_pd(__m256d(v[2]), __m256d(v[3]));
  v[0] = vec<double>(_mm256_permute2f128_pd(t0, t2, 0x20));
  v[1] = vec<double>(_mm256_permute2f128_pd(t1, t3, 0x20));
  v[2] = vec<double>(_mm256_permute2f128_pd(t0, t2, 0x31));
  v[3] = vec<double>(_mm256_permute2f128_pd(t1, t3, 0x31));
}
// The first two elements of W rows (row l at p + l * ld) as two vectors of lanes, and
// back: no access beyond the two elements.
FL_INLINE void load_cols2(const float* p, int64_t ld, vec<float>& c0, vec<float>& c1) {
  auto pair = [&](int l) {  // rows l and l + 1
    return _mm_loadh_pi(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(p + l * ld))),
                        reinterpret_cast<const __m64*>(p + (l + 1) * ld));
  };
  const __m256 a = _mm256_insertf128_ps(_mm256_castps128_ps256(pair(0)), pair(4), 1);
  const __m256 b = _mm256_insertf128_ps(_mm256_castps128_ps256(pair(2)), pair(6), 1);
  c0 = vec<float>(_mm256_shuffle_ps(a, b, 0x88));
  c1 = vec<float>(_mm256_shuffle_ps(a, b, 0xDD));
}
FL_INLINE void store_cols2(float* p, int64_t ld, vec<float> c0, vec<float> c1) {
  const __m256 a = _mm256_unpacklo_ps(__m256(c0), __m256(c1));  // rows 0, 1 | 4, 5
  const __m256 b = _mm256_unpackhi_ps(__m256(c0), __m256(c1));  // rows 2, 3 | 6, 7
  auto put = [&](int l, __m128 v) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p + l * ld), v);
    _mm_storeh_pi(reinterpret_cast<__m64*>(p + (l + 1) * ld), v);
  };
  put(0, _mm256_castps256_ps128(a));
  put(2, _mm256_castps256_ps128(b));
  put(4, _mm256_extractf128_ps(a, 1));
  put(6, _mm256_extractf128_ps(b, 1));
}
FL_INLINE void load_cols2(const double* p, int64_t ld, vec<double>& c0, vec<double>& c1) {
  const __m256d a = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(p)),
                                         _mm_loadu_pd(p + 2 * ld), 1);
  const __m256d b = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(p + ld)),
                                         _mm_loadu_pd(p + 3 * ld), 1);
  c0 = vec<double>(_mm256_unpacklo_pd(a, b));
  c1 = vec<double>(_mm256_unpackhi_pd(a, b));
}
FL_INLINE void store_cols2(double* p, int64_t ld, vec<double> c0, vec<double> c1) {
  const __m256d a = _mm256_unpacklo_pd(__m256d(c0), __m256d(c1));  // rows 0 | 2
  const __m256d b = _mm256_unpackhi_pd(__m256d(c0), __m256d(c1));  // rows 1 | 3
  _mm_storeu_pd(p, _mm256_castpd256_pd128(a));
  _mm_storeu_pd(p + 2 * ld, _mm256_extractf128_pd(a, 1));
  _mm_storeu_pd(p + ld, _mm256_castpd256_pd128(b));
  _mm_storeu_pd(p + 3 * ld, _mm256_extractf128_pd(b, 1));
}
constexpr bool kHaveCols2 = true;
#elif defined(__SSE2__) && !defined(__AVX512F__)
constexpr bool kHaveCols2 = false;
FL_INLINE void transpose(vec<float>* v) {  // 4 x 4
  const __m128 t0 = _mm_unpacklo_ps(__m128(v[0]), __m128(v[1]));
  const __m128 t1 = _mm_unpackhi_ps(__m128(v[0]), __m128(v[1]));
  const __m128 t2 = _mm_unpacklo_ps(__m128(v[2]), __m128(v[3]));
  const __m128 t3 = _mm_unpackhi_ps(__m128(v[2]), __m128(v[3]));
  v[0] = vec<float>(_mm_movelh_ps(t0, t2));
  v[1] = vec<float>(_mm_movehl_ps(t2, t0));
  v[2] = vec<float>(_mm_movelh_ps(t1, t3));
  v[3] = vec<float>(_mm_movehl_ps(t3, t1));
}
FL_INLINE void transpose(vec<double>* v) {  // 2 x 2
  const __m128d a = __m128d(v[0]), b = __m128d(v[1]);
  v[0] = vec<double>(_mm_unpacklo_pd(a, b));
  v[1] = vec<double>(_mm_unpackhi_pd(a, b));
}
#else
constexpr bool kHaveCols2 = false;
template <class T>
FL_INLINE void transpose(vec<T>* v) {  // (unused: has_transpose<T>() is false)
  (void)v;
}
#endif

// v[l] = base[idx[l]] (for float, indices below 2^31).
template <class T>
FL_INLINE vec<T> gather_at(const T* base, ivec<T> idx) {
#if defined(__AVX2__) && !defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {
    __m256i i;
    std::memcpy(&i, &idx, sizeof i);
    return vec<T>(_mm256_i32gather_ps(base, i, 4));
  } else {
    __m256i i;
    std::memcpy(&i, &idx, sizeof i);
    return vec<T>(_mm256_i64gather_pd(base, i, 8));
  }
#else
  vec<T> v;
  for (int l = 0; l < width<T>(); ++l) v[l] = base[idx[l]];
  return v;
#endif
}

// A full group's labels: y[l] = labels[l] as lane integers; returns whether every one is
// in [0, C). (AVX2: two or one vector loads and compares instead of W of each.)
template <class T>
FL_INLINE bool load_labels(const int64_t* labels, int64_t C, ivec<T>& y) {
#if defined(__AVX2__) && !defined(__AVX512F__)
  const __m256i below = _mm256_set1_epi64x(-1), top = _mm256_set1_epi64x(C);
  auto valid = [&](__m256i v) {  // -1 where -1 < v < C
    return _mm256_and_si256(_mm256_cmpgt_epi64(v, below), _mm256_cmpgt_epi64(top, v));
  };
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(labels));
  if constexpr (sizeof(T) == 4) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(labels + 4));
    const __m256i ok = _mm256_and_si256(valid(a), valid(b));
    const __m256i low = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);  // low halves first
    const __m256i v = _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(a, low),
                                                _mm256_permutevar8x32_epi32(b, low), 0x20);
    std::memcpy(&y, &v, sizeof y);
    return _mm256_movemask_epi8(ok) == -1;
  } else {
    std::memcpy(&y, &a, sizeof y);
    return _mm256_movemask_epi8(valid(a)) == -1;
  }
#else
  bool ok = true;
  for (int l = 0; l < width<T>(); ++l) {
    y[l] = typename VecT<T>::I(labels[l]);
    ok &= uint64_t(labels[l]) < uint64_t(C);
  }
  return ok;
#endif
}

// Whether any lane of a comparison mask (0 / -1 lanes) is set.
template <class M>
FL_INLINE bool any(M m) {
#if defined(__AVX__) && !defined(__AVX512F__)
  if constexpr (sizeof(M) == 32) {
    __m256i v;
    std::memcpy(&v, &m, sizeof v);
    return !_mm256_testz_si256(v, v);
  }
#endif
#if defined(__SSE2__)
  if constexpr (sizeof(M) == 16) {
    __m128i v;
    std::memcpy(&v, &m, sizeof v);
    return _mm_movemask_epi8(v) != 0;
  }
#endif
  constexpr int n = int(sizeof(M) / sizeof(m[0]));
  auto r = m[0];
  for (int i = 1; i < n; ++i) r |= m[i];
  return r != 0;
}

template <class T>
FL_INLINE int64_t chunks(int64_t C) {
  return (C + width<T>() - 1) / width<T>();
}

FASTLOSS_NS_END
