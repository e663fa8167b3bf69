// Bilinear and bicubic resizing in NHWC with PyTorch's F.interpolate semantics for
// align_corners=False (half-pixel centres):
//   src = (dst + 0.5) · in/out − 0.5
// Bilinear clamps src < 0 to 0 and the upper tap to the border; bicubic takes the four
// taps floor(src)−1 … floor(src)+2, each clamped to the border, weighted by the cubic
// convolution kernel with A = −0.75 (upsample_bicubic2d). Both are separable, so each
// axis gets a table of (index, weight) taps, and an output pixel is
//   out[oy, ox, :] = Σ_ky wy · (Σ_kx wx · x[iy, ix, :])
// accumulated in f32 over the whole C-vector at once: first along W per input row, then
// along H over whole rows.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {
namespace {

// Taps of one axis: for output position o, index[o·taps + k] and weight[o·taps + k].
struct AxisTaps {
  int taps = 0;
  std::vector<int64_t> index;
  std::vector<float> weight;
};

constexpr float kCubicA = -0.75f;

// Cubic convolution kernel for |x| ≤ 1 and for 1 < |x| < 2.
float cubic_near(float x) {
  return ((kCubicA + 2) * x - (kCubicA + 3)) * x * x + 1;
}
float cubic_far(float x) {
  return ((kCubicA * x - 5 * kCubicA) * x + 8 * kCubicA) * x - 4 * kCubicA;
}

AxisTaps axis_taps(int64_t in, int64_t out, ResizeMode mode) {
  AxisTaps t;
  t.taps = mode == ResizeMode::Bilinear ? 2 : 4;
  t.index.resize(static_cast<size_t>(out * t.taps));
  t.weight.resize(static_cast<size_t>(out * t.taps));
  // f32 like PyTorch's opmath for f32/bf16/f16 inputs.
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) {
    float src = scale * (static_cast<float>(o) + 0.5f) - 0.5f;
    int64_t* idx = &t.index[static_cast<size_t>(o * t.taps)];
    float* w = &t.weight[static_cast<size_t>(o * t.taps)];
    if (mode == ResizeMode::Bilinear) {
      src = std::max(src, 0.0f);
      const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
      const float l1 = src - static_cast<float>(i0);
      idx[0] = i0;
      idx[1] = i0 + (i0 < in - 1 ? 1 : 0);
      w[0] = 1.0f - l1;
      w[1] = l1;
    } else {
      const float f = std::floor(src);
      const float frac = src - f;
      const int64_t i = static_cast<int64_t>(f);
      w[0] = cubic_far(frac + 1.0f);
      w[1] = cubic_near(frac);
      w[2] = cubic_near(1.0f - frac);
      w[3] = cubic_far(2.0f - frac);
      for (int k = 0; k < 4; ++k) idx[k] = std::clamp<int64_t>(i - 1 + k, 0, in - 1);
    }
  }
  return t;
}

}  // namespace

void resize(const ResizeArgs& args) {
  const Tensor& x = args.x;
  const Tensor& out = args.out;
  if (out.numel() == 0) return;
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const int64_t ho = out.dim(1), wo = out.dim(2);
  const AxisTaps ty = axis_taps(h, ho, args.mode);
  const AxisTaps tx = axis_taps(w, wo, args.mode);
  const DType dt = x.dtype();
  const size_t elem = dtype_size(dt);
  const char* xs = static_cast<const char*>(x.raw());
  char* os = static_cast<char*>(out.raw());
  const int64_t row = w * c, out_row = wo * c;
  const int slots = ty.taps;

  // out rows are independent; within a chunk, neighbouring out rows share input rows, so
  // each input row is resampled horizontally once into a small cache (`slots` rows: one
  // out row never needs more) and the vertical pass combines cached rows.
  const int64_t work_per_row = out_row * (ty.taps + tx.taps);
  ThreadPool::global().parallel_for(
      n * ho,
      [&](int64_t begin, int64_t end) {
        std::vector<float> in_row(dt == DType::F32 ? 0 : static_cast<size_t>(row));
        std::vector<float> cache(static_cast<size_t>(slots * out_row));
        std::vector<int64_t> cached(static_cast<size_t>(slots), -1);  // input row b·h + iy
        std::vector<float> acc(static_cast<size_t>(out_row));
        std::vector<const float*> tap_rows(static_cast<size_t>(slots));

        // x[b, iy] resampled along W into cache slot `slot`.
        auto fill = [&](int slot, int64_t key) {
          const char* src_row = xs + static_cast<size_t>(key * row) * elem;
          const float* in = reinterpret_cast<const float*>(src_row);
          if (dt != DType::F32) {
            load_f32(src_row, dt, in_row.data(), row);
            in = in_row.data();
          }
          float* hr = cache.data() + slot * out_row;
          std::fill(hr, hr + out_row, 0.0f);
          for (int64_t ox = 0; ox < wo; ++ox) {
            float* a = hr + ox * c;
            for (int kx = 0; kx < tx.taps; ++kx) {
              const float wx = tx.weight[static_cast<size_t>(ox * tx.taps + kx)];
              const float* s = in + tx.index[static_cast<size_t>(ox * tx.taps + kx)] * c;
              for (int64_t ch = 0; ch < c; ++ch) a[ch] += wx * s[ch];
            }
          }
          cached[static_cast<size_t>(slot)] = key;
        };

        for (int64_t r = begin; r < end; ++r) {
          const int64_t b = r / ho, oy = r % ho;
          const int64_t* iy = &ty.index[static_cast<size_t>(oy * ty.taps)];
          const float* wy = &ty.weight[static_cast<size_t>(oy * ty.taps)];
          // Find or fill a slot for each tap's row. A slot may be refilled only if no tap
          // of this out row uses it.
          for (int k = 0; k < slots; ++k) {
            const int64_t key = b * h + iy[k];
            int slot = 0;
            while (slot < slots && cached[static_cast<size_t>(slot)] != key) ++slot;
            if (slot == slots) {
              for (slot = 0; slot < slots; ++slot) {
                const int64_t have = cached[static_cast<size_t>(slot)];
                bool needed = false;
                for (int j = 0; j < slots; ++j) needed |= have == b * h + iy[j];
                if (!needed) break;
              }
              DR_ASSERT(slot < slots);
              fill(slot, key);
            }
            tap_rows[static_cast<size_t>(k)] = cache.data() + slot * out_row;
          }
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int k = 0; k < slots; ++k) {
            const float* hr = tap_rows[static_cast<size_t>(k)];
            const float wk = wy[k];
            for (int64_t i = 0; i < out_row; ++i) acc[static_cast<size_t>(i)] += wk * hr[i];
          }
          store_f32(acc.data(), dt, os + static_cast<size_t>(r * out_row) * elem, out_row);
        }
      },
      std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, work_per_row)));
}

}  // namespace darkroom::cpu
