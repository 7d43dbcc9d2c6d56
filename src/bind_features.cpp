// Bindings of the image-feature kernels: take the image stacks the Python layer prepared
// (fastloss.features), check them cheaply, release the GIL, call the kernel of the active
// instruction set.
#include <limits>
#include <string>

#include "bind_common.hpp"
#include "fastloss/bow_kernels.hpp"
#include "fastloss/features_kernels.hpp"

namespace py = pybind11;
using namespace fastloss_bind;

namespace {

// A stack of grayscale (N, H, W) or, when rgb, RGB (N, H, W, 3) images of uint8, float32
// or float64, with strides that are whole elements.
fastloss::ImageStack image_stack(const py::array& a, bool gray_ok, bool rgb_ok) {
  fastloss::ImageStack s;
  const py::dtype dt = a.dtype();
  if (dt.kind() == 'u' && dt.itemsize() == 1)
    s.type = fastloss::PixelType::u8;
  else if (float_code(a) == 4)
    s.type = fastloss::PixelType::f32;
  else if (float_code(a) == 8)
    s.type = fastloss::PixelType::f64;
  else
    fail_type("images", "uint8, float32 or float64");
  if (a.ndim() == 4 && a.shape(3) == 3 && rgb_ok)
    s.C = 3;
  else if (!(a.ndim() == 3 && gray_ok))
    throw py::value_error(gray_ok ? (rgb_ok ? "images must be (N, H, W) or (N, H, W, 3)"
                                            : "images must be (N, H, W)")
                                  : "images must be (N, H, W, 3)");
  if (s.type == fastloss::PixelType::f32) check_aligned<float>(a, "images");
  if (s.type == fastloss::PixelType::f64) check_aligned<double>(a, "images");
  const py::ssize_t it = dt.itemsize();
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.strides(d) % it != 0) throw py::value_error("images have misaligned strides");
  s.data = a.data();
  s.N = int64_t(a.shape(0));
  s.H = int64_t(a.shape(1));
  s.W = int64_t(a.shape(2));
  s.sn = int64_t(a.strides(0) / it);
  s.sh = int64_t(a.strides(1) / it);
  s.sw = int64_t(a.strides(2) / it);
  s.sc = s.C == 3 ? int64_t(a.strides(3) / it) : 0;
  return s;
}

// out: a writable (N, F) array of T with unit column stride; returns its row stride.
template <class T>
int64_t out_rows(py::array& out, int64_t N, int64_t F) {
  if (float_code(out) != int(sizeof(T))) fail_type("out", sizeof(T) == 4 ? "float32" : "float64");
  const int64_t ld = row_stride<T>(out, "out");
  if (out.shape(0) != N || out.shape(1) != F || !out.writeable())
    throw py::value_error("out must be a writable (" + std::to_string(N) + ", " +
                          std::to_string(F) + ") array");
  return ld;
}

// Runs a kernel pair over stack s into out (N, F): k32 for float32 images (float32 out),
// else k64 (float64 out), with the GIL released.
template <class P, class K32, class K64>
void run_by_type(const fastloss::ImageStack& s, const P& p, py::array& out, int64_t F,
                 int n_threads, K32 k32, K64 k64) {
  if (s.type == fastloss::PixelType::f32) {
    const int64_t ld = out_rows<float>(out, s.N, F);
    float* o = static_cast<float*>(out.mutable_data());
    GilReleased release;
    k32(s, p, o, ld, n_threads);
  } else {
    const int64_t ld = out_rows<double>(out, s.N, F);
    double* o = static_cast<double*>(out.mutable_data());
    GilReleased release;
    k64(s, p, o, ld, n_threads);
  }
}

}  // namespace

