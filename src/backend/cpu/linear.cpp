// linear on oneDNN's matmul: out[M, N] = x[M, K] · weight[N, K]ᵀ + bias[N].
// bf16 / f16: the weight is handed to the primitive in the blocked layout it asks for
// ("any": VNNI / AMX tiles), reordered once per weight and cached
// (onednn::weight_cache()). f32: the primitive reads the plain [N, K] weight as it is —
// oneDNN's f32 brgemm takes it at the speed of its own layout (`darkroom bench ops`:
// 90–105% of the "any" reference in the same run) — so an f32 model's linear weights
// are held once instead of twice (SDXL's UNet in f32: 10 GB saved).
#include "backend/cpu/kernels.h"
#include "backend/cpu/onednn_utils.h"

namespace darkroom::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

onednn::WeightedPlan make_plan(int64_t m, int64_t k, int64_t n, DType dt, bool has_bias) {
  const auto t = onednn::to_dnnl(dt);
  onednn::WeightedPlan p;
  p.src = memory::desc({m, k}, t, tag::ab);
  p.weights_plain = memory::desc({k, n}, t, tag::ba);  // [N, K] row-major viewed as [K, N]
  p.dst = memory::desc({m, n}, t, tag::ab);
  if (has_bias) p.bias = memory::desc({1, n}, t, tag::ab);
  const memory::desc w_any({k, n}, t, dt == DType::F32 ? tag::ba : tag::any);
  dnnl::matmul::desc d = has_bias ? dnnl::matmul::desc(p.src, w_any, p.bias, p.dst)
                                  : dnnl::matmul::desc(p.src, w_any, p.dst);
  dnnl::matmul::primitive_desc pd(d, onednn::engine());
  p.weights_wanted = pd.weights_desc();
  p.prim = dnnl::matmul(pd);
  return p;
}

}  // namespace

void linear(const LinearArgs& a) {
  const int64_t m = a.x.dim(0), k = a.x.dim(1), n = a.weight.dim(0);
  if (m == 0) return;
  const bool has_bias = a.bias.defined();
  static onednn::LruCache<std::shared_ptr<onednn::WeightedPlan>> plans(512);
  const std::string key = std::to_string(m) + "," + std::to_string(k) + "," + std::to_string(n) +
                          "," + std::string(dtype_name(a.x.dtype())) + (has_bias ? ",b" : "");
  auto plan = plans.get_or_create(key, [&] {
    std::shared_ptr<onednn::WeightedPlan> p;
    DR_DNNL_CHECK(
        p = std::make_shared<onednn::WeightedPlan>(make_plan(m, k, n, a.x.dtype(), has_bias)));
    return p;
  });
  onednn::run_weighted(*plan, a.x, a.weight, a.bias, a.out);
}

}  // namespace darkroom::cpu
