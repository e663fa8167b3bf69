// cast: any float dtype (f32, f16, bf16, f64, fp8 e4m3/e5m2) → a compute dtype, via f32.
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/kernels.h"

namespace darkroom::cuda {
namespace {

constexpr int kThreads = 256;

// Source formats beyond the compute dtypes, read as raw bits.
struct F8E4M3 {
  uint8_t bits;
};
struct F8E5M2 {
  uint8_t bits;
};

__device__ __forceinline__ float read_f32(const float* p, int64_t i) {
  return load_f32(p, i);
}
__device__ __forceinline__ float read_f32(const __half* p, int64_t i) {
  return load_f32(p, i);
}
__device__ __forceinline__ float read_f32(const __nv_bfloat16* p, int64_t i) {
  return load_f32(p, i);
}
__device__ __forceinline__ float read_f32(const double* p, int64_t i) {
  return static_cast<float>(p[i]);
}
// OCP E4M3 "fn": bias 7, no infinities, S.1111.111 is NaN; exact in f32.
__device__ __forceinline__ float read_f32(const F8E4M3* p, int64_t i) {
  const uint32_t b = p[i].bits, sign = b >> 7, e = (b >> 3) & 15u, m = b & 7u;
  float v;
  if (e == 15 && m == 7)
    v = __int_as_float(0x7fc00000);
  else if (e == 0)
    v = ldexpf(static_cast<float>(m), -9);  // subnormal: m · 2^-6 · 2^-3
  else
    v = ldexpf(1.0f + static_cast<float>(m) * 0.125f, static_cast<int>(e) - 7);
  return sign ? -v : v;
}
// E5M2 is the top byte of an IEEE half.
__device__ __forceinline__ float read_f32(const F8E5M2* p, int64_t i) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(p[i].bits << 8)));
}

template <class S, class D>
__global__ void cast_kernel(const S* x, D* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    store_f32(out, i, read_f32(x, i));
}

template <class S>
void cast_from(const Tensor& x, const Tensor& out, cudaStream_t stream) {
  const int64_t n = x.numel();
  DR_CUDA_DISPATCH(out.dtype(), "cast", D,
                   cast_kernel<S, D><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
                       static_cast<const S*>(x.raw()), out.data<D>(), n));
}

}  // namespace

void cast(const CastArgs& args) {
  const Tensor& x = args.x;
  if (x.numel() == 0) return;
  cudaStream_t stream = stream_for(x);
  switch (x.dtype()) {
    case DType::F32:
      cast_from<float>(x, args.out, stream);
      break;
    case DType::F16:
      cast_from<__half>(x, args.out, stream);
      break;
    case DType::BF16:
      cast_from<__nv_bfloat16>(x, args.out, stream);
      break;
    case DType::F64:
      cast_from<double>(x, args.out, stream);
      break;
    case DType::F8E4M3:
      cast_from<F8E4M3>(x, args.out, stream);
      break;
    case DType::F8E5M2:
      cast_from<F8E5M2>(x, args.out, stream);
      break;
    default:
      fail("cast", "cannot cast ", dtype_name(x.dtype()), " on CUDA");
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace darkroom::cuda
