// Tables of the image-feature kernels, one per instruction-set level (see dispatch.hpp), and
// the plain records the bindings pass to them (pointers, sizes, strides; no Python types).
#pragma once

#include <cstdint>

#include "dispatch.hpp"

namespace fastloss {

enum class PixelType : int { u8 = 0, f32 = 1, f64 = 2 };
enum class BlockNorm : int { l1 = 0, l1_sqrt = 1, l2 = 2, l2_hys = 3 };

// A stack of N images of H x W pixels with C channels (1: grayscale, 3: RGB), any strides
// (in elements, possibly negative).
struct ImageStack {
  const void* data = nullptr;
  PixelType type = PixelType::f64;
  int64_t N = 0, H = 0, W = 0, C = 1;
  int64_t sn = 0, sh = 0, sw = 0, sc = 0;
};

// scikit-image's hog arguments.
struct HogParams {
  int orientations = 9;
  int cell_rows = 8, cell_cols = 8;
  int block_rows = 3, block_cols = 3;
  BlockNorm norm = BlockNorm::l2_hys;
  bool transform_sqrt = false;
};

// CS231n's hue histogram: edges (nbin + 1, increasing) as np.linspace made them; the hue
// is computed in float32 when `single` (a float32 image), else in float64.
struct HueParams {
  const double* edges = nullptr;
  int nbin = 10;
  double xmax = 255.0;
  bool normalized = true;
  bool single = false;
};

// The first pixel that matplotlib's rgb_to_hsv rejects (a value outside [0, xmax]), as an
// image index and a pixel index (row * W + col); image == -1 when none.
struct PixelError {
  int64_t image = -1;
  int64_t pixel = -1;
};

// Every kernel writes one feature row per image into out (row stride ldo elements).
struct FeatureKernels {
  // scikit-image's hog of grayscale images: float32 images (f32 out) ...
  void (*hog_f32)(const ImageStack&, const HogParams&, float* out, int64_t ldo, int n_threads);
  // ... and uint8 or float64 images (f64 out).
  void (*hog_f64)(const ImageStack&, const HogParams&, double* out, int64_t ldo, int n_threads);
  // CS231n's hog_feature of grayscale or RGB images.
  void (*cs231n_hog)(const ImageStack&, double* out, int64_t ldo, int n_threads);
  // CS231n's color_histogram_hsv of RGB images.
  PixelError (*hue_histogram)(const ImageStack&, const HueParams&, double* out, int64_t ldo,
                              int n_threads);
};
FL_DECLARE_TABLE(FeatureKernels, feature_kernels)

}  // namespace fastloss
