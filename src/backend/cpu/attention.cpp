// Multi-head attention, blockwise with online softmax (the flash-attention recurrence)
// so scratch memory grows with the tile size, not with tokens². The two tile products
// (S = Q·Kᵀ and O += P·V) run on oneDNN matmul primitives that read Q, K and V in place
// through strides (heads live in the channel dimension); the softmax recurrence is ours.
//
// Per batch item b and query tile [i0, i0+mb):
//   m = -inf, l = 0, O = 0                                  // [H, mb], [H, mb], [H, mb, Dv]
//   for each key tile [j0, j0+kb):
//     S = scale · Q[b, i0:, h] · K[b, j0:, h]ᵀ (+ mask)       // f32 [H, mb, kb]
//     m' = max(m, rowmax S); P = exp(S − m'); c = exp(m − m')
//     l = c·l + rowsum P; O = c·O + P·V[b, j0:, h]
//   out[b, i0:, h] = O / l
#include <algorithm>
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

constexpr int64_t kScoreBudget = int64_t{32} << 20;       // f32 scores per tile set
constexpr int64_t kAccumulatorBudget = int64_t{8} << 20;  // f32 output accumulator

struct TilePrims {
  dnnl::matmul qk, pv;
  memory::desc q, k, s, p, v, o;
};

// Primitives for one (mb, kb) tile shape. Q tile: [1, H, mb, D] with strides
// (·, D, H·D, 1) straight out of q [B, Nq, H·D]; K tile read transposed as [1, H, D, kb];
// V tile [1, H, kb, Dv]; S and O are dense scratch.
TilePrims make_prims(int64_t h, int64_t mb, int64_t kb, int64_t d, int64_t dv, DType dt,
                     float scale) {
  const auto t = onednn::to_dnnl(dt);
  const auto f32 = memory::data_type::f32;
  TilePrims p;
  p.q = memory::desc({1, h, mb, d}, t, {mb * h * d, d, h * d, 1});
  p.k = memory::desc({1, h, d, kb}, t, {kb * h * d, d, 1, h * d});
  p.s = memory::desc({1, h, mb, kb}, f32, memory::format_tag::abcd);
  p.p = memory::desc({1, h, mb, kb}, t, memory::format_tag::abcd);
  p.v = memory::desc({1, h, kb, dv}, t, {kb * h * dv, dv, h * dv, 1});
  p.o = memory::desc({1, h, mb, dv}, f32, memory::format_tag::abcd);
  dnnl::primitive_attr qk_attr;
  qk_attr.set_output_scales(0, {scale});
  p.qk = dnnl::matmul(
      dnnl::matmul::primitive_desc(dnnl::matmul::desc(p.q, p.k, p.s), qk_attr, onednn::engine()));
  dnnl::post_ops accumulate;
  accumulate.append_sum(1.0f);  // O += P·V
  dnnl::primitive_attr pv_attr;
  pv_attr.set_post_ops(accumulate);
  p.pv = dnnl::matmul(
      dnnl::matmul::primitive_desc(dnnl::matmul::desc(p.p, p.v, p.o), pv_attr, onednn::engine()));
  return p;
}

}  // namespace

AttentionPlan plan_attention(int64_t heads, int64_t nq, int64_t nk, int64_t dv, DType dtype) {
  AttentionPlan plan;
  // Big tiles: each oneDNN call then has enough work to keep every core busy (measured
  // on 2×8 heads × 4096 tokens: 256-query tiles reached ~60% of the unfused reference,
  // 1024-query tiles ~83%). The accumulator O [H, q_block, Dv] f32 is capped at 8 MB.
  const int64_t by_accumulator = (kAccumulatorBudget / (4 * heads * dv)) / 64 * 64;
  plan.q_block = std::min<int64_t>(nq, std::clamp<int64_t>(by_accumulator, 64, 1024));
  // Keys per tile: as many as the score budget allows for all heads, 64 to 1024.
  plan.k_block = std::clamp<int64_t>(kScoreBudget / (4 * heads * plan.q_block), 64, 1024);
  plan.k_block = std::min(plan.k_block, nk);
  const int64_t tile = heads * plan.q_block * plan.k_block;
  const int64_t rows = heads * plan.q_block;
  plan.scratch_bytes = tile * 4                                // S (f32)
                       + (dtype == DType::F32 ? 0 : tile * 2)  // P in bf16
                       + rows * dv * 4                         // O accumulator
                       + rows * 2 * 4;                         // m, l
  return plan;
}

