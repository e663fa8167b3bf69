// im2col for NHWC: the fallback convolution (im2col + GEMM) used when cuDNN has no
// working algorithm for a shape. Row r = (n, oy, ox) of cols holds the receptive
// field in KRSC order, so cols [N·Ho·Wo, kh·kw·C] · weight_krsc[O, kh·kw·C]ᵀ is the
// convolution.
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/kernels.h"

namespace darkroom::cuda {
namespace {

struct Im2colShape {
  int64_t h, w, c, ho, wo;
  int kh, kw, sh, sw, ph, pw;
};

template <class T>
__global__ void im2col_kernel(const T* x, T* cols, Im2colShape s, int64_t total) {
  const int64_t width = int64_t{s.kh} * s.kw * s.c;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = i / width, col = i % width;
    const int64_t ch = col % s.c, kx = (col / s.c) % s.kw, ky = col / (s.c * s.kw);
    const int64_t ox = row % s.wo, oy = (row / s.wo) % s.ho, n = row / (s.wo * s.ho);
    const int64_t iy = oy * s.sh - s.ph + ky, ix = ox * s.sw - s.pw + kx;
    const bool inside = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
    cols[i] = inside ? x[((n * s.h + iy) * s.w + ix) * s.c + ch] : T(0.0f);
  }
}

}  // namespace

void im2col(const Conv2dArgs& args, const Tensor& cols) {
  const Tensor& x = args.x;
  const int64_t total = cols.numel();
  if (total == 0) return;
  const Im2colShape s{x.dim(1),
                      x.dim(2),
                      x.dim(3),
                      args.out.dim(1),
                      args.out.dim(2),
                      static_cast<int>(args.weight.dim(2)),
                      static_cast<int>(args.weight.dim(3)),
                      args.stride_h,
                      args.stride_w,
                      args.pad_h,
                      args.pad_w};
  cudaStream_t stream = stream_for(x);
  DR_CUDA_DISPATCH(x.dtype(), "conv2d", T,
                   im2col_kernel<T><<<grid_for(total, 256), 256, 0, stream>>>(
                       x.data<T>(), cols.data<T>(), s, total));
  CUDA_CHECK_LAUNCH();
}

}  // namespace darkroom::cuda
