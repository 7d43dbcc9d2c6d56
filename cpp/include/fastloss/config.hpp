// Compile-time configuration shared by every kernel header.
//
// Every kernel lives in namespace fastloss::FASTLOSS_ISA, so that the same header compiled
// for several instruction sets (src/isa_kernels.cpp, once per level) gives distinct symbols
// and the linker never mixes an AVX2 copy into the baseline path.
#pragma once

#include <cstddef>
#include <cstdint>

#ifndef FASTLOSS_ISA
#define FASTLOSS_ISA baseline
#endif

#define FASTLOSS_NS_BEGIN \
  namespace fastloss {    \
  namespace FASTLOSS_ISA {
#define FASTLOSS_NS_END \
  }                     \
  }

#define FL_RESTRICT __restrict__
#define FL_INLINE inline __attribute__((always_inline))
// (a lambda's: after the parameter list)
#define FL_LAMBDA_INLINE __attribute__((always_inline))

#define FL_PRAGMA(x) _Pragma(#x)
#if defined(_OPENMP)
#define FL_SIMD FL_PRAGMA(omp simd)
#define FL_SIMD_REDUCE(...) FL_PRAGMA(omp simd reduction(__VA_ARGS__))
#define FL_SIMD_REDUCE2(r1, r2) FL_PRAGMA(omp simd reduction(r1) reduction(r2))
#else
#define FL_SIMD
#define FL_SIMD_REDUCE(...)
#define FL_SIMD_REDUCE2(r1, r2)
#endif
