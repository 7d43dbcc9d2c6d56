// Runtime choice among the copies of the kernels compiled for several instruction sets.
//
// A kernel area declares a table of function pointers (a plain struct) and one instance
// per level with FL_DECLARE_TABLE; src/isa_<area>.cpp, compiled once per level, defines
// FL_ISA_SYMBOL(name) from the templates of that level's namespace; the bindings call
// through FL_SELECT(name), which returns the table of the level chosen at import.
#pragma once

#include <type_traits>

namespace fastloss {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

// The level in use: the best the CPU supports among those compiled, or lower when the
// environment variable FASTLOSS_CPU asks for a lower one. Decided once.
Isa active_isa();
// The best level the CPU supports among those compiled, whatever FASTLOSS_CPU says.
Isa best_isa();
const char* isa_name(Isa isa);
// A note about FASTLOSS_CPU when it could not be honoured (empty when none).
const char* isa_note();

template <class Table>
const Table& select_table(const Table& baseline, const Table* avx2, const Table* avx512) {
  switch (active_isa()) {
    case Isa::avx512:
      if (avx512) return *avx512;
      [[fallthrough]];
    case Isa::avx2:
      if (avx2) return *avx2;
      [[fallthrough]];
    default:
      return baseline;
  }
}

}  // namespace fastloss

#define FL_CAT2_(a, b) a##_##b
#define FL_CAT_(a, b) FL_CAT2_(a, b)
#define FL_ISA_SYMBOL(name) FL_CAT_(name, FASTLOSS_ISA)

#define FL_DECLARE_TABLE(Type, name) \
  extern const Type name##_baseline; \
  extern const Type name##_avx2;     \
  extern const Type name##_avx512;

#if defined(FASTLOSS_HAVE_AVX2)
#define FL_IF_AVX2_(x) (&x)
#else
#define FL_IF_AVX2_(x) nullptr
#endif
#if defined(FASTLOSS_HAVE_AVX512)
#define FL_IF_AVX512_(x) (&x)
#else
#define FL_IF_AVX512_(x) nullptr
#endif

#define FL_SELECT(name)                                                                   \
  ::fastloss::select_table<std::remove_const_t<decltype(name##_baseline)>>(               \
      name##_baseline, FL_IF_AVX2_(name##_avx2), FL_IF_AVX512_(name##_avx512))
