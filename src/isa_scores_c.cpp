// The score-level block functions of short rows with the class count at run time (CT =
// -1, up to 16 classes) and of long rows (CT = 0), every loss, for one instruction-set
// level (see isa_scores_a.cpp). No math here.
#include "fastloss/score.hpp"

namespace fastloss {
namespace FASTLOSS_ISA {
FL_SCORE_CT_INSTANCE(template, -1)
FL_SCORE_CT_INSTANCE(template, 0)
}  // namespace FASTLOSS_ISA
}  // namespace fastloss
