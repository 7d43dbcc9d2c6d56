// Tables of the score-level kernels, one per instruction-set level (see dispatch.hpp).
#pragma once

#include "dispatch.hpp"
#include "types.hpp"

namespace fastloss {

struct LossKernels {
  ScoreLossResult (*score_loss_f32)(const ScoreLossArgs<float>&);
  ScoreLossResult (*score_loss_f64)(const ScoreLossArgs<double>&);
  void (*softmax_f32)(const float*, int64_t, int64_t, int64_t, float*, int64_t, bool, int);
  void (*softmax_f64)(const double*, int64_t, int64_t, int64_t, double*, int64_t, bool, int);
  int (*max_threads)();
};
FL_DECLARE_TABLE(LossKernels, loss_kernels)

}  // namespace fastloss
