// Embedding lookup: ids [M] (i32 or i64) → out [M, C] = table[ids], table [V, C].
// Every id is checked on the calling thread before any copying, so a bad id is a plain
// darkroom::Error from here rather than one rethrown out of the pool.
#include <algorithm>
#include <cstring>

#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {
namespace {

template <class Id>
void lookup(const Id* ids, const EmbeddingArgs& args) {
  const int64_t m = args.ids.numel();
  const int64_t vocab = args.table.dim(0);
  for (int64_t i = 0; i < m; ++i)
    DR_CHECK(ids[i] >= 0 && ids[i] < vocab, "embedding", "id ", static_cast<int64_t>(ids[i]),
             " is out of range for a table of ", vocab, " rows");

  const size_t row_bytes = static_cast<size_t>(args.table.dim(1)) * dtype_size(args.table.dtype());
  if (row_bytes == 0) return;
  const char* table = static_cast<const char*>(args.table.raw());
  char* out = static_cast<char*>(args.out.raw());
  ThreadPool::global().parallel_for(
      m,
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
          std::memcpy(out + static_cast<size_t>(i) * row_bytes,
                      table + static_cast<size_t>(ids[i]) * row_bytes, row_bytes);
      },
      std::max<int64_t>(1, static_cast<int64_t>((size_t{64} << 10) / row_bytes)));
}

}  // namespace

void embedding(const EmbeddingArgs& args) {
  if (args.ids.dtype() == DType::I32)
    lookup(args.ids.data<int32_t>(), args);
  else
    lookup(args.ids.data<int64_t>(), args);
}

}  // namespace darkroom::cpu
