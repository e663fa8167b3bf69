// Batched matmul of two activations on oneDNN: out[B, M, N] = op(a) · op(b). Transposes
// and batch broadcast are expressed as strides, so nothing is copied.
#include "backend/cpu/kernels.h"
#include "backend/cpu/onednn_utils.h"

namespace darkroom::cpu {
namespace {

using dnnl::memory;

// A [batch, rows, cols] operand stored as [batch, d1, d2], transposed if `trans`.
memory::desc operand_desc(int64_t batch, int64_t rows, int64_t cols, bool trans,
                          memory::data_type t) {
  const int64_t per_batch = rows * cols;
  return trans ? memory::desc({batch, rows, cols}, t, {per_batch, 1, rows})
               : memory::desc({batch, rows, cols}, t, {per_batch, cols, 1});
}

struct MatmulPlan {
  dnnl::matmul prim;
  memory::desc a, b, out;
};

}  // namespace

void matmul(const MatmulArgs& args) {
  const Tensor& a = args.a;
  const Tensor& b = args.b;
  const int64_t batch = args.out.dim(0), m = args.out.dim(1), n = args.out.dim(2);
  const int64_t k = args.trans_a ? a.dim(1) : a.dim(2);
  if (batch * m * n == 0) return;
  const auto t = onednn::to_dnnl(a.dtype());
  static onednn::LruCache<std::shared_ptr<MatmulPlan>> plans(256);
  const std::string key = std::to_string(a.dim(0)) + "," + std::to_string(b.dim(0)) + "," +
                          std::to_string(m) + "," + std::to_string(k) + "," + std::to_string(n) +
                          (args.trans_a ? "T" : "N") + (args.trans_b ? "T" : "N") +
                          std::string(dtype_name(a.dtype()));
  auto plan = plans.get_or_create(key, [&] {
    auto p = std::make_shared<MatmulPlan>();
    p->a = operand_desc(a.dim(0), m, k, args.trans_a, t);
    p->b = operand_desc(b.dim(0), k, n, args.trans_b, t);
    p->out = memory::desc({batch, m, n}, t, memory::format_tag::abc);
    DR_DNNL_CHECK(p->prim = dnnl::matmul(dnnl::matmul::primitive_desc(
                      dnnl::matmul::desc(p->a, p->b, p->out), onednn::engine())));
    return p;
  });
  DR_DNNL_CHECK(
      plan->prim.execute(onednn::stream(), {{DNNL_ARG_SRC, onednn::wrap(plan->a, a)},
                                            {DNNL_ARG_WEIGHTS, onednn::wrap(plan->b, b)},
                                            {DNNL_ARG_DST, onednn::wrap(plan->out, args.out)}}));
  onednn::stream().wait();
}

}  // namespace darkroom::cpu
