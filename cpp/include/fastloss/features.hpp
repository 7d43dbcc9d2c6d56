// Image features: scikit-image's HOG, CS231n's hog_feature and CS231n's hue histogram
// (matplotlib's rgb_to_hsv + np.histogram), one image at a time, batched over a stack.
//
// Exactness. A HOG orientation bin is a comparison of a rounded angle with an edge, so one
// rounding difference moves a whole gradient magnitude to another bin. The kernels decide
// a bin from the signs of cross products of the gradient with the edges' directions, which
// agrees with the exact angle except within 1e-9 rad of an edge (NumPy's atan2, multiply
// and remainder are off by ~1e-15). There, and for zero, huge or non-finite gradients, they
// evaluate NumPy's own formula in NumPy's order, so the bins are NumPy's bins.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "config.hpp"
#include "driver.hpp"
#include "features_kernels.hpp"

FASTLOSS_NS_BEGIN

namespace feat {

constexpr double kPi = 3.141592653589793;  // np.pi
constexpr double kDeg = 180.0 / kPi;       // NumPy's (180 / np.pi)
constexpr double kEdgeTol = 1e-9;          // radians: nearer an edge, use NumPy's formula
// Squared gradient norms outside this range (zero, subnormal, overflowing, NaN) also go
// through NumPy's formula.
constexpr double kMinNorm2 = 1e-280, kMaxNorm2 = 1e280;
// A block of images holds about this many pixels.
constexpr int64_t kBlockPixels = 8192;

// NumPy's float remainder a % b: the sign of b, +0 for an exact zero.
template <class T>
FL_INLINE T np_remainder(T a, T b) {
  if (a > T(0) && a < b) return a;
  T m = std::fmod(a, b);
  if (m != T(0)) {
    if ((b < T(0)) != (m < T(0))) m += b;
  } else {
    m = std::copysign(T(0), b);
  }
  return m;
}

// x as rounded: keeps a product out of a fused multiply-add with what follows, since NumPy
// rounds the product first and GCC contracts a * b + c on FMA targets.
FL_INLINE double rounded(double x) {
#if defined(__GNUC__) && defined(__x86_64__)
  __asm__("" : "+x"(x));
#elif defined(__GNUC__) && defined(__aarch64__)
  __asm__("" : "+w"(x));
#else
  volatile double v = x;
  x = v;
#endif
  return x;
}

template <class In>
struct ImageView {
  const In* p;
  int64_t sh, sw, sc;
  FL_INLINE In at(int64_t r, int64_t c, int64_t ch = 0) const {
    return p[r * sh + c * sw + ch * sc];
  }
};

template <class In>
FL_INLINE ImageView<In> image_at(const ImageStack& s, int64_t n) {
  return ImageView<In>{static_cast<const In*>(s.data) + n * s.sn, s.sh, s.sw, s.sc};
}

// Directions of the interior edges of orientation bins, for angles in [0, 180) degrees.
struct EdgeDirections {
  std::vector<double> c, s;
  explicit EdgeDirections(const std::vector<double>& degrees) {
    for (double d : degrees) {
      c.push_back(std::cos(d * (kPi / 180.0)));
      s.push_back(std::sin(d * (kPi / 180.0)));
    }
  }
};

// Bin codes: [0, n) a bin, -1 no bin, n every bin (a NaN angle, as scikit-image counts it),
// and, from classify_angles only, -2 for a vector to resolve with NumPy's formula.
constexpr int32_t kNoBin = -1;
constexpr int32_t kUnsure = -2;

// Scratch of one image's gradient vectors (X along columns, Y along rows), magnitudes and
// bins; gx keeps CS231n's x gradient before its + 1e-15.
struct AngleScratch {
  std::vector<double> X, Y, gx, mag;
  std::vector<int32_t> bin;
  void resize(int64_t P) {
    for (auto* v : {&X, &Y, &gx, &mag}) v->resize(size_t(P));
    bin.resize(size_t(P));
  }
};

// bin[p] for the P vectors (X, Y) of s: the number of edges at or below the angle
// atan2(Y, X), folded into [0, 180) degrees when `fold` (else kNoBin for y < 0), or kUnsure
// where that count is not certain (near an edge or the 0/180 line, or a squared norm
// outside [kMinNorm2, kMaxNorm2]). Works in chunks that stay in L1.
inline void classify_angles(AngleScratch& s, int64_t P, bool fold, const EdgeDirections& e) {
  constexpr int64_t kChunk = 128;
  double x[kChunk], y[kChunk], tol[kChunk], code[kChunk], unsure[kChunk];
  const size_t ne = e.c.size();
  for (int64_t p0 = 0; p0 < P; p0 += kChunk) {
    const int64_t len = std::min(kChunk, P - p0);
    const double* FL_RESTRICT X = s.X.data() + p0;
    const double* FL_RESTRICT Y = s.Y.data() + p0;
    FL_SIMD
    for (int64_t p = 0; p < len; ++p) {
      const double f = (fold && Y[p] < 0.0) ? -1.0 : 1.0;
      const double xx = X[p] * f, yy = Y[p] * f;
      const double m2 = xx * xx + yy * yy;
      const double t = kEdgeTol * std::sqrt(m2);
      x[p] = xx;
      y[p] = yy;
      tol[p] = t;
      code[p] = yy < 0.0 ? double(kNoBin) : 0.0;
      unsure[p] = (m2 >= kMinNorm2 && m2 <= kMaxNorm2 && std::fabs(yy) > t) ? 0.0 : 1.0;
    }
    for (size_t i = 0; i < ne; ++i) {
      const double ci = e.c[i], si = e.s[i];
      FL_SIMD
      for (int64_t p = 0; p < len; ++p) {
        const double cross = y[p] * ci - x[p] * si;  // |v| sin(angle - edge)
        code[p] += (cross >= 0.0 && y[p] >= 0.0) ? 1.0 : 0.0;
        unsure[p] = std::fabs(cross) <= tol[p] ? 1.0 : unsure[p];
      }
    }
    int32_t* FL_RESTRICT bin = s.bin.data() + p0;
    FL_SIMD
    for (int64_t p = 0; p < len; ++p) bin[p] = unsure[p] != 0.0 ? kUnsure : int32_t(code[p]);
  }
}

// Calls f(cell, q) for every pixel q = r * Wc + c of the ncr x ncc cells of cr x cc pixels
// (cell = cell row * ncc + cell col): each cell's pixels in row-major order, the cells
// interleaved (pixel (i, j) of every cell, then pixel (i, j + 1) of every cell, ...), so
// that consecutive updates of one cell's histogram, which wait on each other, are apart.
template <class F>
FL_INLINE void for_cell_pixels(int64_t ncr, int64_t ncc, int64_t cr, int64_t cc, int64_t Wc,
                               F&& f) {
  for (int64_t i = 0; i < cr; ++i)
    for (int64_t j = 0; j < cc; ++j)
      for (int64_t yi = 0; yi < ncr; ++yi) {
        const int64_t q0 = (yi * cr + i) * Wc + j;
        for (int64_t xi = 0; xi < ncc; ++xi) f(yi * ncc + xi, q0 + xi * cc);
      }
}

// ---------------------------------------------------------------- scikit-image's hog

// scikit-image's _hoghistogram: orientation = rad2deg(arctan2(g_row, g_col)) % 180, bin i
// when not (orientation >= start_i or orientation < end_i), start_i = (180. / n) * (i + 1)
// and end_i = (180. / n) * i in float64.
struct SkimageBins {
  int n;
  std::vector<double> edge;  // n + 1 edges, degrees
  EdgeDirections dirs;       // the n - 1 interior edges
  int32_t sign_only[8];      // bins when g_row or g_col is zero: atan2 depends on signs only

