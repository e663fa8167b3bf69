#include "models/lora_keys.h"

#include <charconv>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "models/key_names.h"
#include "models/unet_diffusers_names.h"

namespace darkroom {
namespace {

constexpr std::string_view kUnet = "model.diffusion_model.";

bool ends_with(std::string_view s, std::string_view t) {
  return s.size() >= t.size() && s.substr(s.size() - t.size()) == t;
}
bool starts_with(std::string_view s, std::string_view t) {
  return s.substr(0, t.size()) == t;
}

std::string flat(std::string_view path) {
  std::string s(path);
  for (char& c : s)
    if (c == '.') c = '_';
  return s;
}

int index_of(std::string_view s) {
  int v = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && v >= 0 ? v : -1;
}

// ldm ResBlock leaf → diffusers (the inverse of unet_diffusers_names.cpp's table).
std::optional<std::string> resnet_leaf(const std::vector<std::string>& p, size_t at) {
  static const std::pair<std::string_view, std::string_view> kRenames[] = {
      {"in_layers.0", "norm1"},  {"in_layers.2", "conv1"},  {"emb_layers.1", "time_emb_proj"},
      {"out_layers.0", "norm2"}, {"out_layers.3", "conv2"},
  };
  const std::string rest = join_key(p, at);
  for (const auto& [ldm, diff] : kRenames)
    if (starts_with(rest, std::string(ldm) + "."))
      return std::string(diff) + rest.substr(ldm.size());
  if (starts_with(rest, "skip_connection.")) return "conv_shortcut" + rest.substr(15);
  return std::nullopt;
}

// The diffusers name of an ldm UNet tensor name (without prefix), for a UNet whose
// levels hold `stride` = L + 1 input blocks; nullopt if it has none.
std::optional<std::string> diffusers_unet_name(const std::string& ldm, int stride) {
  const auto p = split_key(ldm);
  auto cat = [](std::initializer_list<std::string_view> parts) {
    std::string s;
    for (std::string_view x : parts) s += x;
    return s;
  };
  if (p.size() == 3 && p[0] == "time_embed" && (p[1] == "0" || p[1] == "2"))
    return cat({"time_embedding.linear_", p[1] == "0" ? "1." : "2.", p[2]});
  if (p.size() == 4 && p[0] == "label_emb" && p[1] == "0" && (p[2] == "0" || p[2] == "2"))
    return cat({"add_embedding.linear_", p[2] == "0" ? "1." : "2.", p[3]});
  if (p.size() == 3 && p[0] == "out" && (p[1] == "0" || p[1] == "2"))
    return cat({p[1] == "0" ? "conv_norm_out." : "conv_out.", p[2]});
  if (p.size() >= 3 && p[0] == "middle_block") {
    const int m = index_of(p[1]);
    if (m == 1) return "mid_block.attentions.0." + join_key(p, 2);
    auto leaf = resnet_leaf(p, 2);
    if (!leaf || (m != 0 && m != 2)) return std::nullopt;
    return cat({"mid_block.resnets.", m == 0 ? "0." : "1.", *leaf});
  }
  if (p.size() < 4) return std::nullopt;
  const int n = index_of(p[1]), sub = index_of(p[2]);
  if (n < 0 || sub < 0) return std::nullopt;
  const std::string i = std::to_string(n / stride), j = std::to_string(n % stride);
  if (p[0] == "input_blocks") {
    if (n == 0)
      return p.size() == 4 && sub == 0 ? cat({"conv_in.", p[3]}) : std::optional<std::string>();
    const std::string di = std::to_string((n - 1) / stride), dj = std::to_string((n - 1) % stride);
    if (n % stride == 0 && sub == 0 && p[3] == "op" && p.size() == 5)
      return cat({"down_blocks.", std::to_string(n / stride - 1), ".downsamplers.0.conv.", p[4]});
    if (sub == 0) {
      auto leaf = resnet_leaf(p, 3);
      return leaf ? cat({"down_blocks.", di, ".resnets.", dj, ".", *leaf}) : leaf;
    }
    if (sub == 1) return cat({"down_blocks.", di, ".attentions.", dj, ".", join_key(p, 3)});
    return std::nullopt;
  }
  if (p[0] == "output_blocks") {
    if (sub == 0) {
      auto leaf = resnet_leaf(p, 3);
      return leaf ? cat({"up_blocks.", i, ".resnets.", j, ".", *leaf}) : leaf;
    }
    if ((sub == 1 || sub == 2) && p[3] == "conv" && p.size() == 5)
      return cat({"up_blocks.", i, ".upsamplers.0.conv.", p[4]});
    if (sub == 1) return cat({"up_blocks.", i, ".attentions.", j, ".", join_key(p, 3)});
  }
  return std::nullopt;
}

void add_unet(const std::map<std::string, Shape>& base, std::map<std::string, LoraTarget>& map) {
  std::vector<std::string> ldm;  // without prefix
  for (const auto& [name, shape] : base)
    if (starts_with(name, kUnet)) ldm.push_back(name.substr(kUnet.size()));
  if (ldm.empty()) return;
  int stride = 0;
  for (int n = 1; n < 64 && stride == 0; ++n)
    if (base.count(std::string(kUnet) + "input_blocks." + std::to_string(n) + ".0.op.weight"))
      stride = n;
  for (const std::string& l : ldm) {
    if (!ends_with(l, ".weight")) continue;
    const std::string path = l.substr(0, l.size() - 7);
    map["lora_unet_" + flat(path)] = {std::string(kUnet) + l};
  }
  if (stride == 0) return;
  // Diffusers names, kept only if the diffusers → ldm map agrees.
  std::vector<std::string> diff;
  std::vector<std::string> diff_ldm;
  for (const std::string& l : ldm)
    if (auto d = diffusers_unet_name(l, stride)) {
      diff.push_back(*d);
      diff_ldm.push_back(l);
    }
  std::map<std::string, std::string> check;
  try {
    check = unet_ldm_names_from_diffusers(diff);
  } catch (const Error&) {
    return;  // not a layout the diffusers map knows: ldm-named LoRAs only
  }
  for (size_t k = 0; k < diff.size(); ++k) {
    const std::string& d = diff[k];
    if (!ends_with(d, ".weight") || check[d] != diff_ldm[k]) continue;
    const LoraTarget target{std::string(kUnet) + diff_ldm[k]};
    const std::string path = d.substr(0, d.size() - 7);
    map["lora_unet_" + flat(path)] = target;
    map["unet." + path] = target;
    map[path] = target;
    // Older diffusers attention processors: "attn1.processor.to_q_lora.up.weight".
    for (std::string_view leaf : {".to_q", ".to_k", ".to_v", ".to_out.0"})
      if (ends_with(path, leaf)) {
        const std::string head = path.substr(0, path.size() - leaf.size());
        const std::string_view name = leaf == ".to_out.0" ? ".to_out" : leaf;
        map["unet." + head + ".processor" + std::string(name)] = target;
        map[head + ".processor" + std::string(name)] = target;
      }
  }
}

// transformers-CLIP-named base tensors under `prefix`.
void add_clip(const std::map<std::string, Shape>& base, std::string_view prefix,
              std::initializer_list<std::string_view> kohya, std::string_view diffusers,
              std::map<std::string, LoraTarget>& map) {
  for (const auto& [name, shape] : base) {
    if (!starts_with(name, prefix) || !ends_with(name, ".weight")) continue;
    const std::string path = name.substr(prefix.size(), name.size() - prefix.size() - 7);
    for (std::string_view k : kohya) map[std::string(k) + flat(path)] = {name};
    map[std::string(diffusers) + path] = {name};
  }
}

// OpenCLIP-named base tensors under `prefix` ("...model."), as transformers CLIP modules.
void add_open_clip(const std::map<std::string, Shape>& base, std::string_view prefix,
                   std::initializer_list<std::string_view> kohya, std::string_view diffusers,
                   std::map<std::string, LoraTarget>& map) {
  const std::string blocks = std::string(prefix) + "transformer.resblocks.";
  std::set<int> layers;
  for (auto it = base.lower_bound(blocks); it != base.end() && starts_with(it->first, blocks);
       ++it) {
    const std::string_view rest = std::string_view(it->first).substr(blocks.size());
    layers.insert(index_of(rest.substr(0, rest.find('.'))));
  }
  for (int layer : layers) {
    for (const OpenClipLinear& w : open_clip_linears(layer)) {
      const auto found = base.find(std::string(prefix) + w.open_clip);
      if (found == base.end()) continue;
      const int64_t n = static_cast<int64_t>(w.modules.size());
      const int64_t rows = found->second[0] / n;
      for (int64_t j = 0; j < n; ++j) {
        const LoraTarget t =
            n == 1 ? LoraTarget{found->first} : LoraTarget{found->first, j * rows, (j + 1) * rows};
        for (std::string_view k : kohya) map[std::string(k) + flat(w.modules[j])] = t;
        map[std::string(diffusers) + w.modules[j]] = t;
      }
    }
  }
}

}  // namespace

std::map<std::string, LoraTarget> lora_key_map(const std::map<std::string, Shape>& base) {
  std::map<std::string, LoraTarget> map;
  add_unet(base, map);
  add_clip(base, "cond_stage_model.transformer.", {"lora_te_", "lora_te1_"}, "text_encoder.", map);
  add_clip(base, "conditioner.embedders.0.transformer.", {"lora_te1_", "lora_te_"}, "text_encoder.",
           map);
  add_open_clip(base, "cond_stage_model.model.", {"lora_te_", "lora_te1_"}, "text_encoder.", map);
  add_open_clip(base, "conditioner.embedders.1.model.", {"lora_te2_"}, "text_encoder_2.", map);
  // The refiner's bigG is its only tower: ComfyUI names it as the first text encoder (and
  // as Stable Cascade's prior's, lora_prior_te_), not as SDXL's second.
  add_open_clip(base, "conditioner.embedders.0.model.", {"lora_te_", "lora_prior_te_"},
                "text_encoder.", map);
  return map;
}

std::vector<OpenClipLinear> open_clip_linears(int n) {
  const std::string oc = "transformer.resblocks." + std::to_string(n) + ".";
  const std::string hf = "text_model.encoder.layers." + std::to_string(n) + ".";
  return {
      {oc + "attn.in_proj_weight",
       {hf + "self_attn.q_proj", hf + "self_attn.k_proj", hf + "self_attn.v_proj"}},
      {oc + "attn.out_proj.weight", {hf + "self_attn.out_proj"}},
      {oc + "mlp.c_fc.weight", {hf + "mlp.fc1"}},
      {oc + "mlp.c_proj.weight", {hf + "mlp.fc2"}},
  };
}

}  // namespace darkroom
