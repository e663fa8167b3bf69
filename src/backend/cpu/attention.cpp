// Multi-head attention, blockwise with online softmax (the flash-attention recurrence)
// so scratch memory grows with the tile size, not with tokens². The work is split into
// items (batch item b, head h, query tile [i0, i0+mb)) that run in parallel, one thread
// each: every thread keeps its own scores and accumulator and calls oneDNN matmuls on
// them single-threaded (inside our OpenMP region oneDNN does not fork again). This keeps
// all cores busy with one parallel region per attention call, where one oneDNN call per
// tile (each too small for many cores) reached only 40–49% of an unfused oneDNN
// reference on 16 cores. The tile products read Q, K and V in place through strides
// (heads live in the channel dimension); the softmax recurrence is ours.
//
// Per item:
//   m = -inf, l = 0, O = 0                                    // [mb], [mb], [mb, Dv]
//   for each key tile [j0, j0+kb):
//     S = scale · Q[b, i0:, h] · K[b, j0:, h]ᵀ (+ mask)         // f32 [mb, kb]
//     m' = max(m, rowmax S); P = exp(S − m'); c = exp(m − m')
//     l = c·l + rowsum P; O = c·O + P·V[b, j0:, h]
//   out[b, i0:, h] = O / l
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "backend/cpu/attention_plan.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/onednn_utils.h"
#include "backend/cpu/vec.h"
#include "backend/cpu/vec_math.h"
#include "backend/ops.h"
#include "core/thread_pool.h"

