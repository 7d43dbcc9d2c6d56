// Bag of visual words (Coates & Ng 2011): every patch of every image normalised, whitened,
// compared with every codeword, encoded ("triangle" or hard) and summed per quadrant.
//
// The cost is the product of the patches with the codebook, so that is all the kernel does
// at full speed: a block of patches (normalised and centred, in L1) times one stacked
// matrix [Z | Z C^T] (D x (D + K)), panel by panel, in register tiles. Its first D columns
// are the whitened patch z (needed only for |z|^2), the others z . c_k, so that
// d_k^2 = |z|^2 - 2 z . c_k + |c_k|^2 comes from one pass over the patch. The hard
// encoding needs only the argmin of |c_k|^2 - 2 z . c_k, so it skips the Z columns, and so
// does the triangle without whitening (|z|^2 is then the centred patch's own norm). The
// products of one patch do not depend on the others in its block, and each image's
// patches are pooled in order, so the bits do not depend on the blocking or the threads.
// Templated over the compute type T only (float for float32 images, else double); just the
// patch gather knows the pixel type.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "bow_kernels.hpp"
#include "config.hpp"
#include "driver.hpp"
#include "simd.hpp"

FASTLOSS_NS_BEGIN

namespace bow {

constexpr int kMR = 6;                      // patches per register tile
constexpr int kNV = 2;                      // vectors of columns per register tile
constexpr int64_t kBlockBytes = 24 * 1024;  // normalised patches of one block (L1)
constexpr int64_t kMaxBlock = 240;          // patches per block at most
constexpr int64_t kDriverPatches = 4096;    // patches per block of images (a driver block)

template <class T>
constexpr int64_t panel_width() {
  return int64_t(kNV) * width<T>();
}

// The fitted model in T: the stacked matrix in panels of D x NR columns (zero-padded),
// the centring vector and the codewords' squared norms.
template <class T>
struct Model {
  int64_t D = 0, K = 0, Dz = 0, NCp = 0, PB = 0;
  int patch = 1, stride = 1;
  bool hard = false, quadrants = true;
  T eps = T(0);
  std::vector<T> panels, mean, cc;