void attention(const AttentionArgs& a) {
  // oneDNN here has no f16 matmul without AVX512-FP16: compute f16 in f32.
  if (a.q.dtype() == DType::F16) {
    Tensor out = ops::attention(ops::cast(a.q, DType::F32), ops::cast(a.k, DType::F32),
                                ops::cast(a.v, DType::F32), a.heads, a.mask, a.scale);
    CastArgs c{out, a.out};
    cast(c);
    return;
  }
  const DType dt = a.q.dtype();
  const int64_t b_count = a.q.dim(0), nq = a.q.dim(1), nk = a.k.dim(1);
  const int64_t h = a.heads, d = a.q.dim(2) / h, dv = a.v.dim(2) / h;
  const AttentionPlan plan = plan_attention(h, nq, nk, dv, dt);
  const size_t esz = dtype_size(dt);

  // Scratch: S f32 [H, mb, kb], P [H, mb, kb] in dt (bf16 path), O f32 [H, mb, Dv],
  // m and l f32 [H, mb].
  const int64_t tile = h * plan.q_block * plan.k_block;
  Tensor s_buf = Tensor::empty({tile}, DType::F32);
  Tensor p_buf = dt == DType::F32 ? s_buf : Tensor::empty({tile}, dt);
  Tensor o_buf = Tensor::empty({h * plan.q_block * dv}, DType::F32);
  Tensor stats = Tensor::empty({2 * h * plan.q_block}, DType::F32);
  float* s = s_buf.data<float>();
  float* o = o_buf.data<float>();
  float* max_of = stats.data<float>();
  float* sum_of = max_of + h * plan.q_block;

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

  const char* q_base = static_cast<const char*>(a.q.raw());
  const char* k_base = static_cast<const char*>(a.k.raw());
  const char* v_base = static_cast<const char*>(a.v.raw());
  char* out_base = static_cast<char*>(a.out.raw());
  const float* mask = a.mask.defined() ? a.mask.data<float>() : nullptr;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  auto& pool = ThreadPool::global();
  auto& strm = onednn::stream();

  for (int64_t b = 0; b < b_count; ++b) {
    for (int64_t i0 = 0; i0 < nq; i0 += plan.q_block) {
      const int64_t mb = std::min(plan.q_block, nq - i0);
      const int64_t rows = h * mb;
      std::fill(max_of, max_of + rows, neg_inf);
      std::fill(sum_of, sum_of + rows, 0.0f);
      std::fill(o, o + rows * dv, 0.0f);
      for (int64_t j0 = 0; j0 < nk; j0 += plan.k_block) {
        const int64_t kb = std::min(plan.k_block, nk - j0);
        auto prims = prims_for(mb, kb);
        memory q_mem(prims->q, onednn::engine(),
                     const_cast<char*>(q_base + ((b * nq + i0) * h * d) * esz));
        memory k_mem(prims->k, onednn::engine(),
                     const_cast<char*>(k_base + ((b * nk + j0) * h * d) * esz));
        memory v_mem(prims->v, onednn::engine(),
                     const_cast<char*>(v_base + ((b * nk + j0) * h * dv) * esz));
        memory s_mem(prims->s, onednn::engine(), s);
        memory p_mem(prims->p, onednn::engine(), p_buf.raw());
        memory o_mem(prims->o, onednn::engine(), o);
        DR_DNNL_CHECK(prims->qk.execute(
            strm, {{DNNL_ARG_SRC, q_mem}, {DNNL_ARG_WEIGHTS, k_mem}, {DNNL_ARG_DST, s_mem}}));
        strm.wait();

        // Online-softmax update of each (head, query) row; S [H, mb, kb] row r = hh·mb + i.
        pool.parallel_for(
            rows,
            [&](int64_t r0, int64_t r1) {
              for (int64_t r = r0; r < r1; ++r) {
                float* srow = s + r * kb;
                const int64_t i = r % mb;
                if (mask) {
                  const int64_t mb_idx = a.mask.dim(0) == 1 ? 0 : b;
                  const int64_t mq = a.mask.dim(1) == 1 ? 0 : i0 + i;
                  const float* mrow = mask + (mb_idx * a.mask.dim(1) + mq) * nk + j0;
                  for (int64_t j = 0; j < kb; ++j) srow[j] += mrow[j];
                }
                const float mx = std::max(max_of[r], max_f32(srow, kb));
                if (mx == neg_inf) {  // every key so far masked out: contributes nothing
                  for (int64_t j = 0; j < kb; ++j) srow[j] = 0.0f;
                } else {
                  for (int64_t j = 0; j < kb; ++j) srow[j] = exp_f32(srow[j] - mx);
                  const float sum = sum_f32(srow, kb);
                  const float c = max_of[r] == neg_inf ? 0.0f : exp_f32(max_of[r] - mx);
                  sum_of[r] = sum_of[r] * c + sum;
                  max_of[r] = mx;
                  float* orow = o + r * dv;
                  for (int64_t e = 0; e < dv; ++e) orow[e] *= c;
                }
                if (dt != DType::F32)
                  store_f32(srow, dt, static_cast<char*>(p_buf.raw()) + r * kb * esz, kb);
              }
            },
            16);

        DR_DNNL_CHECK(prims->pv.execute(
            strm, {{DNNL_ARG_SRC, p_mem}, {DNNL_ARG_WEIGHTS, v_mem}, {DNNL_ARG_DST, o_mem}}));
        strm.wait();
      }
      // out[b, i0 + i, hh·Dv + e] = O[hh, i, e] / l[hh, i]
      pool.parallel_for(
          rows,
          [&](int64_t r0, int64_t r1) {
            std::vector<float> tmp(static_cast<size_t>(dv));
            for (int64_t r = r0; r < r1; ++r) {
              const int64_t hh = r / mb, i = r % mb;
              const float inv = sum_of[r] > 0 ? 1.0f / sum_of[r] : 0.0f;
              for (int64_t e = 0; e < dv; ++e) tmp[e] = o[r * dv + e] * inv;
              store_f32(tmp.data(), dt, out_base + (((b * nq + i0 + i) * h + hh) * dv) * esz, dv);
            }
          },
          16);
    }
  }
}

}  // namespace darkroom::cpu
