// Tables of the model-level kernels, one per instruction-set level (see dispatch.hpp).
#pragma once

#include "dispatch.hpp"
#include "types.hpp"

namespace fastloss {

struct LinearKernels {
  LinearResult (*linear_loss_f32)(const LinearArgs<float>&);
  LinearResult (*linear_loss_f64)(const LinearArgs<double>&);
};
FL_DECLARE_TABLE(LinearKernels, linear_kernels)

}  // namespace fastloss