  explicit Model(const BowParams& p)
      : D(p.D), K(p.K), patch(p.patch), stride(p.stride), hard(p.hard),
        quadrants(p.quadrants), eps(T(p.contrast_eps)) {
    constexpr int64_t NR = panel_width<T>();
    Dz = (p.whitening && !p.hard) ? D : 0;
    const int64_t NC = Dz + K;
    NCp = (NC + NR - 1) / NR * NR;
    // Columns in double: Z, then B = Z C^T (or C^T without whitening).
    std::vector<double> cols(size_t(D * NCp), 0.0);  // D x NCp, row-major
    for (int64_t d = 0; d < D; ++d) {
      double* row = cols.data() + d * NCp;
      for (int64_t j = 0; j < Dz; ++j) row[j] = p.whitening[d * D + j];
      for (int64_t k = 0; k < K; ++k) {
        const double* c = p.codebook + k * D;
        double s = 0.0;
        if (p.whitening) {
          const double* z = p.whitening + d * D;
          for (int64_t j = 0; j < D; ++j) s += z[j] * c[j];
        } else {
          s = c[d];
        }
        row[Dz + k] = s;
      }
    }
    panels.resize(size_t(D * NCp));
    for (int64_t q = 0; q < NCp / NR; ++q)
      for (int64_t d = 0; d < D; ++d)
        for (int64_t l = 0; l < NR; ++l)
          panels[size_t((q * D + d) * NR + l)] = T(cols[size_t(d * NCp + q * NR + l)]);
    mean.resize(size_t(D));
    for (int64_t d = 0; d < D; ++d) mean[size_t(d)] = T(p.mean[d]);
    cc.resize(size_t(K));
    for (int64_t k = 0; k < K; ++k) {
      double s = 0.0;
      for (int64_t j = 0; j < D; ++j) s += p.codebook[k * D + j] * p.codebook[k * D + j];
      cc[size_t(k)] = T(s);
    }
    PB = std::min(kMaxBlock, std::max<int64_t>(kMR, kBlockBytes / (D * int64_t(sizeof(T)))));
    PB = std::max<int64_t>(kMR, PB / kMR * kMR);
  }
};

// The values of the patch at (r0, c0) of image n, in (row, column, channel) order.
template <class In, class T>
void gather(const ImageStack& s, int64_t n, int64_t r0, int64_t c0, int patch, T* x) {
  const In* base = static_cast<const In*>(s.data) + n * s.sn + r0 * s.sh + c0 * s.sw;
  for (int i = 0; i < patch; ++i)
    for (int j = 0; j < patch; ++j) {
      const In* px = base + i * s.sh + j * s.sw;
      for (int64_t ch = 0; ch < s.C; ++ch) *x++ = T(px[ch * s.sc]);
    }
}

// (x - mean(x)) / sqrt(var(x) + eps) - centre, in place.
template <class T>
FL_INLINE void normalise(T* FL_RESTRICT x, int64_t D, T eps, const T* FL_RESTRICT centre) {
  T sum = T(0);
  FL_SIMD_REDUCE(+ : sum)
  for (int64_t d = 0; d < D; ++d) sum += x[d];
  const T m = sum / T(D);
  T var = T(0);
  FL_SIMD_REDUCE(+ : var)
  for (int64_t d = 0; d < D; ++d) var += (x[d] - m) * (x[d] - m);
  const T sd = std::sqrt(var / T(D) + eps);
  FL_SIMD
  for (int64_t d = 0; d < D; ++d) x[d] = (x[d] - m) / sd - centre[d];
}

// G[r, :NR] = X[r, :] . panel for kMR rows of X (row stride D) and one D x NR panel.
template <class T>
FL_INLINE void tile(const T* FL_RESTRICT X, int64_t D, const T* FL_RESTRICT P,
                    T* FL_RESTRICT G, int64_t ldg) {
  constexpr int L = width<T>();
  constexpr int64_t NR = panel_width<T>();
  vec<T> acc[kMR][kNV];
  for (int r = 0; r < kMR; ++r)
    for (int v = 0; v < kNV; ++v) acc[r][v] = splat(T(0));
  for (int64_t d = 0; d < D; ++d) {
    vec<T> w[kNV];
    for (int v = 0; v < kNV; ++v) w[v] = load(P + d * NR + v * L);
    for (int r = 0; r < kMR; ++r) {
      const vec<T> x = splat(X[r * D + d]);
      for (int v = 0; v < kNV; ++v) acc[r][v] += x * w[v];
    }
  }
  for (int r = 0; r < kMR; ++r)
    for (int v = 0; v < kNV; ++v) store(G + r * ldg + v * L, acc[r][v]);
}

// Adds the encoding of one patch (g: its row of the product, x: the centred patch) to o.
template <class T>
FL_INLINE void encode_patch(const Model<T>& m, const T* FL_RESTRICT g, const T* FL_RESTRICT x,
                            T* FL_RESTRICT dist, T* FL_RESTRICT o) {
  const int64_t K = m.K;
  const T* FL_RESTRICT cc = m.cc.data();
  const T* FL_RESTRICT gc = g + m.Dz;
  if (m.hard) {
    T best = std::numeric_limits<T>::infinity();
    FL_SIMD_REDUCE(min : best)
    for (int64_t k = 0; k < K; ++k) {
      dist[k] = cc[k] - T(2) * gc[k];
      best = std::min(best, dist[k]);
    }
    int64_t kb = 0;
    while (kb < K - 1 && !(dist[kb] <= best)) ++kb;
    o[kb] += T(1);
    return;
  }
  T z2 = T(0);
  const T* zz = m.Dz ? g : x;
  const int64_t nz = m.Dz ? m.Dz : m.D;
  FL_SIMD_REDUCE(+ : z2)
  for (int64_t j = 0; j < nz; ++j) z2 += zz[j] * zz[j];
  T sum = T(0);
  FL_SIMD_REDUCE(+ : sum)
  for (int64_t k = 0; k < K; ++k) {
    const T d2 = z2 - T(2) * gc[k] + cc[k];
    dist[k] = std::sqrt(std::max(d2, T(0)));
    sum += dist[k];
  }
  const T mu = sum / T(K);
  FL_SIMD
  for (int64_t k = 0; k < K; ++k) o[k] += std::max(T(0), mu - dist[k]);
}

template <class T>
using GatherFn = void (*)(const ImageStack&, int64_t, int64_t, int64_t, int, T*);

template <class T>
void encode(const ImageStack& st, const BowParams& p, GatherFn<T> gather_fn, T* out,
            int64_t ldo, int n_threads) {
  const Model<T> m(p);
  const int64_t h = (st.H - m.patch) / m.stride + 1, w = (st.W - m.patch) / m.stride + 1;
  const int64_t hw = h * w, D = m.D, K = m.K, NCp = m.NCp, PB = m.PB;
  const int64_t F = (m.quadrants ? 4 : 1) * K;
  constexpr int64_t NR = panel_width<T>();
  const int64_t rows = std::max<int64_t>(1, kDriverPatches / std::max<int64_t>(hw, 1));
  for_row_blocks(st.N, rows, hw * (NCp + D), n_threads, [&](int64_t, int64_t i0, int64_t i1) {
    std::vector<T> X(size_t(PB * D)), G(size_t(PB * NCp)), dist(static_cast<size_t>(K));
    std::vector<T*> dest(static_cast<size_t>(PB));
    for (int64_t i = i0; i < i1; ++i) std::fill(out + i * ldo, out + i * ldo + F, T(0));
    int64_t n = i0, r = 0, c = 0;  // the next patch
    const int64_t total = (i1 - i0) * hw;
    for (int64_t t0 = 0; t0 < total; t0 += PB) {
      const int64_t nb = std::min(PB, total - t0);
      for (int64_t b = 0; b < nb; ++b) {
        T* x = X.data() + b * D;
        gather_fn(st, n, r * m.stride, c * m.stride, m.patch, x);
        normalise(x, D, m.eps, m.mean.data());
        const int64_t q = m.quadrants ? (r >= h / 2 ? 2 : 0) + (c >= w / 2 ? 1 : 0) : 0;
        dest[size_t(b)] = out + n * ldo + q * K;
        if (++c == w) {
          c = 0;
          if (++r == h) r = 0, ++n;
        }
      }
      const int64_t nbr = (nb + kMR - 1) / kMR * kMR;
      std::fill(X.data() + nb * D, X.data() + nbr * D, T(0));
      for (int64_t q = 0; q < NCp / NR; ++q) {
        const T* P = m.panels.data() + q * D * NR;
        for (int64_t r0 = 0; r0 < nbr; r0 += kMR)
          tile(X.data() + r0 * D, D, P, G.data() + r0 * NCp + q * NR, NCp);
      }
      for (int64_t b = 0; b < nb; ++b)
        encode_patch(m, G.data() + b * NCp, X.data() + b * D, dist.data(), dest[size_t(b)]);
    }
  });
}

inline void encode_f32(const ImageStack& st, const BowParams& p, float* out, int64_t ldo,
                       int n_threads) {
  encode<float>(st, p, &gather<float, float>, out, ldo, n_threads);
}

inline void encode_f64(const ImageStack& st, const BowParams& p, double* out, int64_t ldo,
                       int n_threads) {
  encode<double>(st, p,
                 st.type == PixelType::u8 ? &gather<uint8_t, double> : &gather<double, double>,
                 out, ldo, n_threads);
}

}  // namespace bow

FASTLOSS_NS_END