namespace darkroom::cpu {
namespace {

using dnnl::memory;

constexpr int64_t kScoreBytes = int64_t{512} << 10;  // f32 scores per thread (L2-sized)
constexpr int64_t kMaxQBlock = 256;
constexpr int64_t kMinQBlock = 16;
constexpr int64_t kItemsPerThread = 4;

struct TilePrims {
  dnnl::matmul qk, pv;
  memory::desc q, k, s, p, v, o;
  int64_t scratchpad_bytes;
};

// Primitives for one (mb, kb) tile of one head. Q tile [mb, D] with row stride H·D
// straight out of q [B, Nq, H·D]; K tile read transposed as [D, kb]; V tile [kb, Dv]
// with row stride H·Dv; S, P and O are dense scratch. Scratchpads are ours (one per
// thread), so that primitives can run on several threads at once.
TilePrims make_prims(int64_t h, int64_t mb, int64_t kb, int64_t d, int64_t dv, DType dt,
                     float scale) {
  const auto t = onednn::to_dnnl(dt);
  const auto f32 = memory::data_type::f32;
  TilePrims p;
  p.q = memory::desc({mb, d}, t, {h * d, 1});
  p.k = memory::desc({d, kb}, t, {1, h * d});
  p.s = memory::desc({mb, kb}, f32, memory::format_tag::ab);
  p.p = memory::desc({mb, kb}, t, memory::format_tag::ab);
  p.v = memory::desc({kb, dv}, t, {h * dv, 1});
  p.o = memory::desc({mb, dv}, f32, memory::format_tag::ab);
  dnnl::primitive_attr qk_attr;
  qk_attr.set_output_scales(0, {scale});
  qk_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::matmul::primitive_desc qk_pd(dnnl::matmul::desc(p.q, p.k, p.s), qk_attr, onednn::engine());
  dnnl::post_ops accumulate;
  accumulate.append_sum(1.0f);  // O += P·V
  dnnl::primitive_attr pv_attr;
  pv_attr.set_post_ops(accumulate);
  pv_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::matmul::primitive_desc pv_pd(dnnl::matmul::desc(p.p, p.v, p.o), pv_attr, onednn::engine());
  p.qk = dnnl::matmul(qk_pd);
  p.pv = dnnl::matmul(pv_pd);
  p.scratchpad_bytes = static_cast<int64_t>(
      std::max(qk_pd.scratchpad_desc().get_size(), pv_pd.scratchpad_desc().get_size()));
  return p;
}

int64_t round_up(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

}  // namespace

AttentionPlan plan_attention(int64_t batch, int64_t heads, int64_t nq, int64_t nk, int64_t dv,
                             DType dtype, int threads) {
  AttentionPlan plan;
  // Query tiles: as large as kMaxQBlock while there are kItemsPerThread items per thread,
  // halved down to kMinQBlock otherwise (small problems on many cores).
  plan.q_block = std::min(nq, kMaxQBlock);
  while (plan.q_block > kMinQBlock &&
         batch * heads * ((nq + plan.q_block - 1) / plan.q_block) < kItemsPerThread * threads)
    plan.q_block = std::max(kMinQBlock, round_up(plan.q_block / 2, 8));
  plan.q_block = std::min(plan.q_block, nq);
  plan.k_block = std::min(nk, std::max<int64_t>(64, kScoreBytes / (4 * plan.q_block) / 64 * 64));
  plan.items = batch * heads * ((nq + plan.q_block - 1) / plan.q_block);
  const int64_t tile = plan.q_block * plan.k_block;
  plan.per_thread = tile * 4                                // S (f32)
                    + (dtype == DType::F32 ? 0 : tile * 2)  // P in bf16
                    + plan.q_block * dv * 4                 // O accumulator
                    + plan.q_block * 2 * 4;                 // m, l
  plan.scratch_bytes = plan.per_thread * std::min<int64_t>(threads, plan.items);
  return plan;
}

void attention(const AttentionArgs& a) {
  // 16-bit inputs are computed in f32: oneDNN here has no f16 matmul without
  // AVX512-FP16, and its bf16 matmuls on these small per-thread tiles (strided K and V,
  // which AMX kernels must repack at every call) ran at a third of the f32 path's speed
  // even on an AMX CPU (bench ops, 2×8 heads × 4096 tokens, 16 cores: 195 vs 655
  // GFLOP/s); the casts cost a few percent of that.
  if (a.q.dtype() != DType::F32) {
    Tensor out = ops::attention(ops::cast(a.q, DType::F32), ops::cast(a.k, DType::F32),
                                ops::cast(a.v, DType::F32), a.heads, a.mask, a.scale);
    CastArgs c{out, a.out};
    cast(c);
    return;
  }
  const DType dt = a.q.dtype();
  const int64_t b_count = a.q.dim(0), nq = a.q.dim(1), nk = a.k.dim(1);
  const int64_t h = a.heads, d = a.q.dim(2) / h, dv = a.v.dim(2) / h;
  ThreadPool& pool = ThreadPool::global();
  const int threads = ThreadPool::in_parallel() ? 1 : pool.size();
  const AttentionPlan plan = plan_attention(b_count, h, nq, nk, dv, dt, threads);
  const size_t esz = dtype_size(dt);
  const int64_t q_tiles = (nq + plan.q_block - 1) / plan.q_block;

  static onednn::LruCache<std::shared_ptr<TilePrims>> prim_cache(64);
  auto prims_for = [&](int64_t mb, int64_t kb) {
    std::string key = onednn::dims_key({h, mb, kb, d, dv}) + std::string(dtype_name(dt)) + ":" +
                      std::to_string(a.scale);
    return prim_cache.get_or_create(key, [&] {
      std::shared_ptr<TilePrims> p;
      DR_DNNL_CHECK(p = std::make_shared<TilePrims>(make_prims(h, mb, kb, d, dv, dt, a.scale)));
      return p;
    });
  };
  // Every tile shape this call can meet (full and ragged last tiles), created here on the
  // calling thread; the largest scratchpad sizes each thread's share.
  const int64_t mbs[2] = {plan.q_block, nq - (q_tiles - 1) * plan.q_block};
  const int64_t kbs[2] = {plan.k_block, nk - (nk - 1) / plan.k_block * plan.k_block};
  std::shared_ptr<TilePrims> prims[2][2];
  int64_t pad = 64;  // oneDNN's scratchpad, at least one line
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      prims[i][j] = prims_for(mbs[i], kbs[j]);
      pad = std::max(pad, prims[i][j]->scratchpad_bytes);
    }
  const int64_t stride = round_up(plan.per_thread + pad, 64);
  const int workers = static_cast<int>(std::min<int64_t>(threads, plan.items));
  Tensor scratch = Tensor::empty({stride * workers}, DType::U8);

  const char* q_base = static_cast<const char*>(a.q.raw());
  const char* k_base = static_cast<const char*>(a.k.raw());
  const char* v_base = static_cast<const char*>(a.v.raw());
  char* out_base = static_cast<char*>(a.out.raw());
  const float* mask = a.mask.defined() ? a.mask.data<float>() : nullptr;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int64_t tile = plan.q_block * plan.k_block;
  std::atomic<int64_t> next_item{0};

