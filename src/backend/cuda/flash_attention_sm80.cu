// Attention forward on tensor cores, FlashAttention-2 style, for f16/bf16 (sm_80+).
//
// Layout (op_args.h): q [B, Nq, H·D], k [B, Nk, H·D], v [B, Nk, H·D], out [B, Nq, H·D];
// head h of token t is the slice [h·D, (h+1)·D) of row t (row stride H·D elements).
//
// Work split: grid (⌈Nq/64⌉, B·H); a CTA = 4 warps, warp w owns query rows
// [16w, 16w + 16) of the CTA's 64-row tile. The head dim is zero-padded to DP (a
// multiple of 16: 48, 64, 80 or 128) in shared memory so that every mma sees whole
// k-slices. The Q tile is staged through shared memory once and kept in registers as
// mma A fragments; K and V tiles of 64 keys are then streamed through shared memory
// with cp.async (16-byte copies when D % 8 == 0 and the bases are 16-byte aligned,
// scalar loads otherwise), each copy overlapping the math on the other operand.
// Per tile each warp computes S = Q·Kᵀ (16 × 64, f32) with mma.sync m16n8k16, applies
// scale, mask and the ragged-tail cut, updates the online softmax (running max m and
// sum l per row, in the log2 domain so that exp2f does the work), rounds P to the
// input dtype and accumulates O += P·V (16 × DP, f32) with the same mma. Rows and keys
// past Nq/Nk are zero-filled in shared memory (V rows must be zero: P is 0 there, but
// 0 · garbage could be NaN) and keys past Nk get a score of −inf.
//
// mma.m16n8k16 fragments (PTX ISA, "Matrix fragments for mma.m16n8k16"), with
// g = lane / 4 and c = lane % 4; each 32-bit register holds two consecutive-k halves,
// the lower k in the low 16 bits:
//   A (16 × 16, row-major): a0 = A[g][2c..], a1 = A[g+8][2c..], a2 = A[g][2c+8..],
//                           a3 = A[g+8][2c+8..]
//   B (16 × 8, k × n):      b0 = B[2c..2c+1][g], b1 = B[2c+8..2c+9][g]
//   C (16 × 8, f32):        c0,c1 = C[g][2c, 2c+1], c2,c3 = C[g+8][2c, 2c+1]
// For S = Q·Kᵀ, B[k][n] = K[key n][dim k], so b0/b1 are single 32-bit words of a K row.
// The C fragments of two neighbouring 8-key tiles of S are exactly the A fragment of
// the 16-key slice of P, so P never leaves registers. For O += P·V, B[k][n] =
// V[key k][col n] pairs two different rows, so those halves are read one by one.
// Row stats live in the 4 lanes of a quad (same g) and are combined by shuffles.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/cuda_context.h"
#include "backend/cuda/device_math.cuh"
#include "backend/cuda/flash_attention.h"

namespace darkroom::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerCta = kWarps * 16;  // query rows per CTA
constexpr int kKeysPerTile = 64;
// Shared rows are DP + 8 halves long: keeps 16-byte alignment of every row and makes
// the fragment reads of the 8 rows g = 0..7 land in distinct banks.
constexpr int kPad = 8;
constexpr float kLog2e = 1.4426950408889634f;
static_assert(kRowsPerCta == kKeysPerTile, "load_tile stages Q and K/V tiles of the same height");

struct FlashShape {
  int64_t nq, nk;
  int heads, d;
  float scale_log2;       // softmax scale × log2(e)
  bool vec;               // 16-byte global loads are safe (D % 8 == 0, aligned bases)
  const float* mask;      // null, or [Bm, Nq or 1, Nk]
  int64_t mask_b_stride;  // 0 when Bm = 1
  int64_t mask_q_stride;  // 0 when the mask has one query row
};

template <class T>
struct Mma;

template <>
struct Mma<__nv_bfloat16> {
  __device__ static __forceinline__ uint32_t pack(float lo, float hi) {
    const __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);  // .x = lo (low half)
    return *reinterpret_cast<const uint32_t*>(&p);
  }
  __device__ static __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

