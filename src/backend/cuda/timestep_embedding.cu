// Sinusoidal timestep embedding, t [B] f32 → out [B, dim], rounded step by step in f32
// exactly as backend/cpu/timestep_embedding.cpp (and diffusers) do; sin/cos of the f32
// argument are evaluated in double so that large arguments (t ≈ 1000) stay exact.
#include <cmath>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/kernels.h"

namespace darkroom::cuda {
namespace {

template <class T>
__global__ void timestep_kernel(const float* t, T* out, int64_t batch, int64_t dim,
                                float neg_log_period, float denom, bool flip) {
  const int64_t half = dim / 2;
  const int64_t total = batch * dim;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t b = i / dim, col = i % dim;
    if (col >= 2 * half) {
      store_f32(out, i, 0.0f);  // odd dim: zero pad
      continue;
    }
    const int64_t k = col < half ? col : col - half;
    // __fdiv_rn / __fmul_rn: no contraction into FMA, to round like the CPU.
    const float exponent = __fdiv_rn(__fmul_rn(neg_log_period, static_cast<float>(k)), denom);
    const float freq = static_cast<float>(exp(static_cast<double>(exponent)));
    const float arg = __fmul_rn(t[b], freq);
    const bool first = col < half;
    const bool use_cos = first == flip;
    const double v = use_cos ? cos(static_cast<double>(arg)) : sin(static_cast<double>(arg));
    store_f32(out, i, static_cast<float>(v));
  }
}

}  // namespace

void timestep_embedding(const TimestepEmbeddingArgs& args) {
  const int64_t batch = args.out.dim(0), dim = args.out.dim(1);
  if (batch * dim == 0) return;
  cudaStream_t stream = stream_for(args.t);
  const float neg_log_period = static_cast<float>(-std::log(static_cast<double>(args.max_period)));
  const float denom = static_cast<float>(dim / 2) - args.downscale_freq_shift;
  DR_CUDA_DISPATCH(args.out.dtype(), "timestep_embedding", T,
                   timestep_kernel<T><<<grid_for(batch * dim, 256), 256, 0, stream>>>(
                       args.t.data<float>(), args.out.data<T>(), batch, dim, neg_log_period, denom,
                       args.flip_sin_to_cos));
  CUDA_CHECK_LAUNCH();
}

}  // namespace darkroom::cuda
