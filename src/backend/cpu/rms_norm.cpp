// RmsNorm over the rows of x [M, C]: x / sqrt(mean(x²) + eps) · weight.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_math.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {

void rms_norm(const RmsNormArgs& args) {
  const Tensor& x = args.x;  // [M, C]
  const Tensor& out = args.out;
  const int64_t rows = x.dim(0), c = x.dim(1);
  if (x.numel() == 0) return;
  std::vector<float> w(static_cast<size_t>(c), 1.0f);  // [C]; absent weight is 1
  if (args.weight.defined()) load_f32(args.weight.raw(), args.weight.dtype(), w.data(), c);

  const int64_t min_rows = std::max<int64_t>(1, 16384 / c);
  ThreadPool::global().parallel_for(
      rows,
      [&](int64_t r0, int64_t r1) {
        std::vector<float> in_buf(static_cast<size_t>(c)), out_buf(in_buf.size());
        for (int64_t r = r0; r < r1; ++r) {
          const float* row = f32_in(x, r * c, c, in_buf.data());
          float* dst = f32_out(out, r * c, out_buf.data());
          const float mean_sq = sum_sq_dev_f32(row, c, 0.0f) / float(c);
          const float rstd = 1.0f / std::sqrt(mean_sq + args.eps);
          for (int64_t i = 0; i < c; ++i) dst[i] = row[i] * rstd * w[i];
          f32_out_done(out, r * c, dst, c);
        }
      },
      min_rows);
}

}  // namespace darkroom::cpu