template <>
struct Mma<__half> {
  __device__ static __forceinline__ uint32_t pack(float lo, float hi) {
    const __half2 p = __floats2half2_rn(lo, hi);  // .x = lo (low half)
    return *reinterpret_cast<const uint32_t*>(&p);
  }
  __device__ static __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

__device__ __forceinline__ uint32_t lds32(const uint16_t* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

// Two halves from different rows as one B register: lo in the low 16 bits.
__device__ __forceinline__ uint32_t pack_halves(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

// Asynchronous 16-byte global → shared copy (sm_80 cp.async, bypassing L1); with
// src_bytes = 0 nothing is read and the 16 bytes are zero-filled.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src),
               "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits for this thread's copies; a __syncthreads() must follow before other
// threads read them.
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

// dst [64][DP + kPad] = rows [row0, row0 + 64) of src (row r at src + r·stride, D
// valid columns), zero past `rows` and past D. With `vec` the copies are cp.async
// (complete after cp_async_wait_all()); otherwise plain scalar loads and stores.
// Either way a __syncthreads() must separate this from reads by other threads.
template <int DP>
__device__ __forceinline__ void load_tile(uint16_t (*dst)[DP + kPad], const uint16_t* src,
                                          int64_t row0, int64_t rows, int64_t stride, int d,
                                          bool vec) {
  constexpr int kChunks = DP / 8;  // 8 halves = 16 bytes
  for (int i = threadIdx.x; i < kKeysPerTile * kChunks; i += kThreads) {
    const int r = i / kChunks, c8 = (i % kChunks) * 8;
    const int64_t t = row0 + r;
    uint16_t* o = &dst[r][c8];
    if (vec) {
      // D % 8 == 0: a chunk is either wholly inside the head or wholly padding. A
      // zero-filled chunk is given the (valid, aligned) row-0 address as its source.
      const bool inside = t < rows && c8 < d;
      cp_async16(o, inside ? src + t * stride + c8 : src, inside ? 16 : 0);
    } else {
      const uint16_t* p = src + t * stride + c8;
#pragma unroll
      for (int j = 0; j < 8; ++j) o[j] = (t < rows && c8 + j < d) ? p[j] : uint16_t{0};
    }
  }
  if (vec) cp_async_commit();
}

template <class T, int DP>
__global__ void __launch_bounds__(kThreads)
    flash_attention_kernel(const uint16_t* q, const uint16_t* k, const uint16_t* v, T* out,
                           FlashShape s) {
  static_assert(DP % 16 == 0 && DP <= kFlashMaxHeadDim, "padded head dim");
  constexpr int kSlices = DP / 16;                                // k-slices of Q·Kᵀ
  constexpr int kOutTiles = DP / 8;                               // n-tiles of O
  constexpr int kKeyTiles = kKeysPerTile / 8;                     // n-tiles of S
  __shared__ __align__(16) uint16_t ks[kKeysPerTile][DP + kPad];  // Q, then K tiles
  __shared__ __align__(16) uint16_t vs[kKeysPerTile][DP + kPad];

  const int b = blockIdx.y / s.heads, h = blockIdx.y % s.heads;
  const int64_t q0 = int64_t{blockIdx.x} * kRowsPerCta;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, c = lane & 3;
  const int64_t stride = int64_t{s.heads} * s.d;
  const int64_t head = int64_t{h} * s.d;
  const uint16_t* qb = q + b * s.nq * stride + head;
  const uint16_t* kb = k + b * s.nk * stride + head;
  const uint16_t* vb = v + b * s.nk * stride + head;

  // Q fragments of this warp's 16 rows.
  load_tile<DP>(ks, qb, q0, s.nq, stride, s.d, s.vec);
  cp_async_wait_all();
  __syncthreads();
  const int r0 = warp * 16 + g;  // this lane's rows in the tile: r0 and r0 + 8
  uint32_t qf[kSlices][4];
#pragma unroll
  for (int kk = 0; kk < kSlices; ++kk) {
    qf[kk][0] = lds32(&ks[r0][16 * kk + 2 * c]);
    qf[kk][1] = lds32(&ks[r0 + 8][16 * kk + 2 * c]);
    qf[kk][2] = lds32(&ks[r0][16 * kk + 2 * c + 8]);
    qf[kk][3] = lds32(&ks[r0 + 8][16 * kk + 2 * c + 8]);
  }

  // Mask rows of this lane's two queries (clamped: rows past Nq are never stored).
  const int64_t t_row[2] = {q0 + r0, q0 + r0 + 8};
  const float* mrow[2] = {nullptr, nullptr};
  if (s.mask != nullptr) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int64_t t = t_row[i] < s.nq ? t_row[i] : s.nq - 1;
      mrow[i] = s.mask + b * s.mask_b_stride + t * s.mask_q_stride;
    }
  }

  float o[kOutTiles][4];
#pragma unroll
  for (int j = 0; j < kOutTiles; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[j][e] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  // Pipeline (one K and one V buffer): the V tile is copied while S = Q·Kᵀ and the
  // softmax run, the next K tile while O += P·V runs. Invariant at the top of each
  // iteration: ks holds this tile's K (copied and synchronised), nobody reads vs.
  __syncthreads();  // every warp has its Q fragments: ks may be overwritten
  load_tile<DP>(ks, kb, 0, s.nk, stride, s.d, s.vec);
  cp_async_wait_all();
  __syncthreads();
  for (int64_t k0 = 0; k0 < s.nk; k0 += kKeysPerTile) {
    load_tile<DP>(vs, vb, k0, s.nk, stride, s.d, s.vec);

    // S = Q·Kᵀ: sc[j] is the C fragment of keys [8j, 8j + 8).
    float sc[kKeyTiles][4];
#pragma unroll
    for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) sc[j][e] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kSlices; ++kk) {
        const uint32_t b0 = lds32(&ks[8 * j + g][16 * kk + 2 * c]);
        const uint32_t b1 = lds32(&ks[8 * j + g][16 * kk + 2 * c + 8]);
        Mma<T>::run(sc[j], qf[kk], b0, b1);
      }
    }

