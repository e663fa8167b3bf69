// Strided slice along one axis, any dtype. Viewing x as [outer, n_in, inner] and out as
// [outer, n_out, inner]: out[o, k, :] = x[o, start + k·step, :]. With step 1 each outer
// index is one contiguous run; otherwise each (o, k) is a run of `inner` elements, and
// when inner is a single element the runs become a typed strided gather.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {
namespace {

// out[o, k] = x[o, start + k·step] for single-element rows.
template <class T>
void gather(const T* x, T* out, int64_t outer, int64_t n_in, int64_t n_out, int64_t start,
            int64_t step) {
  ThreadPool::global().parallel_for(
      outer,
      [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) {
          const T* s = x + o * n_in + start;
          T* d = out + o * n_out;
          for (int64_t k = 0; k < n_out; ++k) d[k] = s[k * step];
        }
      },
      std::max<int64_t>(1, 16384 / n_out));
}

}  // namespace

void slice(const SliceArgs& args) {
  const Tensor& x = args.x;
  const Tensor& out = args.out;
  if (out.numel() == 0) return;
  const int axis = args.axis;
  const int64_t elem = static_cast<int64_t>(dtype_size(x.dtype()));
  int64_t outer = 1;
  for (int d = 0; d < axis; ++d) outer *= x.dim(d);
  int64_t inner = 1;
  for (int d = axis + 1; d < x.ndim(); ++d) inner *= x.dim(d);
  const int64_t n_in = x.dim(axis), n_out = out.dim(axis);
  const int64_t start = args.start, step = args.step;

  if (step > 1 && inner == 1) {
    switch (elem) {
      case 1:
        return gather(x.data<uint8_t>(), out.data<uint8_t>(), outer, n_in, n_out, start, step);
      case 2:
        return gather(x.data<uint16_t>(), out.data<uint16_t>(), outer, n_in, n_out, start, step);
      case 4:
        return gather(x.data<uint32_t>(), out.data<uint32_t>(), outer, n_in, n_out, start, step);
      case 8:
        return gather(x.data<uint64_t>(), out.data<uint64_t>(), outer, n_in, n_out, start, step);
      default:
        DR_ASSERT(false, "element size ", elem);
    }
  }

  // Runs of `run` bytes: one per outer index (step 1) or one per (outer, k).
  const int64_t runs_per_outer = step == 1 ? 1 : n_out;
  const int64_t run = (step == 1 ? n_out : 1) * inner * elem;
  const int64_t in_row = n_in * inner * elem;
  const int64_t step_bytes = step * inner * elem;
  const char* src = static_cast<const char*>(x.raw()) + start * inner * elem;
  char* dst = static_cast<char*>(out.raw());
  ThreadPool::global().parallel_for(
      outer * runs_per_outer,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t o = r / runs_per_outer, k = r % runs_per_outer;
          std::memcpy(dst + r * run, src + o * in_row + k * step_bytes, static_cast<size_t>(run));
        }
      },
      std::max<int64_t>(1, (int64_t{256} << 10) / run));
}

}  // namespace darkroom::cpu
