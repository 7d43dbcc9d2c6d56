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

// Benchmarks only: while the calling thread's pointer is set, linear_loss adds the seconds
// it spends in each phase of the fused path to [0..5]: pack W, forward (the rows read),
// loss rows, backward, combine, and the wall time of the chunks (the per-chunk phases
// are summed over the chunks, whichever thread ran them). One pointer per thread, shared by the instruction-set levels.
inline double*& linear_phase_seconds() {
  thread_local double* p = nullptr;
  return p;
}

}  // namespace fastloss
