// The score-level block functions of the class counts 6, 7, 8 and 10 for one
// instruction-set level (see isa_scores_a.cpp). No math here.
#include "fastloss/score.hpp"

namespace fastloss {
namespace FASTLOSS_ISA {
#if FL_FIXED_CLASS_COUNTS
FL_SCORE_CT_INSTANCE(template, 6)
FL_SCORE_CT_INSTANCE(template, 7)
FL_SCORE_CT_INSTANCE(template, 8)
FL_SCORE_CT_INSTANCE(template, 10)
#endif
}  // namespace FASTLOSS_ISA
}  // namespace fastloss
