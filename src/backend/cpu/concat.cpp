// Concatenation along one axis. Viewing every tensor as [outer, dim(axis), inner], an
// output row o is the inputs' rows o laid end to end, so the whole op is memcpy of
// contiguous runs of dim_i(axis)·inner elements.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {

void concat(const ConcatArgs& args) {
  const Tensor& out = args.out;
  if (out.numel() == 0) return;
  const int axis = args.axis;
  const size_t elem = dtype_size(out.dtype());

  int64_t outer = 1;
  for (int d = 0; d < axis; ++d) outer *= out.dim(d);
  int64_t inner = 1;
  for (int d = axis + 1; d < out.ndim(); ++d) inner *= out.dim(d);

  // Per input: its run length in bytes and where that run starts inside an out row.
  const size_t n_inputs = args.inputs.size();
  std::vector<const char*> src(n_inputs);
  std::vector<size_t> run_bytes(n_inputs), offset(n_inputs);
  size_t out_row_bytes = 0;
  for (size_t i = 0; i < n_inputs; ++i) {
    src[i] = static_cast<const char*>(args.inputs[i].raw());
    run_bytes[i] = static_cast<size_t>(args.inputs[i].dim(axis) * inner) * elem;
    offset[i] = out_row_bytes;
    out_row_bytes += run_bytes[i];
  }
  DR_ASSERT(out_row_bytes == static_cast<size_t>(out.dim(axis) * inner) * elem);
  char* dst = static_cast<char*>(out.raw());

  // One work item per (outer row, input): with axis 0 there is a single outer row and
  // the inputs themselves are the parallel pieces. Chunks of ≥ 256 KiB keep the pool's
  // hand-off cost small against the copy.
  const int64_t items = outer * static_cast<int64_t>(n_inputs);
  const int64_t bytes_per_item = static_cast<int64_t>(out_row_bytes / n_inputs) + 1;
  const int64_t min_chunk = std::max<int64_t>(1, (int64_t{256} << 10) / bytes_per_item);
  ThreadPool::global().parallel_for(
      items,
      [&](int64_t begin, int64_t end) {
        for (int64_t it = begin; it < end; ++it) {
          const int64_t o = it / static_cast<int64_t>(n_inputs);
          const size_t i = static_cast<size_t>(it % static_cast<int64_t>(n_inputs));
          if (run_bytes[i] == 0) continue;
          std::memcpy(dst + static_cast<size_t>(o) * out_row_bytes + offset[i],
                      src[i] + static_cast<size_t>(o) * run_bytes[i], run_bytes[i]);
        }
      },
      min_chunk);
}

}  // namespace darkroom::cpu
