// Row-wise kernels over x [M, C]: layer_norm, rms_norm and softmax. One block per row;
// statistics in f32 with two passes over the row (the second read hits L1/L2), which
// keeps the variance free of the cancellation that E[x²] − E[x]² suffers.
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/kernels.h"

namespace darkroom::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void layer_norm_kernel(const T* x, const T* weight, const T* bias, T* out, int64_t c,
                                  float eps) {
  __shared__ float red[32];
  const T* row = x + blockIdx.x * c;
  T* orow = out + blockIdx.x * c;
  float s = 0;
  for (int64_t i = threadIdx.x; i < c; i += blockDim.x) s += load_f32(row, i);
  const float mean = block_sum(s, red) / static_cast<float>(c);
  float v = 0;
  for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
    const float d = load_f32(row, i) - mean;
    v += d * d;
  }
  const float rstd = rsqrtf(block_sum(v, red) / static_cast<float>(c) + eps);
  for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
    float y = (load_f32(row, i) - mean) * rstd;
    if (weight) y *= load_f32(weight, i);
    if (bias) y += load_f32(bias, i);
    store_f32(orow, i, y);
  }
}

template <class T>
__global__ void rms_norm_kernel(const T* x, const T* weight, T* out, int64_t c, float eps) {
  __shared__ float red[32];
  const T* row = x + blockIdx.x * c;
  T* orow = out + blockIdx.x * c;
  float s = 0;
  for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
    const float v = load_f32(row, i);
    s += v * v;
  }
  const float rstd = rsqrtf(block_sum(s, red) / static_cast<float>(c) + eps);
  for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
    float y = load_f32(row, i) * rstd;
    if (weight) y *= load_f32(weight, i);
    store_f32(orow, i, y);
  }
}

template <class T>
__global__ void softmax_kernel(const T* x, T* out, int64_t c) {
  __shared__ float red[32];
  const T* row = x + blockIdx.x * c;
  T* orow = out + blockIdx.x * c;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < c; i += blockDim.x) m = fmaxf(m, load_f32(row, i));
  m = block_max(m, red);
  float s = 0;
  for (int64_t i = threadIdx.x; i < c; i += blockDim.x) s += expf(load_f32(row, i) - m);
  const float inv = 1.0f / block_sum(s, red);
  for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
    store_f32(orow, i, expf(load_f32(row, i) - m) * inv);
}

template <class T>
const T* opt(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Rows go to grid.x, which allows 2³¹−1 blocks.
unsigned rows_grid(int64_t m) {
  DR_CHECK(m < (int64_t{1} << 31), "cuda", m, " rows exceed one launch");
  return static_cast<unsigned>(m);
}

}  // namespace

void layer_norm(const LayerNormArgs& args) {
  const int64_t m = args.x.dim(0), c = args.x.dim(1);
  if (m == 0 || c == 0) return;
  cudaStream_t stream = stream_for(args.x);
  DR_CUDA_DISPATCH(args.x.dtype(), "layer_norm", T,
                   layer_norm_kernel<T><<<rows_grid(m), kThreads, 0, stream>>>(
                       args.x.data<T>(), opt<T>(args.weight), opt<T>(args.bias), args.out.data<T>(),
                       c, args.eps));
  CUDA_CHECK_LAUNCH();
}

void rms_norm(const RmsNormArgs& args) {
  const int64_t m = args.x.dim(0), c = args.x.dim(1);
  if (m == 0 || c == 0) return;
  cudaStream_t stream = stream_for(args.x);
  DR_CUDA_DISPATCH(args.x.dtype(), "rms_norm", T,
                   rms_norm_kernel<T><<<rows_grid(m), kThreads, 0, stream>>>(
                       args.x.data<T>(), opt<T>(args.weight), args.out.data<T>(), c, args.eps));
  CUDA_CHECK_LAUNCH();
}

void softmax(const SoftmaxArgs& args) {
  const int64_t m = args.x.dim(0), c = args.x.dim(1);
  if (m == 0 || c == 0) return;
  cudaStream_t stream = stream_for(args.x);
  DR_CUDA_DISPATCH(args.x.dtype(), "softmax", T,
                   softmax_kernel<T><<<rows_grid(m), kThreads, 0, stream>>>(args.x.data<T>(),
                                                                            args.out.data<T>(), c));
  CUDA_CHECK_LAUNCH();
}

}  // namespace darkroom::cuda
