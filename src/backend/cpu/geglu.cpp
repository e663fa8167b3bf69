// GEGLU (diffusers): x [M, 2C] → out [M, C] = x[:, :C] · gelu(x[:, C:]), erf GELU.
#include <algorithm>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_math.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {

void geglu(const GegluArgs& args) {
  const Tensor& x = args.x;      // [M, 2C]
  const Tensor& out = args.out;  // [M, C]
  const int64_t rows = out.dim(0), c = out.dim(1);
  if (out.numel() == 0) return;

  const int64_t min_rows = std::max<int64_t>(1, 8192 / c);
  ThreadPool::global().parallel_for(
      rows,
      [&](int64_t r0, int64_t r1) {
        std::vector<float> in_buf(static_cast<size_t>(2 * c)), out_buf(static_cast<size_t>(c));
        for (int64_t r = r0; r < r1; ++r) {
          const float* row = f32_in(x, r * 2 * c, 2 * c, in_buf.data());
          const float* gate = row + c;
          float* dst = f32_out(out, r * c, out_buf.data());
          for (int64_t i = 0; i < c; ++i) dst[i] = row[i] * gelu_erf_f32(gate[i]);
          f32_out_done(out, r * c, dst, c);
        }
      },
      min_rows);
}

}  // namespace darkroom::cpu
