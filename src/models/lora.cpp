#include "models/lora.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string_view>

#include "backend/ops.h"
#include "core/error.h"

namespace darkroom {
namespace {

constexpr const char* kOp = "lora";

// Tensor-name suffix → part, for every spelling of the formats in lora.h.
constexpr std::pair<std::string_view, std::string_view> kSuffixes[] = {
    {".lora_up.weight", "up"},
    {".lora_down.weight", "down"},
    {".lora_mid.weight", "mid"},
    {".lora_B.weight", "up"},
    {".lora_A.weight", "down"},
    {"_lora.up.weight", "up"},
    {"_lora.down.weight", "down"},
    {".lora.up.weight", "up"},
    {".lora.down.weight", "down"},
    {".lora_linear_layer.up.weight", "up"},
    {".lora_linear_layer.down.weight", "down"},
    {".alpha", "alpha"},
    {".hada_w1_a", "hada_w1_a"},
    {".hada_w1_b", "hada_w1_b"},
    {".hada_w2_a", "hada_w2_a"},
    {".hada_w2_b", "hada_w2_b"},
    {".hada_t1", "hada_t1"},
    {".hada_t2", "hada_t2"},
    {".lokr_w1", "lokr_w1"},
    {".lokr_w1_a", "lokr_w1_a"},
    {".lokr_w1_b", "lokr_w1_b"},
    {".lokr_w2", "lokr_w2"},
    {".lokr_w2_a", "lokr_w2_a"},
    {".lokr_w2_b", "lokr_w2_b"},
    {".lokr_t2", "lokr_t2"},
    {".dora_scale", "dora_scale"},  // DoRA: not supported, the module is reported
};

struct Module {
  std::map<std::string, Tensor> parts;
  std::vector<std::string> names;  // the file's tensor names
};

Tensor f32_copy(const Tensor& t) {
  const std::vector<float> v = t.to_floats();
  return Tensor::from_floats(v, t.shape());
}

// The products below take `dry`: when set they only check shapes and return an
// uninitialised tensor of the result's shape (LoraFile::open validates every module
// that way without computing its delta).

// a [M, K] @ b [K, N] → [M, N], f32.
Tensor mm(const Tensor& a, const Tensor& b, bool dry) {
  DR_ASSERT(a.ndim() == 2 && b.ndim() == 2 && a.dim(1) == b.dim(0));
  if (dry) return Tensor::empty({a.dim(0), b.dim(1)}, DType::F32);
  return ops::matmul(a, b).reshape({a.dim(0), b.dim(1)});
}

// Dims 1.. flattened: [d0, rest].
Tensor flat2(const Tensor& t) {
  return t.reshape({t.dim(0), t.numel() / t.dim(0)});
}

// einsum("i j k l, j r, i p -> p r k l", t [R1, R2, kh, kw], b [R2, I], a [R1, O]):
// LyCORIS' Tucker product → [O, I, kh, kw].
Tensor tucker(const Tensor& t, const Tensor& b, const Tensor& a, const std::string& where,
              bool dry) {
  DR_CHECK(t.ndim() == 4 && b.ndim() == 2 && a.ndim() == 2 && t.dim(0) == a.dim(0) &&
               t.dim(1) == b.dim(0),
           kOp, where, ": Tucker core ", t.shape(), " does not fit ", b.shape(), " and ",
           a.shape());
  const int64_t r1 = t.dim(0), r2 = t.dim(1), kk = t.dim(2) * t.dim(3);
  const int64_t in = b.dim(1), out = a.dim(1);
  if (dry) return Tensor::empty({out, in, t.dim(2), t.dim(3)}, DType::F32);
  // u[i, r, q] = Σ_j t[i, j, q] b[j, r], then o[p, r, q] = Σ_i a[i, p] u[i, r, q].
  Tensor u = Tensor::zeros({r1, in, kk}, DType::F32);
  const float *pt = t.data<float>(), *pb = b.data<float>(), *pa = a.data<float>();
  float* pu = u.data<float>();
  for (int64_t i = 0; i < r1; ++i)
    for (int64_t j = 0; j < r2; ++j)
      for (int64_t r = 0; r < in; ++r)
        for (int64_t q = 0; q < kk; ++q)
          pu[(i * in + r) * kk + q] += pt[(i * r2 + j) * kk + q] * pb[j * in + r];
  Tensor o = Tensor::zeros({out, in, t.dim(2), t.dim(3)}, DType::F32);
  float* po = o.data<float>();
  for (int64_t p = 0; p < out; ++p)
    for (int64_t i = 0; i < r1; ++i)
      for (int64_t x = 0; x < in * kk; ++x)
        po[p * in * kk + x] += pa[i * out + p] * pu[i * in * kk + x];
  return o;
}

// Kronecker product of two tensors of equal rank.
Tensor kron(const Tensor& a, const Tensor& b, bool dry) {
  DR_ASSERT(a.ndim() == b.ndim());
  const int nd = a.ndim();
  std::vector<int64_t> dims(static_cast<size_t>(nd));
  for (int d = 0; d < nd; ++d) dims[static_cast<size_t>(d)] = a.dim(d) * b.dim(d);
  Tensor o = Tensor::empty(Shape(dims), DType::F32);
  if (dry) return o;
  const float *pa = a.data<float>(), *pb = b.data<float>();
  float* po = o.data<float>();
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  for (int64_t n = 0; n < o.numel(); ++n) {
    // idx: the output index of element n (row-major).
    int64_t rem = n, ia = 0, ib = 0;
    for (int d = nd - 1; d >= 0; --d) {
      idx[static_cast<size_t>(d)] = rem % dims[static_cast<size_t>(d)];
      rem /= dims[static_cast<size_t>(d)];
    }
    for (int d = 0; d < nd; ++d) {
      const int64_t x = idx[static_cast<size_t>(d)];
      ia = ia * a.dim(d) + x / b.dim(d);
      ib = ib * b.dim(d) + x % b.dim(d);
    }
    po[n] = pa[ia] * pb[ib];
  }
  return o;
}

Tensor scaled(Tensor t, float s) {
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] *= s;
  return t;
}

const Tensor& part(const LoraPatch& p, const char* name) {
  auto it = p.parts.find(name);
  DR_CHECK(it != p.parts.end(), kOp, "module '", p.module, "' has no ", name);
  return it->second;
}
bool has(const LoraPatch& p, const char* name) {
  return p.parts.count(name) > 0;
}

// Unscaled ΔW as the product gives it (any shape of the right size) and the alpha divisor.
std::pair<Tensor, float> raw_delta(const LoraPatch& p, bool dry) {
  const std::string& w = p.module;
  switch (p.kind) {
    case LoraKind::Lora: {
      const Tensor& up = part(p, "up");
      Tensor down = part(p, "down");
      const int64_t rank = down.dim(0);
      DR_CHECK(up.numel() % rank == 0 && up.numel() / up.dim(0) == rank, kOp, w, ": lora_up ",
               up.shape(), " and lora_down ", down.shape(), " disagree on the rank");
      if (has(p, "mid")) {
        const Tensor& mid = part(p, "mid");
        DR_CHECK(mid.ndim() == 4 && mid.dim(0) == rank && mid.dim(1) == rank && down.ndim() == 4 &&
                     down.dim(2) * down.dim(3) == 1,
                 kOp, w, ": lora_mid ", mid.shape(), " does not fit lora_down ", down.shape());
        // down'[a, i, kh, kw] = Σ_j mid[a, j, kh, kw] · down[j, i]
        Tensor eye = Tensor::zeros({rank, rank}, DType::F32);
        for (int64_t i = 0; i < rank; ++i) eye.data<float>()[i * rank + i] = 1;
        down = tucker(mid.reshape({rank, rank, mid.dim(2), mid.dim(3)}), flat2(down), eye, w,
                      dry);  // [rank, I, kh, kw]
      }
      return {mm(flat2(up), flat2(down), dry), static_cast<float>(rank)};
    }
    case LoraKind::LoHa: {
      const Tensor &w1a = part(p, "hada_w1_a"), &w1b = part(p, "hada_w1_b");
      const Tensor &w2a = part(p, "hada_w2_a"), &w2b = part(p, "hada_w2_b");
      Tensor m1, m2;
      if (has(p, "hada_t1")) {
        m1 = tucker(part(p, "hada_t1"), flat2(w1b), flat2(w1a), w, dry);
        m2 = tucker(part(p, "hada_t2"), flat2(w2b), flat2(w2a), w, dry);
      } else {
        DR_CHECK(w1a.dim(1) == w1b.dim(0) && w2a.dim(1) == w2b.dim(0), kOp, w,
                 ": hada_w1/w2 factors disagree on the rank");
        m1 = mm(flat2(w1a), flat2(w1b), dry);
        m2 = mm(flat2(w2a), flat2(w2b), dry);
      }
      DR_CHECK(m1.numel() == m2.numel(), kOp, w, ": hada_w1 ", m1.shape(), " and hada_w2 ",
               m2.shape(), " differ in size");
      float* a = m1.data<float>();
      const float* b = m2.data<float>();
      for (int64_t i = 0; i < m1.numel() && !dry; ++i) a[i] *= b[i];
      return {m1, static_cast<float>(w1b.dim(0))};
    }
    case LoraKind::LoKr: {
      float dim = 0;  // 0: alpha does not apply
      Tensor w1, w2;
      if (has(p, "lokr_w1")) {
        w1 = part(p, "lokr_w1");
      } else {
        const Tensor &a = part(p, "lokr_w1_a"), &b = part(p, "lokr_w1_b");
        DR_CHECK(a.dim(1) == b.dim(0), kOp, w, ": lokr_w1_a/b disagree on the rank");
        w1 = mm(flat2(a), flat2(b), dry);
        dim = static_cast<float>(b.dim(0));
      }
      if (has(p, "lokr_w2")) {
        w2 = part(p, "lokr_w2");
      } else {
        const Tensor &a = part(p, "lokr_w2_a"), &b = part(p, "lokr_w2_b");
        if (has(p, "lokr_t2")) {
          w2 = tucker(part(p, "lokr_t2"), flat2(b), flat2(a), w, dry);
        } else {
          DR_CHECK(a.dim(1) == b.dim(0), kOp, w, ": lokr_w2_a/b disagree on the rank");
          w2 = mm(flat2(a), flat2(b), dry);
        }
        dim = static_cast<float>(b.dim(0));
      }
      DR_CHECK(w1.ndim() == 2 && (w2.ndim() == 2 || w2.ndim() == 4), kOp, w, ": lokr_w1 ",
               w1.shape(), " / lokr_w2 ", w2.shape(), " have unsupported ranks");
      if (w2.ndim() == 4) w1 = w1.reshape({w1.dim(0), w1.dim(1), 1, 1});
      return {kron(w1, w2, dry), dim};
    }
  }
  fail(kOp, "unknown patch kind");
}

// A1111/PEFT alpha for PEFT-named modules: diffusers' "lora_adapter_metadata" JSON holds
// "<component>.lora_alpha": <number>. Read without a JSON library (flat object).
bool metadata_alpha(const std::map<std::string, std::string>& meta, const std::string& module,
                    float& alpha) {
  auto it = meta.find("lora_adapter_metadata");
  if (it == meta.end()) return false;
  const std::string key = "\"" + module.substr(0, module.find('.')) + ".lora_alpha\"";
  const size_t at = it->second.find(key);
  if (at == std::string::npos) return false;
  const size_t colon = it->second.find(':', at + key.size());
  if (colon == std::string::npos) return false;
  char* end = nullptr;
  const float v = std::strtof(it->second.c_str() + colon + 1, &end);
  if (end == it->second.c_str() + colon + 1) return false;
  alpha = v;
  return true;
}

}  // namespace