    // Scores in the log2 domain; keys past Nk get −inf.
#pragma unroll
    for (int j = 0; j < kKeyTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t key = k0 + 8 * j + 2 * c + (e & 1);
        float x = sc[j][e] * s.scale_log2;
        if (key >= s.nk)
          x = -INFINITY;
        else if (s.mask != nullptr)
          x += mrow[e >> 1][key] * kLog2e;
        sc[j][e] = x;
      }

#pragma unroll
    // Online softmax, row i = this lane's row r0 + 8i (fragment entries 2i, 2i + 1).
    for (int i = 0; i < 2; ++i) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < kKeyTiles; ++j) mx = fmaxf(mx, fmaxf(sc[j][2 * i], sc[j][2 * i + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[i], mx);
      // A row with every key so far at −inf: subtract 0 instead, so that its p and
      // alpha are exp2(−inf) = 0 rather than NaN.
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = exp2f(m[i] - m_use);
      m[i] = m_new;
      l[i] *= alpha;
#pragma unroll
      for (int j = 0; j < kOutTiles; ++j) {
        o[j][2 * i] *= alpha;
        o[j][2 * i + 1] *= alpha;
      }
#pragma unroll
      for (int j = 0; j < kKeyTiles; ++j) {
        const float p0 = exp2f(sc[j][2 * i] - m_use), p1 = exp2f(sc[j][2 * i + 1] - m_use);
        sc[j][2 * i] = p0;
        sc[j][2 * i + 1] = p1;
        l[i] += p0 + p1;  // this lane's partial row sum; the quad is summed at the end
      }
    }

    cp_async_wait_all();
    __syncthreads();  // vs is complete, and every warp is done reading ks
    if (k0 + kKeysPerTile < s.nk)
      load_tile<DP>(ks, kb, k0 + kKeysPerTile, s.nk, stride, s.d, s.vec);

#pragma unroll
    // O += P·V over 16-key slices.
    for (int kc = 0; kc < kKeysPerTile / 16; ++kc) {
      const uint32_t pa[4] = {Mma<T>::pack(sc[2 * kc][0], sc[2 * kc][1]),
                              Mma<T>::pack(sc[2 * kc][2], sc[2 * kc][3]),
                              Mma<T>::pack(sc[2 * kc + 1][0], sc[2 * kc + 1][1]),
                              Mma<T>::pack(sc[2 * kc + 1][2], sc[2 * kc + 1][3])};
      const int kr = 16 * kc + 2 * c;
#pragma unroll
      for (int j = 0; j < kOutTiles; ++j) {
        const int col = 8 * j + g;
        const uint32_t b0 = pack_halves(vs[kr][col], vs[kr + 1][col]);
        const uint32_t b1 = pack_halves(vs[kr + 8][col], vs[kr + 9][col]);
        Mma<T>::run(o[j], pa, b0, b1);
      }
    }
    cp_async_wait_all();
    __syncthreads();  // the next K tile is complete, and every warp is done reading vs
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float sum = l[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    // A fully masked row has l = 0: write zeros rather than NaN.
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    const int64_t t = t_row[i];
    if (t >= s.nq) continue;
    const int64_t row = (b * s.nq + t) * stride + head;
#pragma unroll
    for (int j = 0; j < kOutTiles; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = 8 * j + 2 * c + e;
        if (col < s.d) store_f32(out, row + col, o[j][2 * i + e] * inv);
      }
  }
}

