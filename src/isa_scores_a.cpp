// The score-level block functions of the class counts 2 to 5 for one instruction-set
// level (FASTLOSS_ISA), when the level compiles fixed class counts (driver.hpp). The
// counts are spread over src/isa_scores_*.cpp so that the build compiles them side by
// side. No math here.
#include "fastloss/score.hpp"

namespace fastloss {
namespace FASTLOSS_ISA {
#if FL_FIXED_CLASS_COUNTS
FL_SCORE_CT_INSTANCE(template, 2)
FL_SCORE_CT_INSTANCE(template, 3)
FL_SCORE_CT_INSTANCE(template, 4)
FL_SCORE_CT_INSTANCE(template, 5)
#endif
}  // namespace FASTLOSS_ISA
}  // namespace fastloss
