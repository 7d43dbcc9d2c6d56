// Instantiates the score-level kernels for one instruction-set level (FASTLOSS_ISA); CMake
// compiles this file once per level with that level's flags. No math here. The block
// functions of each class count are compiled in src/isa_scores_*.cpp.
#include "fastloss/kernels.hpp"
#include "fastloss/score.hpp"

namespace fastloss {
namespace FASTLOSS_ISA {
FL_SCORE_CT_EXTERN
FL_SCORE_BLOCK_INSTANCES(template)
}  // namespace FASTLOSS_ISA

const LossKernels FL_ISA_SYMBOL(loss_kernels) = {
    &FASTLOSS_ISA::score_loss<float>,   &FASTLOSS_ISA::score_loss<double>,
    &FASTLOSS_ISA::softmax_rows<float>, &FASTLOSS_ISA::softmax_rows<double>,
    &FASTLOSS_ISA::max_threads,
};

}  // namespace fastloss
