// How the CPU attention kernel tiles a problem, and the scratch memory that costs.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace darkroom::cpu {

struct AttentionPlan {
  int64_t q_block;        // query rows per tile
  int64_t k_block;        // key rows per tile
  int64_t scratch_bytes;  // scores, probabilities, accumulator and row statistics
};

// Tiles are sized so that one batch item's H heads × q_block × k_block f32 scores stay
// within 32 MB and its accumulator within 8 MB: scratch is bounded (under 64 MB with the
// bf16 copy of the scores) whatever the token count, never tokens².
AttentionPlan plan_attention(int64_t heads, int64_t nq, int64_t nk, int64_t dv, DType dtype);

}  // namespace darkroom::cpu
