#include "backend/cpu/onednn_utils.h"

namespace darkroom::cpu::onednn {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

dnnl::memory::data_type to_dnnl(DType t) {
  switch (t) {
    case DType::F32:
      return dnnl::memory::data_type::f32;
    case DType::F16:
      return dnnl::memory::data_type::f16;
    case DType::BF16:
      return dnnl::memory::data_type::bf16;
    case DType::I32:
      return dnnl::memory::data_type::s32;
    case DType::I8:
      return dnnl::memory::data_type::s8;
    case DType::U8:
      return dnnl::memory::data_type::u8;
    default:
      fail("onednn", "dtype ", dtype_name(t), " has no oneDNN equivalent");
  }
}

bool has_native_bf16() {
  const auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

std::string isa_name() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

dnnl::memory wrap(const dnnl::memory::desc& md, const Tensor& t) {
  return dnnl::memory(md, engine(), t.raw());
}

std::string dims_key(const dnnl::memory::dims& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += 'x';
    s += std::to_string(d[i]);
  }
  return s;
}

dnnl::memory WeightCache::get(const Tensor& weight, const dnnl::memory::desc& plain,
                              const dnnl::memory::desc& wanted) {
  if (plain == wanted) return wrap(plain, weight);
  // The descriptor's identity: its bytes are stable for equal descriptors.
  const dnnl_memory_desc_t& c = wanted.data;
  std::string key = std::to_string(weight.storage()->id()) + ":" +
                    std::to_string(weight.byte_offset()) + ":" +
                    std::string(reinterpret_cast<const char*>(&c), sizeof c);
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && !it->second.source.expired()) return it->second.prepared;
  for (auto e = entries_.begin(); e != entries_.end();)
    e = e->second.source.expired() ? entries_.erase(e) : std::next(e);
  dnnl::memory src = wrap(plain, weight);
  dnnl::memory dst(wanted, engine());
  DR_DNNL_CHECK(dnnl::reorder(src, dst).execute(stream(), src, dst));
  stream().wait();
  entries_[key] = Entry{weight.storage(), dst};
  return dst;
}

void WeightCache::clear() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

size_t WeightCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void run_weighted(const WeightedPlan& plan, const Tensor& x, const Tensor& weight,
                  const Tensor& bias, const Tensor& out) {
  dnnl::memory w = weight_cache().get(weight, plan.weights_plain, plan.weights_wanted);
  std::unordered_map<int, dnnl::memory> io{{DNNL_ARG_SRC, wrap(plan.src, x)},
                                           {DNNL_ARG_WEIGHTS, w},
                                           {DNNL_ARG_DST, wrap(plan.dst, out)}};
  if (bias.defined()) io[DNNL_ARG_BIAS] = wrap(plan.bias, bias);
  DR_DNNL_CHECK(plan.prim.execute(stream(), io));
  stream().wait();
}

WeightCache& weight_cache() {
  static WeightCache cache;
  return cache;
}

}  // namespace darkroom::cpu::onednn
