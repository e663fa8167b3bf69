// Bilinear / bicubic resize in NHWC with PyTorch's align_corners=False semantics, the
// same taps as backend/cpu/resize.cpp: src = (dst + 0.5) · in/out − 0.5; bilinear
// clamps src < 0 to 0 and the upper tap to the border; bicubic (A = −0.75) takes
// floor(src)−1 … floor(src)+2 clamped to the border. One thread per output value.
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/kernels.h"

namespace darkroom::cuda {
namespace {

constexpr float kCubicA = -0.75f;

__device__ __forceinline__ float cubic_near(float x) {
  return ((kCubicA + 2) * x - (kCubicA + 3)) * x * x + 1;
}
__device__ __forceinline__ float cubic_far(float x) {
  return ((kCubicA * x - 5 * kCubicA) * x + 8 * kCubicA) * x - 4 * kCubicA;
}

// The taps of output position o along one axis.
__device__ __forceinline__ int axis_taps(int64_t o, int64_t in, float scale, bool cubic,
                                         int64_t* idx, float* w) {
  float src = __fmul_rn(scale, static_cast<float>(o) + 0.5f) - 0.5f;
  if (!cubic) {
    src = fmaxf(src, 0.0f);
    const int64_t i0 = min(static_cast<int64_t>(src), in - 1);
    const float l1 = src - static_cast<float>(i0);
    idx[0] = i0;
    idx[1] = i0 + (i0 < in - 1 ? 1 : 0);
    w[0] = 1.0f - l1;
    w[1] = l1;
    return 2;
  }
  const float f = floorf(src);
  const float frac = src - f;
  const int64_t i = static_cast<int64_t>(f);
  w[0] = cubic_far(frac + 1.0f);
  w[1] = cubic_near(frac);
  w[2] = cubic_near(1.0f - frac);
  w[3] = cubic_far(2.0f - frac);
  for (int k = 0; k < 4; ++k) idx[k] = min(max(i - 1 + k, int64_t{0}), in - 1);
  return 4;
}

template <class T>
__global__ void resize_kernel(const T* x, T* out, int64_t h, int64_t w, int64_t c, int64_t ho,
                              int64_t wo, float scale_y, float scale_x, bool cubic, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t ch = i % c;
    int64_t r = i / c;
    const int64_t ox = r % wo;
    r /= wo;
    const int64_t oy = r % ho, n = r / ho;
    int64_t iy[4], ix[4];
    float wy[4], wx[4];
    const int ty = axis_taps(oy, h, scale_y, cubic, iy, wy);
    const int tx = axis_taps(ox, w, scale_x, cubic, ix, wx);
    float acc = 0;
    for (int a = 0; a < ty; ++a)
      for (int b = 0; b < tx; ++b)
        acc += wy[a] * wx[b] * load_f32(x, ((n * h + iy[a]) * w + ix[b]) * c + ch);
    store_f32(out, i, acc);
  }
}

}  // namespace

void resize(const ResizeArgs& args) {
  const Tensor& x = args.x;
  const int64_t total = args.out.numel();
  if (total == 0) return;
  const int64_t h = x.dim(1), w = x.dim(2), ho = args.out.dim(1), wo = args.out.dim(2);
  const float scale_y = static_cast<float>(h) / static_cast<float>(ho);
  const float scale_x = static_cast<float>(w) / static_cast<float>(wo);
  cudaStream_t stream = stream_for(x);
  DR_CUDA_DISPATCH(x.dtype(), "resize", T,
                   resize_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(
                       x.data<T>(), args.out.data<T>(), h, w, x.dim(3), ho, wo, scale_y, scale_x,
                       args.mode == ResizeMode::Bicubic, total));
  CUDA_CHECK_LAUNCH();
}

}  // namespace darkroom::cuda