  static std::vector<double> edges_of(int n) {
    std::vector<double> e(size_t(n) + 1);
    const double per_180 = 180.0 / n;
    for (int i = 0; i <= n; ++i) e[size_t(i)] = per_180 * i;
    return e;
  }
  explicit SkimageBins(int n_)
      : n(n_), edge(edges_of(n_)), dirs(std::vector<double>(edge.begin() + 1, edge.end() - 1)) {
    for (int k = 0; k < 8; ++k) {
      const double sr = (k & 2) ? -1.0 : 1.0, sc = (k & 1) ? -1.0 : 1.0;
      sign_only[k] = (k & 4) ? exact(sr * 0.0, sc) : exact(sr, sc * 0.0);
    }
  }
  int32_t exact(double gr, double gc) const {
    const double ori = np_remainder(std::atan2(gr, gc) * kDeg, 180.0);
    if (std::isnan(ori)) return int32_t(n);
    for (int i = 0; i < n; ++i)
      if (!(ori >= edge[size_t(i) + 1] || ori < edge[size_t(i)])) return int32_t(i);
    return kNoBin;
  }
  // The bin of an unsure vector (X = g_col, Y = g_row).
  int32_t resolve(double gr, double gc) const {
    if (gr == 0.0 && gc == 0.0) return kNoBin;  // magnitude 0: adds nothing
    if ((gr == 0.0 || gc == 0.0) && std::isfinite(gr) && std::isfinite(gc))
      return sign_only[(gr == 0.0 ? 4 : 0) | (std::signbit(gr) ? 2 : 0) |
                       (std::signbit(gc) ? 1 : 0)];
    return exact(gr, gc);
  }
};

template <class G>
struct HogScratch {
  std::vector<G> img;
  AngleScratch a;
  std::vector<float> hist;
  std::vector<double> block;
};

// Differences of a gray image over the cell area Hc x Wc, computed in the image's type G
// as NumPy does: central (scikit-image's g_col, g_row: zero on the border columns/rows) or
// forward (CS231n's np.diff: zero in the last column/row).
template <class G>
void gradients(const G* img, int64_t H, int64_t W, int64_t Hc, int64_t Wc, bool central,
               double* FL_RESTRICT gx, double* FL_RESTRICT gy) {
  const int64_t back = central ? 1 : 0;
  for (int64_t r = 0; r < Hc; ++r) {
    const G* row = img + r * W;
    double* x = gx + r * Wc;
    double* y = gy + r * Wc;
    const bool rows_ok = r >= back && r + 1 < H;
    for (int64_t c = 0; c < Wc; ++c) {
      x[c] = (c >= back && c + 1 < W) ? double(G(row[c + 1] - row[c - back])) : 0.0;
      y[c] = rows_ok ? double(G(row[c + W] - row[c - back * W])) : 0.0;
    }
  }
}

template <class T>
FL_INLINE void normalize_block(double* v, int64_t m, BlockNorm norm, T* out) {
  constexpr double eps = 1e-5;
  if (norm == BlockNorm::l1 || norm == BlockNorm::l1_sqrt) {
    double s = 0.0;
    for (int64_t k = 0; k < m; ++k) s += std::fabs(v[k]);
    const double d = s + eps;
    if (norm == BlockNorm::l1)
      for (int64_t k = 0; k < m; ++k) out[k] = T(v[k] / d);
    else
      for (int64_t k = 0; k < m; ++k) out[k] = T(std::sqrt(v[k] / d));
    return;
  }
  double s = 0.0;
  for (int64_t k = 0; k < m; ++k) s += v[k] * v[k];
  const double d = std::sqrt(s + eps * eps);
  if (norm == BlockNorm::l2) {
    for (int64_t k = 0; k < m; ++k) out[k] = T(v[k] / d);
    return;
  }
  s = 0.0;
  for (int64_t k = 0; k < m; ++k) {
    v[k] = std::min(v[k] / d, 0.2);
    s += v[k] * v[k];
  }
  const double d2 = std::sqrt(s + eps * eps);
  for (int64_t k = 0; k < m; ++k) out[k] = T(v[k] / d2);
}

// One image: In the pixel type, G the gradient type (float for float32 images, as NumPy
// differences them), T the output type.
template <class In, class G, class T>
void hog_image(const ImageView<In>& im, int64_t H, int64_t W, const HogParams& p,
               const SkimageBins& bins, HogScratch<G>& s, T* out) {
  const int64_t n = p.orientations, cr = p.cell_rows, cc = p.cell_cols;
  const int64_t ncr = H / cr, ncc = W / cc, Hc = ncr * cr, Wc = ncc * cc;
  const int64_t br = p.block_rows, bc = p.block_cols;
  s.img.resize(size_t(H * W));
  for (int64_t r = 0; r < H; ++r)
    for (int64_t c = 0; c < W; ++c) {
      G v = G(im.at(r, c));
      s.img[size_t(r * W + c)] = p.transform_sqrt ? G(std::sqrt(v)) : v;
    }
  const int64_t P = Hc * Wc;
  AngleScratch& a = s.a;
  a.resize(P);
  gradients(s.img.data(), H, W, Hc, Wc, true, a.X.data(), a.Y.data());
  {
    const double* FL_RESTRICT X = a.X.data();
    const double* FL_RESTRICT Y = a.Y.data();
    double* FL_RESTRICT mag = a.mag.data();
    FL_SIMD
    for (int64_t q = 0; q < P; ++q) mag[q] = std::sqrt(X[q] * X[q] + Y[q] * Y[q]);
  }
  classify_angles(a, P, true, bins.dirs);
  for (int64_t q = 0; q < P; ++q) {
    const size_t u = size_t(q);
    if (a.bin[u] == kUnsure) {
      a.bin[u] = bins.resolve(a.Y[u], a.X[u]);
      if (a.bin[u] != kNoBin) a.mag[u] = std::hypot(a.X[u], a.Y[u]);
    }
  }
  // Cell histograms, summed in a C float in row-major order within the cell and divided by
  // the cell's area in float, as scikit-image's cell_hog does.
  s.hist.assign(size_t(ncr * ncc * n), 0.0f);
  for_cell_pixels(ncr, ncc, cr, cc, Wc, [&](int64_t cell, int64_t q) {
    const int32_t b = a.bin[size_t(q)];
    if (b == kNoBin) return;
    const double m = a.mag[size_t(q)];
    float* h = s.hist.data() + cell * n;
    if (b < n) {
      h[b] = float(double(h[b]) + m);
    } else {
      for (int64_t o = 0; o < n; ++o) h[o] = float(double(h[o]) + m);
    }
  });
  const float area = float(cr * cc);
  for (float& h : s.hist) h = h / area;
  // Blocks: (block row, block col, cell row, cell col, orientation), C order.
  const int64_t nbr = ncr - br + 1, nbc = ncc - bc + 1, m = br * bc * n;
  s.block.resize(size_t(m));
  for (int64_t rb = 0; rb < nbr; ++rb)
    for (int64_t cb = 0; cb < nbc; ++cb) {
      double* v = s.block.data();
      for (int64_t i = 0; i < br; ++i)
        for (int64_t j = 0; j < bc; ++j)
          for (int64_t o = 0; o < n; ++o)
            *v++ = double(s.hist[size_t(((rb + i) * ncc + cb + j) * n + o)]);
      normalize_block(s.block.data(), m, p.norm, out + (rb * nbc + cb) * m);
    }
}

template <class In, class G, class T>
void hog_stack_typed(const ImageStack& st, const HogParams& p, T* out, int64_t ldo,
                     int n_threads) {
  const SkimageBins bins(p.orientations);
  const int64_t rows = std::max<int64_t>(1, kBlockPixels / std::max<int64_t>(st.H * st.W, 1));
  for_row_blocks(st.N, rows, st.H * st.W, n_threads, [&](int64_t, int64_t i0, int64_t i1) {
    HogScratch<G> s;
    for (int64_t i = i0; i < i1; ++i)
      hog_image<In, G, T>(image_at<In>(st, i), st.H, st.W, p, bins, s, out + i * ldo);
  });
}

inline void hog_f32(const ImageStack& st, const HogParams& p, float* out, int64_t ldo,
                    int n_threads) {
  hog_stack_typed<float, float, float>(st, p, out, ldo, n_threads);
}

inline void hog_f64(const ImageStack& st, const HogParams& p, double* out, int64_t ldo,
                    int n_threads) {
  if (st.type == PixelType::u8)
    hog_stack_typed<uint8_t, double, double>(st, p, out, ldo, n_threads);
  else
    hog_stack_typed<double, double, double>(st, p, out, ldo, n_threads);
}

// ---------------------------------------------------------------- CS231n's hog_feature

// CS231n: grad_ori = arctan2(gy, gx + 1e-15) * (180 / pi) + 90, bin i when
// 20 i <= grad_ori < 20 (i + 1) and grad_ori > 0 (9 bins); 8 x 8 cells.
constexpr int kCsOrient = 9, kCsCell = 8;

struct Cs231nBins {
  EdgeDirections dirs;  // the interior edges 20, 40, ..., 160 (of grad_ori)
  static std::vector<double> interior() {
    std::vector<double> e;
    for (int i = 1; i < kCsOrient; ++i) e.push_back(180.0 / kCsOrient * i);
    return e;
  }
  Cs231nBins() : dirs(interior()) {}
  static int32_t exact(double gx, double gy) {
    const double ori = rounded(std::atan2(gy, gx + 1e-15) * kDeg) + 90.0;
    for (int i = 0; i < kCsOrient; ++i)
      if (ori < 180.0 / kCsOrient * (i + 1) && ori >= 180.0 / kCsOrient * i && ori > 0.0)
        return int32_t(i);
    return kNoBin;
  }
};

struct Cs231nScratch {
  std::vector<double> prod, gray;
  std::vector<float> gray32;
  AngleScratch a;
  std::vector<double> sums;
};

// CS231n's rgb2gray, np.dot(rgb, [0.299, 0.587, 0.144]): every product rounded before the
// sums (the products are stored first, so that nothing is fused into an fma).
template <class In>
void rgb_to_gray(const ImageView<In>& im, int64_t H, int64_t W, Cs231nScratch& s) {
  const int64_t P = H * W;
  s.prod.resize(size_t(3 * P));
  s.gray.resize(size_t(P));
  constexpr double w[3] = {0.299, 0.587, 0.144};
  for (int64_t ch = 0; ch < 3; ++ch) {
    double* FL_RESTRICT pr = s.prod.data() + ch * P;
    for (int64_t r = 0; r < H; ++r)
      for (int64_t c = 0; c < W; ++c) pr[r * W + c] = double(im.at(r, c, ch)) * w[ch];
  }
  const double* FL_RESTRICT p0 = s.prod.data();
  const double* FL_RESTRICT p1 = p0 + P;
  const double* FL_RESTRICT p2 = p1 + P;
  double* FL_RESTRICT g = s.gray.data();
  FL_SIMD
  for (int64_t q = 0; q < P; ++q) g[q] = (p0[q] + p1[q]) + p2[q];
}

template <class G>
void cs231n_hog_gray(const G* img, int64_t H, int64_t W, const Cs231nBins& bins,
                     Cs231nScratch& s, double* out) {
  const int64_t ncr = H / kCsCell, ncc = W / kCsCell;
  const int64_t Hc = ncr * kCsCell, Wc = ncc * kCsCell, P = Hc * Wc;
  AngleScratch& a = s.a;
  a.resize(P);
  gradients(img, H, W, Hc, Wc, false, a.gx.data(), a.Y.data());
  {  // the angle of (X, Y) = (-gy, gx + 1e-15) is grad_ori
    const double* FL_RESTRICT gx = a.gx.data();
    double* FL_RESTRICT X = a.X.data();
    double* Y = a.Y.data();
    double* FL_RESTRICT mag = a.mag.data();
    FL_SIMD
    for (int64_t q = 0; q < P; ++q) {
      const double gy = Y[q];
      mag[q] = std::sqrt(gx[q] * gx[q] + gy * gy);
      X[q] = -gy;
      Y[q] = gx[q] + 1e-15;
    }
  }
  classify_angles(a, P, false, bins.dirs);
  for (int64_t q = 0; q < P; ++q) {
    const size_t u = size_t(q);
    if (a.mag[u] == 0.0)
      a.bin[u] = kNoBin;
    else if (a.bin[u] == kUnsure)
      a.bin[u] = Cs231nBins::exact(a.gx[u], -a.X[u]);
  }
  // Cell means (uniform_filter over 8 x 8, sampled at the cell centres), laid out as
  // CS231n's .T leaves them: (cell col, cell row, orientation).
  s.sums.assign(size_t(ncr * ncc * kCsOrient), 0.0);
  for_cell_pixels(ncr, ncc, kCsCell, kCsCell, Wc, [&](int64_t cell, int64_t q) {
    const int32_t b = a.bin[size_t(q)];
    if (b != kNoBin) s.sums[size_t(cell * kCsOrient + b)] += a.mag[size_t(q)];
  });
  for (int64_t yi = 0; yi < ncr; ++yi)
    for (int64_t xi = 0; xi < ncc; ++xi)
      for (int64_t o = 0; o < kCsOrient; ++o)
        out[(xi * ncr + yi) * kCsOrient + o] =
            s.sums[size_t((yi * ncc + xi) * kCsOrient + o)] / double(kCsCell * kCsCell);
}

template <class In>
void cs231n_hog_image(const ImageView<In>& im, int64_t H, int64_t W, int64_t C,
                      const Cs231nBins& bins, Cs231nScratch& s, double* out) {
  if (C == 3) {
    rgb_to_gray(im, H, W, s);
    cs231n_hog_gray(s.gray.data(), H, W, bins, s, out);
    return;
  }
  if constexpr (std::is_same<In, float>::value) {
    s.gray32.resize(size_t(H * W));
    for (int64_t r = 0; r < H; ++r)
      for (int64_t c = 0; c < W; ++c) s.gray32[size_t(r * W + c)] = im.at(r, c);
    cs231n_hog_gray(s.gray32.data(), H, W, bins, s, out);
  } else {
    s.gray.resize(size_t(H * W));
    for (int64_t r = 0; r < H; ++r)
      for (int64_t c = 0; c < W; ++c) s.gray[size_t(r * W + c)] = double(im.at(r, c));
    cs231n_hog_gray(s.gray.data(), H, W, bins, s, out);
  }
}

template <class In>
void cs231n_hog_typed(const ImageStack& st, double* out, int64_t ldo, int n_threads) {
  const Cs231nBins bins;
  const int64_t rows = std::max<int64_t>(1, kBlockPixels / std::max<int64_t>(st.H * st.W, 1));
  for_row_blocks(st.N, rows, st.H * st.W * st.C, n_threads,
                 [&](int64_t, int64_t i0, int64_t i1) {
                   Cs231nScratch s;
                   for (int64_t i = i0; i < i1; ++i)
                     cs231n_hog_image(image_at<In>(st, i), st.H, st.W, st.C, bins, s,
                                      out + i * ldo);
                 });
}

inline void cs231n_hog(const ImageStack& st, double* out, int64_t ldo, int n_threads) {
  switch (st.type) {
    case PixelType::u8:
      return cs231n_hog_typed<uint8_t>(st, out, ldo, n_threads);
    case PixelType::f32:
      return cs231n_hog_typed<float>(st, out, ldo, n_threads);
    default:
      return cs231n_hog_typed<double>(st, out, ldo, n_threads);
  }
}

// ---------------------------------------------------------------- CS231n's hue histogram

// Range errors of rgb_to_hsv over one image: a pixel whose largest value exceeds 1 (NaN
// pixels excepted) is rejected, and so is one below 0 unless the image holds a NaN (NumPy's
// min of the image is then NaN and passes).
struct HueRange {
  bool any_nan = false;
  int64_t first_big = -1, first_neg = -1;
  int64_t error() const { return first_big >= 0 ? first_big : any_nan ? -1 : first_neg; }
};

// The hue of matplotlib's rgb_to_hsv(rgb / xmax)[..., 0] * xmax, in T, for one row of n
// pixels already divided by xmax (R, Gr, B); q0 is the row's first pixel index. Branch-free:
// rgb_to_hsv's last matching rule wins (blue, green, red); delta == 0 or a NaN gives 0; and
// (h / 6) % 1.0 is NumPy's remainder for |h / 6| < 1, which always holds here.
template <class T>
void hue_row(const T* FL_RESTRICT R, const T* FL_RESTRICT Gr, const T* FL_RESTRICT B, int64_t n,
             T xmax, int64_t q0, T* FL_RESTRICT hue, T* FL_RESTRICT flag, HueRange& range) {
  T any = T(0);
  FL_SIMD_REDUCE(+ : any)
  for (int64_t c = 0; c < n; ++c) {
    const T r = R[c], g = Gr[c], b = B[c];
    const bool nan = r != r || g != g || b != b;
    const T mx = std::max(std::max(r, g), b), mn = std::min(std::min(r, g), b);
    const T d = mx - mn;
    const T num = b == mx ? r - g : (g == mx ? b - r : g - b);
    const T off = b == mx ? T(4) : (g == mx ? T(2) : T(0));
    const T h = (d > T(0) && !nan) ? off + num / (d > T(0) ? d : T(1)) : T(0);
    const T x = h / T(6);
    hue[c] = (x < T(0) ? x + T(1) : (x == T(0) ? T(0) : x)) * xmax;
    const T f = nan ? T(1) : T((mx > T(1) ? 2 : 0) + (mn < T(0) ? 4 : 0));
    flag[c] = f;
    any += f;
  }
  if (any == T(0)) return;
  for (int64_t c = 0; c < n; ++c) {
    const int f = int(flag[c]);
    if (f == 1) range.any_nan = true;
    if ((f & 2) && range.first_big < 0) range.first_big = q0 + c;
    if ((f & 4) && range.first_neg < 0) range.first_neg = q0 + c;
  }
}

// np.histogram with explicit edges: bin i holds e_i <= v < e_{i+1}, the last bin also
// v == e_nbin; values outside [e_0, e_nbin] (and NaN) are not counted.
FL_INLINE int bin_of(double v, const double* e, int nbin, double scale) {
  if (!(v >= e[0] && v <= e[nbin])) return -1;
  int i = int(std::min(double(nbin - 1), (v - e[0]) * scale));
  while (i > 0 && v < e[i]) --i;
  while (i < nbin - 1 && v >= e[i + 1]) ++i;
  return i;
}

// im / xmax as NumPy divides, from a table for uint8 pixels.
template <class In, class T>
struct ScaledPixels {
  T xmax;
  std::vector<T> table;
  explicit ScaledPixels(double xmax_) : xmax(T(xmax_)) {
    if (std::is_same<In, uint8_t>::value)
      for (int v = 0; v < 256; ++v) table.push_back(T(v) / xmax);
  }
  FL_INLINE T operator()(In v) const {
    if constexpr (std::is_same<In, uint8_t>::value)
      return table[v];
    else
      return T(v) / xmax;
  }
};

template <class T>
struct HueScratch {
  std::vector<T> rgb, hue, flag;
  std::vector<int64_t> counts;
};

template <class In, class T>
int64_t hue_histogram_image(const ImageView<In>& im, int64_t H, int64_t W, const HueParams& hp,
                            const ScaledPixels<In, T>& scaled, HueScratch<T>& s, double* out) {
  const double* e = hp.edges;
  const int nbin = hp.nbin;
  const double scale = nbin / (e[nbin] - e[0]);
  s.counts.assign(size_t(nbin), 0);
  s.rgb.resize(size_t(3 * W));
  s.hue.resize(size_t(W));
  s.flag.resize(size_t(W));
  T* R = s.rgb.data();
  T* Gr = R + W;
  T* B = Gr + W;
  HueRange range;
  for (int64_t r = 0; r < H; ++r) {
    for (int64_t c = 0; c < W; ++c) {
      R[c] = scaled(im.at(r, c, 0));
      Gr[c] = scaled(im.at(r, c, 1));
      B[c] = scaled(im.at(r, c, 2));
    }
    hue_row(R, Gr, B, W, scaled.xmax, r * W, s.hue.data(), s.flag.data(), range);
    for (int64_t c = 0; c < W; ++c) {
      const int b = bin_of(double(s.hue[size_t(c)]), e, nbin, scale);
      if (b >= 0) ++s.counts[size_t(b)];
    }
  }
  const std::vector<int64_t>& counts = s.counts;
  // CS231n: np.histogram(density=normalized)[0] * np.diff(bin_edges), in NumPy's order.
  int64_t total = 0;
  for (int64_t k : counts) total += k;
  for (int i = 0; i < nbin; ++i) {
    const double db = e[i + 1] - e[i];
    const double n = double(counts[size_t(i)]);
    out[i] = hp.normalized ? (n / db / double(total)) * db : n * db;
  }
  return range.error();
}

template <class In, class T>
PixelError hue_histogram_typed(const ImageStack& st, const HueParams& hp, double* out,
                               int64_t ldo, int n_threads) {
  const int64_t rows = std::max<int64_t>(1, kBlockPixels / std::max<int64_t>(st.H * st.W, 1));
  const int64_t n_blocks = (st.N + rows - 1) / rows;
  std::vector<PixelError> errors(size_t(std::max<int64_t>(n_blocks, 0)));
  const ScaledPixels<In, T> scaled(hp.xmax);
  for_row_blocks(st.N, rows, st.H * st.W * 3, n_threads, [&](int64_t b, int64_t i0, int64_t i1) {
    HueScratch<T> s;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t q =
          hue_histogram_image<In, T>(image_at<In>(st, i), st.H, st.W, hp, scaled, s,
                                     out + i * ldo);
      if (q >= 0 && errors[size_t(b)].image < 0) errors[size_t(b)] = PixelError{i, q};
    }
  });
  for (const PixelError& err : errors)
    if (err.image >= 0) return err;
  return PixelError{};
}

inline PixelError hue_histogram(const ImageStack& st, const HueParams& hp, double* out,
                                int64_t ldo, int n_threads) {
  switch (st.type) {
    case PixelType::u8:
      return hue_histogram_typed<uint8_t, double>(st, hp, out, ldo, n_threads);
    case PixelType::f32:
      return hp.single ? hue_histogram_typed<float, float>(st, hp, out, ldo, n_threads)
                       : hue_histogram_typed<float, double>(st, hp, out, ldo, n_threads);
    default:
      return hue_histogram_typed<double, double>(st, hp, out, ldo, n_threads);
  }
}

}  // namespace feat

FASTLOSS_NS_END
