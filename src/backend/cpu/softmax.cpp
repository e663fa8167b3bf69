// Softmax over the rows of x [M, C]: exp(x - max) / Σ exp(x - max). Subtracting the row
// maximum keeps every exponent ≤ 0, so nothing overflows and the largest term is 1.
#include <algorithm>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_math.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {

void softmax(const SoftmaxArgs& args) {
  const Tensor& x = args.x;  // [M, C]
  const Tensor& out = args.out;
  const int64_t rows = x.dim(0), c = x.dim(1);
  if (x.numel() == 0) return;

  const int64_t min_rows = std::max<int64_t>(1, 8192 / c);
  ThreadPool::global().parallel_for(
      rows,
      [&](int64_t r0, int64_t r1) {
        std::vector<float> in_buf(static_cast<size_t>(c)), out_buf(in_buf.size());
        for (int64_t r = r0; r < r1; ++r) {
          const float* row = f32_in(x, r * c, c, in_buf.data());
          float* dst = f32_out(out, r * c, out_buf.data());
          const float mx = max_f32(row, c);
          for (int64_t i = 0; i < c; ++i) dst[i] = exp_f32(row[i] - mx);
          const float inv = 1.0f / sum_f32(dst, c);
          for (int64_t i = 0; i < c; ++i) dst[i] *= inv;
          f32_out_done(out, r * c, dst, c);
        }
      },
      min_rows);
}

}  // namespace darkroom::cpu
