// Group normalisation (+ optional SiLU) over x [N, S, C] with channels last: group g
// of sample n holds the S × C/G values x[n, :, g·C/G : (g+1)·C/G].
//
// Three launches: partial sums over chunks of each group (so that N·G groups still
// fill the GPU), a tiny combine into (mean, rstd), and the elementwise apply. Sums are
// taken relative to the group's first value (a shift that removes the cancellation of
// E[x²] − E[x]² when |mean| ≫ std), per thread in f32 and across threads in f64.
#include <algorithm>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/kernels.h"

namespace darkroom::cuda {
namespace {

constexpr int kThreads = 256;

struct GroupShape {
  int64_t s, c, cg, groups, elems;  // elems = s · cg per group
};

__device__ __forceinline__ int64_t group_offset(const GroupShape& g, int64_t n, int64_t grp,
                                                int64_t e) {
  const int64_t s = e / g.cg, j = e % g.cg;
  return (n * g.s + s) * g.c + grp * g.cg + j;
}

// grid (N·G, chunks): partial[(ng · chunks + chunk) · 2 + {0, 1}] = Σ(x−K), Σ(x−K)²
template <class T>
__global__ void group_stats_kernel(const T* x, GroupShape g, int chunks, double* partial) {
  __shared__ double red[32];
  const int64_t ng = blockIdx.x, n = ng / g.groups, grp = ng % g.groups;
  const int64_t per = (g.elems + chunks - 1) / chunks;
  const int64_t e0 = blockIdx.y * per, e1 = min(g.elems, e0 + per);
  const float shift = load_f32(x, group_offset(g, n, grp, 0));
  float s = 0, ss = 0;
  for (int64_t e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
    const float d = load_f32(x, group_offset(g, n, grp, e)) - shift;
    s += d;
    ss += d * d;
  }
  const double ts = block_sum(static_cast<double>(s), red);
  const double tss = block_sum(static_cast<double>(ss), red);
  if (threadIdx.x == 0) {
    partial[(ng * chunks + blockIdx.y) * 2] = ts;
    partial[(ng * chunks + blockIdx.y) * 2 + 1] = tss;
  }
}

// One thread per (n, g): stats[ng · 2 + {0, 1}] = mean, 1/sqrt(var + eps)
template <class T>
__global__ void group_combine_kernel(const T* x, GroupShape g, int chunks, int64_t count,
                                     const double* partial, float eps, float* stats) {
  const int64_t ng = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (ng >= count) return;
  double s = 0, ss = 0;
  for (int i = 0; i < chunks; ++i) {
    s += partial[(ng * chunks + i) * 2];
    ss += partial[(ng * chunks + i) * 2 + 1];
  }
  const double shift = load_f32(x, group_offset(g, ng / g.groups, ng % g.groups, 0));
  const double inv = 1.0 / static_cast<double>(g.elems);
  const double dmean = s * inv;
  const double var = fmax(ss * inv - dmean * dmean, 0.0);
  stats[ng * 2] = static_cast<float>(shift + dmean);
  stats[ng * 2 + 1] = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
}

template <class T>
__global__ void group_apply_kernel(const T* x, const T* weight, const T* bias, T* out, GroupShape g,
                                   int64_t total, const float* stats, bool silu) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t ch = i % g.c, n = i / (g.s * g.c);
    const int64_t ng = n * g.groups + ch / g.cg;
    float y = (load_f32(x, i) - stats[ng * 2]) * stats[ng * 2 + 1];
    if (weight) y *= load_f32(weight, ch);
    if (bias) y += load_f32(bias, ch);
    if (silu) y = y / (1.0f + expf(-y));
    store_f32(out, i, y);
  }
}

template <class T>
const T* opt(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void group_norm(const GroupNormArgs& args) {
  const Tensor& x = args.x;
  const int64_t n = x.dim(0);
  GroupShape g{x.dim(1), x.dim(2), x.dim(2) / args.groups, args.groups, 0};
  g.elems = g.s * g.cg;
  if (x.numel() == 0) return;
  const int64_t ngroups = n * g.groups;
  DR_CHECK(ngroups < (int64_t{1} << 31), "group_norm", "too many groups for one launch");
  // Enough blocks to fill the GPU several times over, but chunks of ≥ 2048 values.
  const int chunks = static_cast<int>(std::clamp<int64_t>(
      std::min<int64_t>((1024 + ngroups - 1) / ngroups, (g.elems + 2047) / 2048), 1, 65535));
  cudaStream_t stream = stream_for(x);
  Tensor partial = scratch(x, {ngroups * chunks * 2}, DType::F64);
  Tensor stats = scratch(x, {ngroups * 2}, DType::F32);
  const dim3 stats_grid(static_cast<unsigned>(ngroups), static_cast<unsigned>(chunks));
  DR_CUDA_DISPATCH(
      x.dtype(), "group_norm", T,
      group_stats_kernel<T>
      <<<stats_grid, kThreads, 0, stream>>>(x.data<T>(), g, chunks, partial.data<double>());
      CUDA_CHECK_LAUNCH(); group_combine_kernel<T><<<grid_for(ngroups, 128), 128, 0, stream>>>(
          x.data<T>(), g, chunks, ngroups, partial.data<double>(), args.eps, stats.data<float>());
      CUDA_CHECK_LAUNCH();
      group_apply_kernel<T><<<grid_for(x.numel(), kThreads), kThreads, 0, stream>>>(
          x.data<T>(), opt<T>(args.weight), opt<T>(args.bias), args.out.data<T>(), g, x.numel(),
          stats.data<float>(), args.silu));
  CUDA_CHECK_LAUNCH();
}

}  // namespace darkroom::cuda
