// Multi-head attention, flash style: scores are never stored; each block streams K/V
// tiles through shared memory and keeps an online softmax (running max m, running sum
// l, rescaled accumulator) in f32 registers. Memory is O(N), not O(Nq·Nk).
//
// Layout (op_args.h): q [B, Nq, H·D], k [B, Nk, H·D], v [B, Nk, H·Dv], out
// [B, Nq, H·Dv]; head h of token t is the slice [h·D, (h+1)·D) of row t.
//
// Work split: grid (⌈Nq/16⌉, B·H); a block = 4 warps, each warp owns 4 queries.
// Per tile of 32 keys, lane j scores key j against the warp's 4 queries (K row j
// read from shared memory, padded by one float so that lanes hit distinct banks);
// then for P·V lane j owns output columns j, j+32, ... and the 32 probabilities are
// broadcast by shuffles. This is the simple, exact version (CUDA cores, f32 math);
// f16/bf16 with Dv = D ≤ 128 go to the tensor-core kernel of flash_attention_sm80.cu
// instead, and this one remains for f32, Dv ≠ D and larger heads.
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/flash_attention.h"
#include "backend/cuda/kernels.h"

namespace darkroom::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kQueriesPerWarp = 4;
constexpr int kQueriesPerBlock = kWarps * kQueriesPerWarp;
constexpr int kKeysPerTile = 32;
// 512: the SD/SDXL VAE's mid-block attention is one head over all 512 channels. Shared
// memory at 512 is 4·(32·513·2 + 16·512) B = 160 KiB, within sm_80's 164 KiB opt-in.
constexpr int kMaxHeadDim = 512;
constexpr int kMaxChunks = kMaxHeadDim / 32;

struct AttentionShape {
  int64_t nq, nk;
  int heads, d, dv;
  float scale;
  const float* mask;      // null, or [Bm, Nq or 1, Nk]
  int64_t mask_b_stride;  // 0 when Bm = 1
  int64_t mask_q_stride;  // 0 when the mask has one query row
};

template <class T>
__global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(const T* q, const T* k, const T* v, T* out, AttentionShape s) {
  extern __shared__ float smem[];
  const int d = s.d, dv = s.dv, kd = d + 1, vd = dv + 1;
  float* ks = smem;                    // [32][d + 1]
  float* vs = ks + kKeysPerTile * kd;  // [32][dv + 1]
  float* qs = vs + kKeysPerTile * vd;  // [16][d], pre-scaled
  const int b = blockIdx.y / s.heads, h = blockIdx.y % s.heads;
  const int64_t q0 = int64_t{blockIdx.x} * kQueriesPerBlock;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t row_q = int64_t{s.heads} * d, row_v = int64_t{s.heads} * dv;

  for (int i = threadIdx.x; i < kQueriesPerBlock * d; i += blockDim.x) {
    const int r = i / d, c = i % d;
    const int64_t t = q0 + r;
    qs[i] = t < s.nq ? load_f32(q, (b * s.nq + t) * row_q + int64_t{h} * d + c) * s.scale : 0.0f;
  }

  const int chunks = (dv + 31) / 32;
  float m[kQueriesPerWarp], l[kQueriesPerWarp], acc[kQueriesPerWarp][kMaxChunks];
#pragma unroll
  for (int i = 0; i < kQueriesPerWarp; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c) acc[i][c] = 0.0f;
  }

  for (int64_t k0 = 0; k0 < s.nk; k0 += kKeysPerTile) {
    __syncthreads();  // the previous tile is no longer read (and qs is written)
    for (int i = threadIdx.x; i < kKeysPerTile * d; i += blockDim.x) {
      const int r = i / d, c = i % d;
      const int64_t t = k0 + r;
      ks[r * kd + c] = t < s.nk ? load_f32(k, (b * s.nk + t) * row_q + int64_t{h} * d + c) : 0.0f;
    }
    for (int i = threadIdx.x; i < kKeysPerTile * dv; i += blockDim.x) {
      const int r = i / dv, c = i % dv;
      const int64_t t = k0 + r;
      vs[r * vd + c] = t < s.nk ? load_f32(v, (b * s.nk + t) * row_v + int64_t{h} * dv + c) : 0.0f;
    }
    __syncthreads();

    // Scores of key k0 + lane against the warp's queries.
    const int64_t key = k0 + lane;
    const bool valid = key < s.nk;
    float sc[kQueriesPerWarp];
#pragma unroll
    for (int i = 0; i < kQueriesPerWarp; ++i) sc[i] = 0.0f;
    const float* krow = ks + lane * kd;
    const float* qrow = qs + warp * kQueriesPerWarp * d;
    for (int c = 0; c < d; ++c) {
      const float kv = krow[c];
#pragma unroll
      for (int i = 0; i < kQueriesPerWarp; ++i) sc[i] = fmaf(qrow[i * d + c], kv, sc[i]);
    }

    // Online softmax update per query.
    float p[kQueriesPerWarp];
#pragma unroll
    for (int i = 0; i < kQueriesPerWarp; ++i) {
      const int64_t t = q0 + warp * kQueriesPerWarp + i;
      float sv = valid ? sc[i] : -INFINITY;
      if (valid && s.mask != nullptr && t < s.nq)
        sv += s.mask[b * s.mask_b_stride + t * s.mask_q_stride + key];
      const float m_new = fmaxf(m[i], warp_max(sv));
      // -inf guards: a row masked so far has nothing to rescale and adds nothing.
      const float alpha = m[i] == -INFINITY ? 0.0f : expf(m[i] - m_new);
      p[i] = sv == -INFINITY ? 0.0f : expf(sv - m_new);
      l[i] = l[i] * alpha + warp_sum(p[i]);
      m[i] = m_new;
#pragma unroll
      for (int c = 0; c < kMaxChunks; ++c) acc[i][c] *= alpha;
    }

    // acc += P · V for this tile; lane owns columns lane + 32·c.
    const int keys = static_cast<int>(s.nk - k0 < kKeysPerTile ? s.nk - k0 : kKeysPerTile);
    for (int j = 0; j < keys; ++j) {
      float vv[kMaxChunks];
#pragma unroll
      for (int c = 0; c < kMaxChunks; ++c) {
        const int col = lane + 32 * c;
        vv[c] = (c < chunks && col < dv) ? vs[j * vd + col] : 0.0f;
      }
#pragma unroll
      for (int i = 0; i < kQueriesPerWarp; ++i) {
        const float pj = __shfl_sync(0xffffffffu, p[i], j);
#pragma unroll
        for (int c = 0; c < kMaxChunks; ++c) acc[i][c] = fmaf(pj, vv[c], acc[i][c]);
      }
    }
  }