void bind_features(py::module_& m) {
  m.def(
      "hog",
      [](const py::array& images, int orientations, int cell_rows, int cell_cols,
         int block_rows, int block_cols, int norm, bool transform_sqrt, py::array& out,
         int n_threads) {
        const fastloss::ImageStack s = image_stack(images, true, false);
        if (orientations < 1 || cell_rows < 1 || cell_cols < 1 || block_rows < 1 ||
            block_cols < 1 || norm < 0 || norm > 3)
          throw py::value_error("invalid hog parameters");
        const int64_t ncr = s.H / cell_rows, ncc = s.W / cell_cols;
        if (ncr < block_rows || ncc < block_cols)
          throw py::value_error("images are too small for the cells and blocks");
        const int64_t F = (ncr - block_rows + 1) * (ncc - block_cols + 1) * block_rows *
                          block_cols * orientations;
        fastloss::HogParams p;
        p.orientations = orientations;
        p.cell_rows = cell_rows;
        p.cell_cols = cell_cols;
        p.block_rows = block_rows;
        p.block_cols = block_cols;
        p.norm = fastloss::BlockNorm(norm);
        p.transform_sqrt = transform_sqrt;
        const auto& k = FL_SELECT(fastloss::feature_kernels);
        run_by_type(s, p, out, F, n_threads, k.hog_f32, k.hog_f64);
      },
      "scikit-image's hog of a stack of grayscale images into out (private).");
  m.def(
      "cs231n_hog",
      [](const py::array& images, py::array& out, int n_threads) {
        const fastloss::ImageStack s = image_stack(images, true, true);
        const int64_t F = (s.H / 8) * (s.W / 8) * 9;
        const int64_t ld = out_rows<double>(out, s.N, F);
        double* o = static_cast<double*>(out.mutable_data());
        const auto& k = FL_SELECT(fastloss::feature_kernels);
        GilReleased release;
        k.cs231n_hog(s, o, ld, n_threads);
      },
      "CS231n's hog_feature of a stack of images into out (private).");
  m.def(
      "hue_histogram",
      [](const py::array& images, const py::array& edges, double xmax, bool normalized,
         bool single, py::array& out, int n_threads) -> py::object {
        const fastloss::ImageStack s = image_stack(images, false, true);
        if (float_code(edges) != 8 || edges.ndim() != 1 || edges.shape(0) < 2 ||
            !(edges.flags() & py::array::c_style))
          throw py::value_error("edges must be a contiguous float64 vector of nbin + 1 edges");
        if (edges.shape(0) - 1 > py::ssize_t(std::numeric_limits<int>::max()))
          throw py::value_error("nbin is too large");
        fastloss::HueParams p;
        p.edges = static_cast<const double*>(edges.data());
        p.nbin = int(edges.shape(0) - 1);
        p.xmax = xmax;
        p.normalized = normalized;
        p.single = single;
        const int64_t ld = out_rows<double>(out, s.N, p.nbin);
        double* o = static_cast<double*>(out.mutable_data());
        const auto& k = FL_SELECT(fastloss::feature_kernels);
        fastloss::PixelError e;
        {
          GilReleased release;
          e = k.hue_histogram(s, p, o, ld, n_threads);
        }
        if (e.image < 0) return py::none();
        return py::make_tuple(e.image, e.pixel);
      },
      "CS231n's color_histogram_hsv of a stack of RGB images into out (private); returns "
      "(image, pixel) of the first value outside [0, xmax], or None.");
  m.def(
      "bow_encode",
      [](const py::array& images, int patch, int stride, const py::array& mean,
         py::object whitening, const py::array& codebook, double contrast_eps, bool hard,
         bool quadrants, py::array& out, int n_threads) {
        const fastloss::ImageStack s = image_stack(images, true, true);
        auto matrix = [](const py::array& a, const char* name, py::ssize_t rows,
                         py::ssize_t cols) {
          if (float_code(a) != 8 || !(a.flags() & py::array::c_style) ||
              a.ndim() != (rows < 0 ? 1 : 2) || (rows >= 0 && a.shape(0) != rows) ||
              a.shape(a.ndim() - 1) != cols)
            throw py::value_error(std::string(name) + " must be a contiguous float64 array "
                                  "of the model's shape");
          return static_cast<const double*>(a.data());
        };
        if (patch < 1 || stride < 1 || patch > s.H || patch > s.W || !(contrast_eps > 0))
          throw py::value_error("invalid bag-of-words parameters");
        fastloss::BowParams p;
        p.patch = patch;
        p.stride = stride;
        p.D = int64_t(patch) * patch * s.C;
        if (codebook.ndim() != 2 || codebook.shape(0) < 1)
          throw py::value_error("codebook must be (n_words, patch_dim)");
        p.K = int64_t(codebook.shape(0));
        p.codebook = matrix(codebook, "codebook", py::ssize_t(p.K), py::ssize_t(p.D));
        p.mean = matrix(mean, "mean", -1, py::ssize_t(p.D));
        if (!whitening.is_none())
          p.whitening = matrix(whitening.cast<py::array>(), "whitening", py::ssize_t(p.D),
                               py::ssize_t(p.D));
        p.contrast_eps = contrast_eps;
        p.hard = hard;
        p.quadrants = quadrants;
        const int64_t F = (quadrants ? 4 : 1) * p.K;
        const auto& k = FL_SELECT(fastloss::bow_kernels);
        run_by_type(s, p, out, F, n_threads, k.encode_f32, k.encode_f64);
      },
      "Bag-of-visual-words features of a stack of images into out (private).");
}
