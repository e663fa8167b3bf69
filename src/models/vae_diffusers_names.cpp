#include "models/vae_diffusers_names.h"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "models/key_names.h"

namespace darkroom {
namespace {

const char* kOp = "vae";

// parts[i] as a block index, or -1.
int index_at(const std::vector<std::string>& parts, size_t i) {
  if (i >= parts.size()) return -1;
  int v = -1;
  const std::string& s = parts[i];
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() ? v : -1;
}

[[noreturn]] void unknown(const std::string& name) {
  fail(kOp, "'", name, "' is not a tensor of a diffusers AutoencoderKL");
}

// Inside a resnet: norm1, conv1, norm2, conv2 as they are; conv_shortcut → nin_shortcut.
std::string resnet_rest(const std::string& name, const std::vector<std::string>& parts,
                        size_t from) {
  if (from + 2 != parts.size()) unknown(name);
  const std::string& layer = parts[from];
  if (layer == "conv_shortcut") return "nin_shortcut." + parts[from + 1];
  if (layer == "norm1" || layer == "norm2" || layer == "conv1" || layer == "conv2")
    return join_key(parts, from);
  unknown(name);
}

std::string attention_rest(const std::string& name, const std::vector<std::string>& parts,
                           size_t from) {
  const std::string& layer = parts[from];
  const std::string leaf = parts.back();
  if (layer == "to_out" && index_at(parts, from + 1) == 0 && from + 3 == parts.size())
    return "proj_out." + leaf;
  if (from + 2 != parts.size()) unknown(name);
  if (layer == "group_norm") return "norm." + leaf;
  if (layer == "to_q" || layer == "query") return "q." + leaf;
  if (layer == "to_k" || layer == "key") return "k." + leaf;
  if (layer == "to_v" || layer == "value") return "v." + leaf;
  if (layer == "proj_attn") return "proj_out." + leaf;
  unknown(name);
}

// One name under encoder./decoder. (parts[0]); n_up = number of decoder up blocks.
std::string side_name(const std::string& name, const std::vector<std::string>& parts, int n_up) {
  const std::string side = parts[0] + ".";
  const std::string& what = parts.size() > 1 ? parts[1] : std::string();
  if ((what == "conv_in" || what == "conv_out") && parts.size() == 3) return join_key(parts, 0);
  if (what == "conv_norm_out" && parts.size() == 3) return side + "norm_out." + parts[2];
  if (what == "mid_block") {
    const int j = index_at(parts, 3);
    if (parts.size() > 4 && parts[2] == "resnets" && (j == 0 || j == 1))
      return side + "mid.block_" + std::to_string(j + 1) + "." + resnet_rest(name, parts, 4);
    if (parts.size() > 4 && parts[2] == "attentions" && j == 0)
      return side + "mid.attn_1." + attention_rest(name, parts, 4);
    unknown(name);
  }
  if (what != "down_blocks" && what != "up_blocks") unknown(name);
  const bool down = what == "down_blocks";
  const int i = index_at(parts, 2);
  if (i < 0 || parts.size() < 5) unknown(name);
  const int level = down ? i : n_up - 1 - i;
  const std::string prefix = side + (down ? "down." : "up.") + std::to_string(level) + ".";
  const int j = index_at(parts, 4);
  if (parts[3] == "resnets" && j >= 0)
    return prefix + "block." + std::to_string(j) + "." + resnet_rest(name, parts, 5);
  const char* sampler = down ? "downsamplers" : "upsamplers";
  if (parts[3] == sampler && j == 0 && parts.size() == 7 && parts[5] == "conv")
    return prefix + (down ? "downsample.conv." : "upsample.conv.") + parts[6];
  unknown(name);
}

}  // namespace

std::map<std::string, std::string> vae_ldm_names_from_diffusers(
    const std::vector<std::string>& diffusers_names) {
  int n_up = 0;
  for (const std::string& name : diffusers_names) {
    const std::vector<std::string> parts = split_key(name);
    if (parts.size() > 2 && parts[0] == "decoder" && parts[1] == "up_blocks")
      n_up = std::max(n_up, index_at(parts, 2) + 1);
  }
  std::map<std::string, std::string> out;
  for (const std::string& name : diffusers_names) {
    const std::vector<std::string> parts = split_key(name);
    std::string ldm;
    if ((parts[0] == "quant_conv" || parts[0] == "post_quant_conv") && parts.size() == 2)
      ldm = name;
    else if ((parts[0] == "encoder" || parts[0] == "decoder") && parts.size() >= 3)
      ldm = side_name(name, parts, n_up);
    else
      unknown(name);
    out.emplace(name, std::move(ldm));
  }
  return out;
}

Weights vae_weights_from_diffusers(const std::shared_ptr<const SafetensorsFile>& file,
                                   DeviceId device, DType dtype) {
  std::vector<std::string> names;
  for (const TensorInfo& t : file->tensors()) names.push_back(t.name);
  std::map<std::string, Tensor> tensors;
  for (const auto& [from, to] : vae_ldm_names_from_diffusers(names)) {
    Tensor t = file->tensor(from);
    // Linear [C, C] attention projections → the 1×1 conv [C, C, 1, 1] ldm stores.
    const bool projection = to.find(".attn_1.") != std::string::npos && to.ends_with(".weight") &&
                            to.find(".norm.") == std::string::npos;
    if (projection && t.ndim() == 2) t = t.reshape({t.dim(0), t.dim(1), 1, 1});
    tensors.emplace(to, std::move(t));
  }
  return Weights::from_tensors(std::move(tensors), "", device, dtype);
}

}  // namespace darkroom
