// Instantiates the fused SGD kernel for one instruction-set level (FASTLOSS_ISA); CMake
// compiles this file once per level with that level's flags. No math here.
#include "fastloss/optim.hpp"
#include "fastloss/optim_kernels.hpp"

namespace fastloss {

const OptimKernels FL_ISA_SYMBOL(optim_kernels) = {
    &FASTLOSS_ISA::sgd_update<float>,
    &FASTLOSS_ISA::sgd_update<double>,
};

}  // namespace fastloss
