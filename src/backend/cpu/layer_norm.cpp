// LayerNorm over the rows of x [M, C]: (x - mean) / sqrt(var + eps) · weight + bias,
// with the biased variance (PyTorch). Each row is in cache after its load, so mean and
// variance take two passes over it (exact two-pass variance, no Σx² cancellation).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_math.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {

void layer_norm(const LayerNormArgs& args) {
  const Tensor& x = args.x;  // [M, C]
  const Tensor& out = args.out;
  const int64_t rows = x.dim(0), c = x.dim(1);
  if (x.numel() == 0) return;
  // w, b [C]: absent weight is 1, absent bias 0.
  std::vector<float> w(static_cast<size_t>(c), 1.0f), b(static_cast<size_t>(c), 0.0f);
  if (args.weight.defined()) load_f32(args.weight.raw(), args.weight.dtype(), w.data(), c);
  if (args.bias.defined()) load_f32(args.bias.raw(), args.bias.dtype(), b.data(), c);

  const int64_t min_rows = std::max<int64_t>(1, 16384 / c);
  ThreadPool::global().parallel_for(
      rows,
      [&](int64_t r0, int64_t r1) {
        std::vector<float> in_buf(static_cast<size_t>(c)), out_buf(in_buf.size());
        for (int64_t r = r0; r < r1; ++r) {
          const float* row = f32_in(x, r * c, c, in_buf.data());
          float* dst = f32_out(out, r * c, out_buf.data());
          const float mean = sum_f32(row, c) / float(c);
          const float var = sum_sq_dev_f32(row, c, mean) / float(c);
          const float rstd = 1.0f / std::sqrt(var + args.eps);
          for (int64_t i = 0; i < c; ++i) dst[i] = std::fma((row[i] - mean) * rstd, w[i], b[i]);
          f32_out_done(out, r * c, dst, c);
        }
      },
      min_rows);
}

}  // namespace darkroom::cpu
