// Instantiates the bag-of-visual-words encoder for one instruction-set level (FASTLOSS_ISA);
// CMake compiles this file once per level with that level's flags. No math here.
#include "fastloss/bow.hpp"
#include "fastloss/bow_kernels.hpp"

namespace fastloss {

const BowKernels FL_ISA_SYMBOL(bow_kernels) = {
    &FASTLOSS_ISA::bow::encode_f32,
    &FASTLOSS_ISA::bow::encode_f64,
};

}  // namespace fastloss
