// Ops that only move elements: concat, upsample_nearest2x, permute, slice and
// embedding. They work on raw element bits (1, 2, 4 or 8 bytes), so every dtype is
// handled by four instantiations.
#include <vector>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/kernels.h"

namespace darkroom::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxRank = 8;

#define DR_CUDA_DISPATCH_BITS(size, op, E, ...)                \
  switch (size) {                                              \
    case 1: {                                                  \
      using E = uint8_t;                                       \
      __VA_ARGS__;                                             \
      break;                                                   \
    }                                                          \
    case 2: {                                                  \
      using E = uint16_t;                                      \
      __VA_ARGS__;                                             \
      break;                                                   \
    }                                                          \
    case 4: {                                                  \
      using E = uint32_t;                                      \
      __VA_ARGS__;                                             \
      break;                                                   \
    }                                                          \
    case 8: {                                                  \
      using E = uint64_t;                                      \
      __VA_ARGS__;                                             \
      break;                                                   \
    }                                                          \
    default:                                                   \
      ::darkroom::fail(op, "unsupported element size ", size); \
  }

// x [N, H, W, C] → out [N, 2H, 2W, C]
template <class E>
__global__ void upsample2x_kernel(const E* x, E* out, int64_t h, int64_t w, int64_t c,
                                  int64_t total) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t ch = i % c;
    int64_t r = i / c;
    const int64_t ox = r % (2 * w);
    r /= 2 * w;
    const int64_t oy = r % (2 * h), n = r / (2 * h);
    out[i] = x[((n * h + oy / 2) * w + ox / 2) * c + ch];
  }
}

struct PermuteShape {
  int rank;
  int64_t out_dims[kMaxRank];
  int64_t in_strides[kMaxRank];  // stride in x of out's dimension d
};

template <class E>
__global__ void permute_kernel(const E* x, E* out, PermuteShape p, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t rem = i, src = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      src += (rem % p.out_dims[d]) * p.in_strides[d];
      rem /= p.out_dims[d];
    }
    out[i] = x[src];
  }
}

// out [outer, len, inner] = x[outer, start + i·step, inner] with x [outer, n, inner]
template <class E>
__global__ void slice_kernel(const E* x, E* out, int64_t n, int64_t len, int64_t inner,
                             int64_t start, int64_t step, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i % inner, j = (i / inner) % len, o = i / (inner * len);
    out[i] = x[(o * n + start + j * step) * inner + r];
  }
}

template <class E, class Id>
__global__ void embedding_kernel(const Id* ids, const E* table, E* out, int64_t c, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = i / c;
    out[i] = table[static_cast<int64_t>(ids[row]) * c + i % c];
  }
}

}  // namespace

void concat(const ConcatArgs& args) {
  const Tensor& out = args.out;
  if (out.numel() == 0) return;
  cudaStream_t stream = stream_for(out);
  const size_t elem = dtype_size(out.dtype());
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < args.axis; ++d) outer *= out.dim(d);
  for (int d = args.axis + 1; d < out.ndim(); ++d) inner *= out.dim(d);
  // Each input is a 2-D block [outer, its_len · inner] placed at a column offset of
  // out's rows [outer, out_len · inner]: one strided 2-D copy per input.
  const size_t out_row = static_cast<size_t>(out.dim(args.axis) * inner) * elem;
  size_t col = 0;
  for (const Tensor& t : args.inputs) {
    const size_t row = static_cast<size_t>(t.dim(args.axis) * inner) * elem;
    if (row == 0 || outer == 0) {
    } else if (outer == 1) {
      CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(out.raw()) + col, t.raw(), row,
                                 cudaMemcpyDeviceToDevice, stream));
    } else {
      CUDA_CHECK(cudaMemcpy2DAsync(static_cast<char*>(out.raw()) + col, out_row, t.raw(), row, row,
                                   static_cast<size_t>(outer), cudaMemcpyDeviceToDevice, stream));
    }
    col += row;
  }
}