#pragma unroll
  for (int i = 0; i < kQueriesPerWarp; ++i) {
    const int64_t t = q0 + warp * kQueriesPerWarp + i;
    if (t >= s.nq) continue;
    // A fully masked row has l = 0: write zeros rather than NaN.
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c) {
      const int col = lane + 32 * c;
      if (c < chunks && col < dv)
        store_f32(out, (b * s.nq + t) * row_v + int64_t{h} * dv + col, acc[i][c] * inv);
    }
  }
}

template <class T>
void launch(const AttentionArgs& args, const AttentionShape& s, dim3 grid, cudaStream_t stream) {
  const size_t smem = sizeof(float) * (static_cast<size_t>(kKeysPerTile) * (s.d + 1) +
                                       static_cast<size_t>(kKeysPerTile) * (s.dv + 1) +
                                       static_cast<size_t>(kQueriesPerBlock) * s.d);
  if (smem > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(
        attention_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  attention_kernel<T><<<grid, kWarps * 32, smem, stream>>>(args.q.data<T>(), args.k.data<T>(),
                                                           args.v.data<T>(), args.out.data<T>(), s);
}

}  // namespace

void attention(const AttentionArgs& args) {
  const Tensor &q = args.q, &k = args.k, &v = args.v;
  const int64_t b = q.dim(0), nq = q.dim(1), nk = k.dim(1);
  if (args.out.numel() == 0) return;
  if (flash_attention_supported(args)) {
    flash_attention(args);
    return;
  }
  AttentionShape s{};
  s.nq = nq;
  s.nk = nk;
  s.heads = args.heads;
  s.d = static_cast<int>(q.dim(2) / args.heads);
  s.dv = static_cast<int>(v.dim(2) / args.heads);
  s.scale = args.scale;
  DR_CHECK(s.d >= 1 && s.d <= kMaxHeadDim && s.dv >= 1 && s.dv <= kMaxHeadDim, "attention",
           "head dims ", s.d, "/", s.dv, " exceed the CUDA kernel's ", kMaxHeadDim);
  DR_CHECK(b * args.heads <= 65535, "attention", "batch × heads = ", b * args.heads,
           " exceeds one launch");
  if (args.mask.defined()) {
    const Tensor& mk = args.mask;  // [Bm, Nq or 1, Nk]
    s.mask = mk.data<float>();
    s.mask_q_stride = mk.dim(1) == 1 ? 0 : nk;
    s.mask_b_stride = mk.dim(0) == 1 ? 0 : mk.dim(1) * nk;
  }
  const dim3 grid(static_cast<unsigned>((nq + kQueriesPerBlock - 1) / kQueriesPerBlock),
                  static_cast<unsigned>(b * args.heads));
  cudaStream_t stream = stream_for(q);
  DR_CUDA_DISPATCH(q.dtype(), "attention", T, launch<T>(args, s, grid, stream));
  CUDA_CHECK_LAUNCH();
}

}  // namespace darkroom::cuda