std::map<std::string, Shape> base_shapes(const SafetensorsFile& file) {
  std::map<std::string, Shape> out;
  for (const TensorInfo& t : file.tensors()) out.emplace(t.name, t.shape);
  return out;
}

LoraFile LoraFile::open(const std::string& path, const std::map<std::string, Shape>& base) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  const auto keys = lora_key_map(base);
  LoraFile out;
  out.path_ = path;
  std::map<std::string, Module> modules;
  for (const TensorInfo& t : file.tensors()) {
    bool known = false;
    for (const auto& [suffix, name] : kSuffixes) {
      const std::string_view n = t.name;
      if (n.size() <= suffix.size() || n.substr(n.size() - suffix.size()) != suffix) continue;
      Module& m = modules[std::string(n.substr(0, n.size() - suffix.size()))];
      m.parts[std::string(name)] = f32_copy(file.tensor(t.name));
      m.names.push_back(t.name);
      known = true;
      break;
    }
    if (!known) out.unmatched_.push_back(t.name);
  }
  for (auto& [module, m] : modules) {
    auto target = keys.find(module);
    const bool lora = m.parts.count("up") || m.parts.count("down");
    const bool loha = m.parts.count("hada_w1_a") > 0;
    const bool lokr = m.parts.count("lokr_w1") || m.parts.count("lokr_w1_a");
    if (target == keys.end() || lora + loha + lokr != 1 || m.parts.count("dora_scale")) {
      out.unmatched_.insert(out.unmatched_.end(), m.names.begin(), m.names.end());
      continue;
    }
    LoraPatch p;
    p.module = module;
    p.target = target->second;
    p.kind = lora ? LoraKind::Lora : loha ? LoraKind::LoHa : LoraKind::LoKr;
    Shape shape = base.at(p.target.name);
    if (p.target.row_end > 0) shape[0] = p.target.row_end - p.target.row_begin;
    p.shape = shape;
    if (auto a = m.parts.find("alpha"); a != m.parts.end()) {
      DR_CHECK(a->second.numel() == 1, kOp, path, ": ", module, ".alpha has shape ",
               a->second.shape());
      p.alpha = a->second.data<float>()[0];
      p.has_alpha = true;
      m.parts.erase(a);
    } else if (lora) {
      p.has_alpha = metadata_alpha(file.metadata(), module, p.alpha);
    }
    DR_CHECK(!lora || (m.parts.count("up") && m.parts.count("down")), kOp, path, ": ", module,
             " has only one of lora_up / lora_down");
    for (const auto& [name, t] : m.parts)
      DR_CHECK(t.ndim() >= 2 && t.numel() > 0, kOp, path, ": ", module, " ", name, " has shape ",
               t.shape(), " (a factor must be a matrix or a conv kernel)");
    p.parts = std::move(m.parts);
    const Tensor d = raw_delta(p, /*dry=*/true).first;  // checks the factors' shapes
    DR_CHECK(d.numel() == shape.numel(), kOp, path, ": module '", module, "' gives a delta of ",
             d.shape(), " (", d.numel(), " values) but its target ", p.target.name, " is ", shape);
    out.patches_.push_back(std::move(p));
  }
  std::sort(out.unmatched_.begin(), out.unmatched_.end());
  return out;
}