void upsample_nearest2x(const UpsampleNearest2xArgs& args) {
  const int64_t total = args.out.numel();
  if (total == 0) return;
  cudaStream_t stream = stream_for(args.x);
  const Tensor& x = args.x;
  DR_CUDA_DISPATCH_BITS(dtype_size(x.dtype()), "upsample_nearest2x", E,
                        upsample2x_kernel<E><<<grid_for(total, kThreads), kThreads, 0, stream>>>(
                            x.data<E>(), args.out.data<E>(), x.dim(1), x.dim(2), x.dim(3), total));
  CUDA_CHECK_LAUNCH();
}

void permute_into(const Tensor& x, const Tensor& out, const std::vector<int>& axes) {
  const int64_t total = out.numel();
  if (total == 0) return;
  DR_CHECK(x.ndim() <= kMaxRank, "permute", "rank ", x.ndim(), " exceeds the CUDA kernel's ",
           kMaxRank);
  cudaStream_t stream = stream_for(x);
  int64_t strides[kMaxRank];
  int64_t s = 1;
  for (int d = x.ndim() - 1; d >= 0; --d) {
    strides[d] = s;
    s *= x.dim(d);
  }
  PermuteShape p{};
  p.rank = x.ndim();
  for (int d = 0; d < p.rank; ++d) {
    p.out_dims[d] = x.dim(axes[static_cast<size_t>(d)]);
    p.in_strides[d] = strides[axes[static_cast<size_t>(d)]];
  }
  DR_CUDA_DISPATCH_BITS(dtype_size(x.dtype()), "permute", E,
                        permute_kernel<E><<<grid_for(total, kThreads), kThreads, 0, stream>>>(
                            x.data<E>(), out.data<E>(), p, total));
  CUDA_CHECK_LAUNCH();
}

void permute(const PermuteArgs& args) {
  permute_into(args.x, args.out, args.axes);
}

void slice(const SliceArgs& args) {
  const int64_t total = args.out.numel();
  if (total == 0) return;
  const Tensor& x = args.x;
  int64_t inner = 1;
  for (int d = args.axis + 1; d < x.ndim(); ++d) inner *= x.dim(d);
  const int64_t n = x.dim(args.axis), len = args.out.dim(args.axis);
  cudaStream_t stream = stream_for(x);
  DR_CUDA_DISPATCH_BITS(
      dtype_size(x.dtype()), "slice", E,
      slice_kernel<E><<<grid_for(total, kThreads), kThreads, 0, stream>>>(
          x.data<E>(), args.out.data<E>(), n, len, inner, args.start, args.step, total));
  CUDA_CHECK_LAUNCH();
}

void embedding(const EmbeddingArgs& args) {
  const int64_t m = args.ids.numel(), vocab = args.table.dim(0), c = args.table.dim(1);
  if (m == 0) return;
  cudaStream_t stream = stream_for(args.table);
  // Ids are few (a prompt's tokens): check them on the host so that a bad id is an
  // error rather than an out-of-bounds read.
  const bool i32 = args.ids.dtype() == DType::I32;
  std::vector<int64_t> host(static_cast<size_t>(m));
  if (i32) {
    std::vector<int32_t> h32(static_cast<size_t>(m));
    CUDA_CHECK(cudaMemcpyAsync(h32.data(), args.ids.raw(), h32.size() * 4, cudaMemcpyDeviceToHost,
                               stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    for (size_t i = 0; i < h32.size(); ++i) host[i] = h32[i];
  } else {
    CUDA_CHECK(cudaMemcpyAsync(host.data(), args.ids.raw(), host.size() * 8, cudaMemcpyDeviceToHost,
                               stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  for (int64_t id : host)
    DR_CHECK(id >= 0 && id < vocab, "embedding", "id ", id, " is out of range for a table of ",
             vocab, " rows");
  const int64_t total = m * c;
  if (total == 0) return;
  DR_CUDA_DISPATCH_BITS(
      dtype_size(args.table.dtype()), "embedding", E,
      if (i32) embedding_kernel<E, int32_t><<<grid_for(total, kThreads), kThreads, 0, stream>>>(
          args.ids.data<int32_t>(), args.table.data<E>(), args.out.data<E>(), c, total);
      else embedding_kernel<E, int64_t><<<grid_for(total, kThreads), kThreads, 0, stream>>>(
          args.ids.data<int64_t>(), args.table.data<E>(), args.out.data<E>(), c, total));
  CUDA_CHECK_LAUNCH();
}

}  // namespace darkroom::cuda
