// Instantiates the model-level kernels for one instruction-set level (FASTLOSS_ISA); CMake
// compiles this file once per level with that level's flags. No math here.
#include "fastloss/linear.hpp"
#include "fastloss/linear_kernels.hpp"

namespace fastloss {
namespace FASTLOSS_ISA {
FL_SCORE_CT_EXTERN                          // compiled in isa_scores_*.cpp
FL_SCORE_BLOCK_INSTANCES(extern template)  // compiled in isa_losses.cpp
}  // namespace FASTLOSS_ISA

const LinearKernels FL_ISA_SYMBOL(linear_kernels) = {
    &FASTLOSS_ISA::linear_loss<float>,
    &FASTLOSS_ISA::linear_loss<double>,
};

}  // namespace fastloss
