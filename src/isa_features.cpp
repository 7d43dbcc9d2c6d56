// Instantiates the image-feature kernels for one instruction-set level (FASTLOSS_ISA); CMake
// compiles this file once per level with that level's flags. No math here.
#include "fastloss/features.hpp"
#include "fastloss/features_kernels.hpp"

namespace fastloss {

const FeatureKernels FL_ISA_SYMBOL(feature_kernels) = {
    &FASTLOSS_ISA::feat::hog_f32,
    &FASTLOSS_ISA::feat::hog_f64,
    &FASTLOSS_ISA::feat::cs231n_hog,
    &FASTLOSS_ISA::feat::hue_histogram,
};

}  // namespace fastloss