Tensor lora_delta(const LoraPatch& patch, float strength) {
  auto [d, rank] = raw_delta(patch, /*dry=*/false);
  DR_CHECK(d.numel() == patch.shape.numel(), kOp, patch.module, ": delta ", d.shape(),
           " does not fill ", patch.shape);
  float scale = 1;
  if (patch.has_alpha && !(patch.kind == LoraKind::LoKr && rank == 0)) scale = patch.alpha / rank;
  return scaled(f32_copy(d).reshape(patch.shape), strength * scale);
}

namespace {

// f32 [target's shape] += delta on rows [row_begin, row_end) (all rows when both are 0).
void add_in_place(Tensor& f32, const Tensor& delta, const LoraTarget& target) {
  const int64_t row = f32.numel() / f32.dim(0);
  const int64_t begin = target.row_end > 0 ? target.row_begin : 0;
  DR_CHECK(delta.numel() % row == 0 && begin + delta.numel() / row <= f32.dim(0), kOp, "delta ",
           delta.shape(), " does not fit ", target.name, " ", f32.shape());
  float* p = f32.data<float>() + begin * row;
  const float* d = delta.data<float>();
  for (int64_t i = 0; i < delta.numel(); ++i) p[i] += d[i];
}

}  // namespace

Tensor add_lora_delta(const Tensor& base, const Tensor& delta, const LoraTarget& target) {
  Tensor out = f32_copy(base);
  add_in_place(out, delta, target);
  return out;
}

}  // namespace darkroom