  auto work = [&](int thread, int) {
    if (thread >= workers) return;
    // This thread's scratch: S f32 [mb, kb], P [mb, kb] in dt (bf16), O f32 [mb, Dv],
    // m and l f32 [mb], then oneDNN's scratchpad.
    char* base = static_cast<char*>(scratch.raw()) + stride * thread;
    float* s = reinterpret_cast<float*>(base);
    char* p_raw = dt == DType::F32 ? base : base + tile * 4;
    float* o = reinterpret_cast<float*>(base + tile * (dt == DType::F32 ? 4 : 6));
    float* max_of = o + plan.q_block * dv;
    float* sum_of = max_of + plan.q_block;
    char* pad_raw = base + plan.per_thread;
    dnnl::stream strm(onednn::engine());
    std::vector<float> row(static_cast<size_t>(dv));

    for (int64_t item; (item = next_item.fetch_add(1, std::memory_order_relaxed)) < plan.items;) {
      const int64_t b = item / (h * q_tiles), hh = item / q_tiles % h;
      const int64_t i0 = item % q_tiles * plan.q_block;
      const int64_t mb = std::min(plan.q_block, nq - i0);
      std::fill(max_of, max_of + mb, neg_inf);
      std::fill(sum_of, sum_of + mb, 0.0f);
      std::fill(o, o + mb * dv, 0.0f);
      for (int64_t j0 = 0; j0 < nk; j0 += plan.k_block) {
        const int64_t kb = std::min(plan.k_block, nk - j0);
        const TilePrims& pr = *prims[mb == plan.q_block ? 0 : 1][kb == plan.k_block ? 0 : 1];
        memory q_mem(pr.q, onednn::engine(),
                     const_cast<char*>(q_base + ((b * nq + i0) * h + hh) * d * esz));
        memory k_mem(pr.k, onednn::engine(),
                     const_cast<char*>(k_base + ((b * nk + j0) * h + hh) * d * esz));
        memory v_mem(pr.v, onednn::engine(),
                     const_cast<char*>(v_base + ((b * nk + j0) * h + hh) * dv * esz));
        memory s_mem(pr.s, onednn::engine(), s);
        memory p_mem(pr.p, onednn::engine(), p_raw);
        memory o_mem(pr.o, onednn::engine(), o);
        memory pad_mem({{pad}, memory::data_type::u8, memory::format_tag::a}, onednn::engine(),
                       pad_raw);
        DR_DNNL_CHECK(pr.qk.execute(strm, {{DNNL_ARG_SRC, q_mem},
                                           {DNNL_ARG_WEIGHTS, k_mem},
                                           {DNNL_ARG_DST, s_mem},
                                           {DNNL_ARG_SCRATCHPAD, pad_mem}}));
        strm.wait();
        // Online-softmax update of each query row i of S [mb, kb].
        for (int64_t i = 0; i < mb; ++i) {
          float* srow = s + i * kb;
          if (mask) {
            const int64_t mb_idx = a.mask.dim(0) == 1 ? 0 : b;
            const int64_t mq = a.mask.dim(1) == 1 ? 0 : i0 + i;
            const float* mrow = mask + (mb_idx * a.mask.dim(1) + mq) * nk + j0;
            for (int64_t j = 0; j < kb; ++j) srow[j] += mrow[j];
          }
          const float mx = std::max(max_of[i], max_f32(srow, kb));
          if (mx == neg_inf) {  // every key so far masked out: contributes nothing
            for (int64_t j = 0; j < kb; ++j) srow[j] = 0.0f;
          } else {
            for (int64_t j = 0; j < kb; ++j) srow[j] = exp_f32(srow[j] - mx);
            const float sum = sum_f32(srow, kb);
            const float c = max_of[i] == neg_inf ? 0.0f : exp_f32(max_of[i] - mx);
            sum_of[i] = sum_of[i] * c + sum;
            max_of[i] = mx;
            if (c != 1.0f) {
              float* orow = o + i * dv;
              for (int64_t e = 0; e < dv; ++e) orow[e] *= c;
            }
          }
          if (dt != DType::F32) store_f32(srow, dt, p_raw + i * kb * esz, kb);
        }
        DR_DNNL_CHECK(pr.pv.execute(strm, {{DNNL_ARG_SRC, p_mem},
                                           {DNNL_ARG_WEIGHTS, v_mem},
                                           {DNNL_ARG_DST, o_mem},
                                           {DNNL_ARG_SCRATCHPAD, pad_mem}}));
      }
      strm.wait();
      // out[b, i0 + i, hh·Dv + e] = O[i, e] / l[i]
      for (int64_t i = 0; i < mb; ++i) {
        const float inv = sum_of[i] > 0 ? 1.0f / sum_of[i] : 0.0f;
        for (int64_t e = 0; e < dv; ++e) row[e] = o[i * dv + e] * inv;
        store_f32(row.data(), dt, out_base + (((b * nq + i0 + i) * h + hh) * dv) * esz, dv);
      }
    }
  };
  if (threads == 1)
    work(0, 1);
  else
    pool.run_on_all(work);
}

}  // namespace darkroom::cpu
