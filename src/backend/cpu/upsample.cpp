// Nearest-neighbour 2× upsampling in NHWC: x [N, H, W, C] → out [N, 2H, 2W, C].
// Output row 2h is input row h with every pixel's C-vector written twice; row 2h+1 is a
// copy of row 2h. Pure data movement, so it works on raw element bits of any width.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {
namespace {

template <class T>
void upsample_rows(const T* x, T* out, int64_t rows, int64_t w, int64_t c) {
  // rows = N·H input rows; each expands into two output rows of 2W·C elements.
  ThreadPool::global().parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const T* src = x + r * w * c;
          T* dst0 = out + 2 * r * (2 * w * c);
          for (int64_t j = 0; j < w; ++j) {
            const T* s = src + j * c;
            T* d = dst0 + 2 * j * c;
            for (int64_t k = 0; k < c; ++k) {
              d[k] = s[k];
              d[c + k] = s[k];
            }
          }
          std::memcpy(dst0 + 2 * w * c, dst0, static_cast<size_t>(2 * w * c) * sizeof(T));
        }
      },
      std::max<int64_t>(1, 4096 / std::max<int64_t>(1, w * c)));
}

}  // namespace

void upsample_nearest2x(const UpsampleNearest2xArgs& args) {
  const Tensor& x = args.x;
  if (x.numel() == 0) return;
  const int64_t rows = x.dim(0) * x.dim(1);
  const int64_t w = x.dim(2), c = x.dim(3);
  switch (dtype_size(x.dtype())) {
    case 1:
      upsample_rows(x.data<uint8_t>(), args.out.data<uint8_t>(), rows, w, c);
      break;
    case 2:
      upsample_rows(x.data<uint16_t>(), args.out.data<uint16_t>(), rows, w, c);
      break;
    case 4:
      upsample_rows(x.data<uint32_t>(), args.out.data<uint32_t>(), rows, w, c);
      break;
    case 8:
      upsample_rows(x.data<uint64_t>(), args.out.data<uint64_t>(), rows, w, c);
      break;
    default:
      DR_ASSERT(false, "element size ", dtype_size(x.dtype()));
  }
}

}  // namespace darkroom::cpu
