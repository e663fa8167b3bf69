// Device-side helpers shared by the .cu kernels: f32 load/store for the three compute
// dtypes, a dtype switch that instantiates a kernel per element type, warp/block
// reductions and launch sizing.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "core/dtype.h"

namespace darkroom::cuda {

__device__ __forceinline__ float load_f32(const float* p, int64_t i) {
  return p[i];
}
__device__ __forceinline__ float load_f32(const __half* p, int64_t i) {
  return __half2float(p[i]);
}
__device__ __forceinline__ float load_f32(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}

__device__ __forceinline__ void store_f32(float* p, int64_t i, float v) {
  p[i] = v;
}
__device__ __forceinline__ void store_f32(__half* p, int64_t i, float v) {
  p[i] = __float2half_rn(v);
}
__device__ __forceinline__ void store_f32(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

// DR_CUDA_DISPATCH(dtype, "op", T, body): runs body with T = float, __half or
// __nv_bfloat16.
#define DR_CUDA_DISPATCH(dtype, op, T, ...)                                                       \
  switch (dtype) {                                                                                \
    case ::darkroom::DType::F32: {                                                                \
      using T = float;                                                                            \
      __VA_ARGS__;                                                                                \
      break;                                                                                      \
    }                                                                                             \
    case ::darkroom::DType::F16: {                                                                \
      using T = __half;                                                                           \
      __VA_ARGS__;                                                                                \
      break;                                                                                      \
    }                                                                                             \
    case ::darkroom::DType::BF16: {                                                               \
      using T = __nv_bfloat16;                                                                    \
      __VA_ARGS__;                                                                                \
      break;                                                                                      \
    }                                                                                             \
    default:                                                                                      \
      ::darkroom::fail(op, "the CUDA kernel has no ", ::darkroom::dtype_name(dtype), " variant"); \
  }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide reductions for blockDim.x a multiple of 32 (≤ 1024); every thread gets
// the result. `shared` holds 32 values.
template <class V>
__device__ __forceinline__ V block_sum(V v, V* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // shared may still be read by a previous reduction
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  V r = lane < warps ? shared[lane] : V(0);
  return warp_sum(r);
}
__device__ __forceinline__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float r = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(r);
}

// Blocks for a grid-stride loop over n items with `threads` per block.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > 65535LL * 16) blocks = 65535LL * 16;
  return static_cast<unsigned>(blocks);
}

}  // namespace darkroom::cuda
