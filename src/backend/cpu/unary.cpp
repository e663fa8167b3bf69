// Activations, elementwise over the flat data: SiLU, GELU (erf and tanh forms),
// QuickGELU and LeakyReLU. The data is cut into tiles so a thread converts a few KiB at a time.
#include <algorithm>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_math.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {
namespace {

constexpr int64_t kTile = 4096;  // elements

template <float (*F)(float)>
void apply(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = F(x[i]);
}

}  // namespace

void unary(const UnaryArgs& args) {
  const Tensor& x = args.x;
  const Tensor& out = args.out;
  const int64_t total = x.numel();
  const int64_t tiles = (total + kTile - 1) / kTile;
  ThreadPool::global().parallel_for(
      tiles,
      [&](int64_t t0, int64_t t1) {
        std::vector<float> in_buf(kTile), out_buf(kTile);
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t at = t * kTile, n = std::min(kTile, total - at);
          const float* src = f32_in(x, at, n, in_buf.data());
          float* dst = f32_out(out, at, out_buf.data());
          switch (args.kind) {
            case UnaryKind::Silu:
              apply<silu_f32>(src, dst, n);
              break;
            case UnaryKind::Gelu:
              apply<gelu_erf_f32>(src, dst, n);
              break;
            case UnaryKind::GeluTanh:
              apply<gelu_tanh_f32>(src, dst, n);
              break;
            case UnaryKind::QuickGelu:
              apply<quick_gelu_f32>(src, dst, n);
              break;
            case UnaryKind::LeakyRelu:
              for (int64_t i = 0; i < n; ++i)
                dst[i] = src[i] < 0.0f ? src[i] * args.negative_slope : src[i];
              break;
          }
          f32_out_done(out, at, dst, n);
        }
      },
      4);
}

}  // namespace darkroom::cpu
