// Table of the bag-of-visual-words encoder, one per instruction-set level (see
// dispatch.hpp), and its plain argument record (pointers and sizes; no Python types).
#pragma once

#include <cstdint>

#include "dispatch.hpp"
#include "features_kernels.hpp"

namespace fastloss {

// A fitted BagOfWords (fastloss.features): patches of patch x patch pixels every `stride`
// pixels, D = patch * patch * C values each (row, column, channel), normalised with
// contrast_eps, centred by mean (D,), whitened by whitening (D x D, row-major; nullptr: no
// whitening), compared with the K codewords (K x D, row-major, whitened space). The
// encodings ("triangle" or, when hard, one-hot of the nearest) are summed over the
// patches of each quadrant (4 blocks of K) or of the whole image.
struct BowParams {
  int patch = 3, stride = 1;
  int64_t D = 0, K = 0;
  double contrast_eps = 10.0;
  const double* mean = nullptr;
  const double* whitening = nullptr;
  const double* codebook = nullptr;
  bool hard = false;
  bool quadrants = true;
};

struct BowKernels {
  // float32 images (f32 out), and uint8 or float64 images (f64 out); out rows of
  // (quadrants ? 4 : 1) * K values, row stride ldo elements.
  void (*encode_f32)(const ImageStack&, const BowParams&, float* out, int64_t ldo,
                     int n_threads);
  void (*encode_f64)(const ImageStack&, const BowParams&, double* out, int64_t ldo,
                     int n_threads);
};
FL_DECLARE_TABLE(BowKernels, bow_kernels)

}  // namespace fastloss
