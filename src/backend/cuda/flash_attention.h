// Tensor-core attention forward (flash_attention_sm80.cu) for f16/bf16 with Dv = D ≤
// kFlashMaxHeadDim; attention.cu calls it when flash_attention_supported() and keeps
// its CUDA-core kernel for everything else (f32, Dv ≠ D, larger heads).
#pragma once

#include "backend/op_args.h"

namespace darkroom::cuda {

constexpr int kFlashMaxHeadDim = 128;

bool flash_attention_supported(const AttentionArgs& args);

// Same contract as attention() (args.scale is already resolved by ops::attention).
void flash_attention(const AttentionArgs& args);

}  // namespace darkroom::cuda
