// How the CPU attention kernel tiles a problem, and the scratch memory that costs.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace darkroom::cpu {

struct AttentionPlan {
  int64_t q_block;        // query rows per work item
  int64_t k_block;        // key rows per tile of the inner loop
  int64_t items;          // work items: batch × heads × query tiles
  int64_t per_thread;     // scratch bytes of one thread: scores, probabilities, accumulator
  int64_t scratch_bytes;  // per_thread × threads (oneDNN's own scratchpad not included)
};

// Work items are (batch item, head, query tile), run in parallel, each by one thread with
// single-threaded oneDNN calls on its own scratch: q_block × k_block f32 scores (at most
// 512 KiB, sized to stay in L2) and a q_block × Dv f32 accumulator. Query tiles shrink
// (down to 16 rows) until there are a few items per thread. Scratch is bounded by
// threads × per_thread whatever the token count, never tokens².
AttentionPlan plan_attention(int64_t batch, int64_t heads, int64_t nq, int64_t nk, int64_t dv,
                             DType dtype, int threads);

}  // namespace darkroom::cpu