template <class T, int DP>
void launch(const AttentionArgs& args, const FlashShape& s, dim3 grid, cudaStream_t stream) {
  flash_attention_kernel<T, DP><<<grid, kThreads, 0, stream>>>(
      static_cast<const uint16_t*>(args.q.raw()), static_cast<const uint16_t*>(args.k.raw()),
      static_cast<const uint16_t*>(args.v.raw()), args.out.data<T>(), s);
}

template <class T>
void launch_padded(const AttentionArgs& args, const FlashShape& s, dim3 grid, cudaStream_t stream) {
  if (s.d <= 48)
    launch<T, 48>(args, s, grid, stream);
  else if (s.d <= 64)
    launch<T, 64>(args, s, grid, stream);
  else if (s.d <= 80)
    launch<T, 80>(args, s, grid, stream);
  else
    launch<T, 128>(args, s, grid, stream);
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

}  // namespace

bool flash_attention_supported(const AttentionArgs& args) {
  const DType t = args.q.dtype();
  if (t != DType::F16 && t != DType::BF16) return false;
  const int64_t d = args.q.dim(2) / args.heads, dv = args.v.dim(2) / args.heads;
  return d == dv && d >= 1 && d <= kFlashMaxHeadDim;
}

void flash_attention(const AttentionArgs& args) {
  const Tensor &q = args.q, &k = args.k, &v = args.v;
  const int64_t b = q.dim(0), nq = q.dim(1), nk = k.dim(1);
  if (args.out.numel() == 0) return;
  FlashShape s{};
  s.nq = nq;
  s.nk = nk;
  s.heads = args.heads;
  s.d = static_cast<int>(q.dim(2) / args.heads);
  s.scale_log2 = args.scale * kLog2e;
  s.vec = s.d % 8 == 0 && aligned16(q.raw()) && aligned16(k.raw()) && aligned16(v.raw());
  DR_CHECK(b * args.heads <= 65535, "attention", "batch × heads = ", b * args.heads,
           " exceeds one launch");
  DR_CHECK((nq + kRowsPerCta - 1) / kRowsPerCta <= 2147483647LL, "attention", "Nq = ", nq,
           " exceeds one launch");
  if (args.mask.defined()) {
    const Tensor& mk = args.mask;  // [Bm, Nq or 1, Nk]
    s.mask = mk.data<float>();
    s.mask_q_stride = mk.dim(1) == 1 ? 0 : nk;
    s.mask_b_stride = mk.dim(0) == 1 ? 0 : mk.dim(1) * nk;
  }
  const dim3 grid(static_cast<unsigned>((nq + kRowsPerCta - 1) / kRowsPerCta),
                  static_cast<unsigned>(b * args.heads));
  cudaStream_t stream = stream_for(q);
  if (q.dtype() == DType::BF16)
    launch_padded<__nv_bfloat16>(args, s, grid, stream);
  else
    launch_padded<__half>(args, s, grid, stream);
  CUDA_CHECK_LAUNCH();
}

}  // namespace darkroom::cuda
