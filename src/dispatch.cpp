// Picks the instruction-set level once, from the CPU's features and FASTLOSS_CPU.
#include "fastloss/dispatch.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

namespace fastloss {
namespace {

Isa detect_best() {
  Isa best = Isa::baseline;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
#if defined(FASTLOSS_HAVE_AVX2)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
#endif
#if defined(FASTLOSS_HAVE_AVX512)
  // (AVX-512 implies the AVX2 level's instructions: a build without that level, such as
  // LEVELS="baseline;avx512", still runs its AVX-512 kernels)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    best = Isa::avx512;
#endif
#endif
  return best;
}

std::string& note_storage() {
  static std::string note;
  return note;
}

Isa detect_active() {
  const Isa best = best_isa();
  const char* env = std::getenv("FASTLOSS_CPU");
  if (!env || !*env) return best;
  Isa want;
  if (!std::strcmp(env, "baseline"))
    want = Isa::baseline;
  else if (!std::strcmp(env, "avx2"))
    want = Isa::avx2;
  else if (!std::strcmp(env, "avx512"))
    want = Isa::avx512;
  else {
    note_storage() = std::string("FASTLOSS_CPU=") + env +
                     " is not one of baseline, avx2, avx512; using " + isa_name(best);
    return best;
  }
  bool compiled = true;  // (a level left out of the build, e.g. LEVELS="baseline;avx512")
#if !defined(FASTLOSS_HAVE_AVX2)
  if (want == Isa::avx2) compiled = false;
#endif
#if !defined(FASTLOSS_HAVE_AVX512)
  if (want == Isa::avx512) compiled = false;
#endif
  if (!compiled) {
    note_storage() = std::string("FASTLOSS_CPU=") + env + " is not compiled in; using " +
                     isa_name(best);
    return best;
  }
  if (int(want) > int(best)) {
    note_storage() = std::string("FASTLOSS_CPU=") + env + " is not supported here; using " +
                     isa_name(best);
    return best;
  }
  return want;
}

}  // namespace

Isa best_isa() {
  static const Isa best = detect_best();
  return best;
}

Isa active_isa() {
  static const Isa active = detect_active();
  return active;
}

const char* isa_note() {
  active_isa();
  return note_storage().c_str();
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    default:
      return "baseline";
  }
}

}  // namespace fastloss
