// Portable SIMD vectors (GCC/Clang vector extensions) whose width follows the instruction
// set the translation unit is compiled for: 16 bytes baseline, 32 with AVX2, 64 with
// AVX-512. The per-row math of the losses is written once with these.
#pragma once

#include <cstring>
#include <limits>
#include <type_traits>

#include "config.hpp"

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

template <class T>
FL_INLINE vec<T> splat(T x) {
  return vec<T>{} + x;
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

template <class T>
FL_INLINE int64_t chunks(int64_t C) {
  return (C + width<T>() - 1) / width<T>();
}

FASTLOSS_NS_END
