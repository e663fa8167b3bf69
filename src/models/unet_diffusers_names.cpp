#include "models/unet_diffusers_names.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <string_view>

#include "models/key_names.h"

namespace darkroom {
namespace {

const char* kOp = "unet";

// A decimal index, or -1.
int index_of(std::string_view s) {
  int v = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && v >= 0 ? v : -1;
}

// What follows "resnets.J." in diffusers, as ldm names it inside a ResBlock.
std::string resnet_leaf(std::string_view name, const std::vector<std::string>& p, size_t at) {
  static const std::pair<std::string_view, std::string_view> kRenames[] = {
      {"norm1", "in_layers.0"},  {"conv1", "in_layers.2"},  {"time_emb_proj", "emb_layers.1"},
      {"norm2", "out_layers.0"}, {"conv2", "out_layers.3"}, {"conv_shortcut", "skip_connection"},
  };
  DR_CHECK(at + 2 == p.size(), kOp, "unknown diffusers ResBlock tensor '", name, "'");
  for (const auto& [from, to] : kRenames)
    if (p[at] == from) return std::string(to) + "." + std::string(p[at + 1]);
  fail(kOp, "unknown diffusers ResBlock tensor '", name, "'");
}

struct Layout {
  int down_stride = 0;         // L + 1: input blocks per down level (resnets + downsample)
  int up_stride = 0;           // L + 1: output blocks per up level (resnets)
  std::set<int> up_with_attn;  // up_blocks.I that have attentions
};

Layout layout_of(const std::vector<std::string>& names, bool encoder_only) {
  Layout l;
  int down_resnets = 0, up_resnets = 0;
  for (const std::string& n : names) {
    const auto p = split_key(n);
    if (p.size() < 4) continue;
    const int block = index_of(p[1]), j = index_of(p[3]);
    if (p[0] == "down_blocks" && block == 0 && p[2] == "resnets")
      down_resnets = std::max(down_resnets, j + 1);
    if (p[0] == "up_blocks" && block == 0 && p[2] == "resnets")
      up_resnets = std::max(up_resnets, j + 1);
    if (p[0] == "up_blocks" && block >= 0 && p[2] == "attentions") l.up_with_attn.insert(block);
  }
  if (encoder_only) {
    DR_CHECK(down_resnets > 0 && up_resnets == 0 && l.up_with_attn.empty(), kOp,
             "not the input side of a diffusers UNet: down_blocks.0 has ", down_resnets,
             " resnets and up_blocks.0 ", up_resnets, " (expected L > 0 and none)");
    l.down_stride = down_resnets + 1;
    return l;
  }
  DR_CHECK(down_resnets > 0 && up_resnets == down_resnets + 1, kOp,
           "not a diffusers UNet: down_blocks.0 has ", down_resnets, " resnets and up_blocks.0 ",
           up_resnets, " (expected L and L+1)");
  l.down_stride = down_resnets + 1;
  l.up_stride = up_resnets;
  return l;
}

std::string ldm_name(const std::string& name, const Layout& l, bool encoder_only) {
  const auto p = split_key(name);
  const std::string_view head = p[0];
  auto numbered = [](const char* list, int i, int j) {
    return std::string(list) + "." + std::to_string(i) + "." + std::to_string(j) + ".";
  };
  auto bad = [&]() -> std::string { fail(kOp, "unknown diffusers UNet tensor '", name, "'"); };

  if (p.size() == 3 && (head == "time_embedding" || head == "add_embedding")) {
    const char* base = head == "time_embedding" ? "time_embed." : "label_emb.0.";
    if (p[1] == "linear_1") return base + std::string("0.") + std::string(p[2]);
    if (p[1] == "linear_2") return base + std::string("2.") + std::string(p[2]);
    return bad();
  }
  if (encoder_only && (head == "up_blocks" || head == "conv_norm_out" || head == "conv_out"))
    return bad();
  if (p.size() == 2) {
    if (head == "conv_in") return "input_blocks.0.0." + std::string(p[1]);
    if (head == "conv_norm_out") return "out.0." + std::string(p[1]);
    if (head == "conv_out") return "out.2." + std::string(p[1]);
    return bad();
  }
  if (head == "mid_block" && p.size() >= 4) {
    const int j = index_of(p[2]);
    if (p[1] == "resnets" && (j == 0 || j == 1))
      return "middle_block." + std::to_string(2 * j) + "." + resnet_leaf(name, p, 3);
    if (p[1] == "attentions" && j == 0) return "middle_block.1." + join_key(p, 3);
    return bad();
  }
  if ((head == "down_blocks" || head == "up_blocks") && p.size() >= 5) {
    const int i = index_of(p[1]), j = index_of(p[3]);
    if (i < 0 || j < 0) return bad();
    const std::string_view kind = p[2];
    if (head == "down_blocks") {
      if (kind == "resnets" && j + 1 < l.down_stride)
        return numbered("input_blocks", 1 + i * l.down_stride + j, 0) + resnet_leaf(name, p, 4);
      if (kind == "attentions" && j + 1 < l.down_stride)
        return numbered("input_blocks", 1 + i * l.down_stride + j, 1) + join_key(p, 4);
      if (kind == "downsamplers" && j == 0 && p[4] == "conv" && p.size() == 6)
        return numbered("input_blocks", (i + 1) * l.down_stride, 0) + "op." + std::string(p[5]);
      return bad();
    }
    if (kind == "resnets" && j < l.up_stride)
      return numbered("output_blocks", i * l.up_stride + j, 0) + resnet_leaf(name, p, 4);
    if (kind == "attentions" && j < l.up_stride)
      return numbered("output_blocks", i * l.up_stride + j, 1) + join_key(p, 4);
    if (kind == "upsamplers" && j == 0 && p[4] == "conv" && p.size() == 6)
      return numbered("output_blocks", i * l.up_stride + l.up_stride - 1,
                      l.up_with_attn.count(i) ? 2 : 1) +
             "conv." + std::string(p[5]);
    return bad();
  }
  return bad();
}

}  // namespace

std::map<std::string, std::string> unet_ldm_names_from_diffusers(
    const std::vector<std::string>& diffusers_names, bool encoder_only) {
  const Layout layout = layout_of(diffusers_names, encoder_only);
  std::map<std::string, std::string> out;
  std::set<std::string> taken;
  for (const std::string& n : diffusers_names) {
    std::string ldm = ldm_name(n, layout, encoder_only);
    DR_CHECK(taken.insert(ldm).second, kOp, "two diffusers tensors map to '", ldm, "'");
    out.emplace(n, std::move(ldm));
  }
  return out;
}

Weights unet_weights_from_diffusers(const std::shared_ptr<const SafetensorsFile>& file,
                                    DeviceId device, DType dtype) {
  std::vector<std::string> names;
  for (const TensorInfo& t : file->tensors()) names.push_back(t.name);
  std::map<std::string, Tensor> tensors;
  // Views into the file's mapping; Weights::get copies each one when it is asked for.
  for (const auto& [from, to] : unet_ldm_names_from_diffusers(names))
    tensors.emplace(to, file->tensor(from));
  return Weights::from_tensors(std::move(tensors), "", device, dtype);
}

}  // namespace darkroom
