// load_controlnet: format and family detection, diffusers → ldm renaming (see the header).
#include "pipeline/controlnet_loader.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/key_names.h"
#include "models/unet_diffusers_names.h"
#include "pipeline/checkpoint.h"

namespace darkroom::pipeline {
namespace {

const char* kOp = "controlnet";
constexpr std::string_view kPthPrefix = "control_model.";

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

bool any_name(const CheckpointFile& f, const std::function<bool(std::string_view)>& pred) {
  return std::any_of(f.tensors().begin(), f.tensors().end(),
                     [&](const auto& t) { return pred(t.first); });
}

// "control_model (340), difference (1)": the first name parts and their counts.
std::string top_level(const CheckpointFile& f) {
  std::map<std::string, int> counts;
  for (const auto& [name, shape] : f.tensors()) ++counts[name.substr(0, name.find('.'))];
  std::ostringstream os;
  int shown = 0;
  for (const auto& [head, n] : counts) {
    if (shown++ == 12) {
      os << ", ...";
      break;
    }
    os << (shown > 1 ? ", " : "") << head << " (" << n << ")";
  }
  return counts.empty() ? "none" : os.str();
}

// A known kind of control model darkroom does not run, or "".
std::string unsupported_kind(const CheckpointFile& f) {
  auto has_part = [&](std::string_view part) {
    return any_name(f, [&](std::string_view n) { return n.find(part) != std::string_view::npos; });
  };
  auto has_head = [&](std::string_view head) {
    return any_name(f, [&](std::string_view n) { return starts_with(n, head); });
  };
  if (f.has("lora_controlnet")) return "a Control-LoRA (lora_controlnet)";
  if (has_head("controlnet_blocks.") || has_head("controlnet_x_embedder.") ||
      has_head("controlnet_single_blocks."))
    return "an SD3 / Flux / DiT ControlNet (controlnet_blocks.*)";
  if (has_part("base_to_ctrl") || has_part("ctrl_to_base") || has_part("control_to_base"))
    return "a ControlNet-XS";
  if (has_part("task_embedding") || has_part("control_add_embedding") ||
      has_part("transformer_layes"))
    return "a Union ControlNet (task_embedding / control_add_embedding)";
  if (has_head("adapter.") || has_head("body.") || has_head("backbone."))
    return "a T2I-Adapter (or Stable Cascade ControlNet)";
  if (f.has("difference") && !f.has(std::string(kPthPrefix) + "zero_convs.0.0.weight"))
    return "a difference ControlNet without control_model. names (the only layout whose "
           "weights ComfyUI adds to a model's)";
  return "";
}

int index_of(std::string_view s) {
  int v = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && v >= 0 ? v : -1;
}

// diffusers ControlNetModel name → ldm cldm.ControlNet name, for every tensor of the file.
std::map<std::string, std::string> ldm_names(const CheckpointFile& f) {
  int hint_blocks = 0;
  for (const auto& [name, shape] : f.tensors()) {
    const auto p = split_key(name);
    if (p.size() == 4 && p[0] == "controlnet_cond_embedding" && p[1] == "blocks")
      hint_blocks = std::max(hint_blocks, index_of(p[2]) + 1);
  }
  std::map<std::string, std::string> out;
  std::vector<std::string> unet_part;
  for (const auto& [name, shape] : f.tensors()) {
    const auto p = split_key(name);
    const std::string leaf = p.back();
    std::string to;
    if (p.size() == 3 && p[0] == "controlnet_cond_embedding" && p[1] == "conv_in") {
      to = "input_hint_block.0." + leaf;
    } else if (p.size() == 3 && p[0] == "controlnet_cond_embedding" && p[1] == "conv_out") {
      to = "input_hint_block." + std::to_string(2 * hint_blocks + 2) + "." + leaf;
    } else if (p.size() == 4 && p[0] == "controlnet_cond_embedding" && p[1] == "blocks" &&
               index_of(p[2]) >= 0) {
      to = "input_hint_block." + std::to_string(2 * index_of(p[2]) + 2) + "." + leaf;
    } else if (p.size() == 3 && p[0] == "controlnet_down_blocks" && index_of(p[1]) >= 0) {
      to = "zero_convs." + p[1] + ".0." + leaf;
    } else if (p.size() == 2 && p[0] == "controlnet_mid_block") {
      to = "middle_block_out.0." + leaf;
    } else {
      unet_part.push_back(name);
      continue;
    }
    out.emplace(name, std::move(to));
  }
  for (auto& [from, to] : unet_ldm_names_from_diffusers(unet_part, /*encoder_only=*/true))
    out.emplace(from, std::move(to));
  return out;
}

// The tensors under ldm names: views of a .safetensors mapping, or copies (in `dtype`, on
// the CPU) of a torch.save file's.
Weights renamed_weights(const CheckpointFile& f, const std::map<std::string, std::string>& names,
                        DeviceId device, DType dtype) {
  std::map<std::string, Tensor> tensors;
  if (!f.is_torch_save()) {
    auto st = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(f.path()));
    for (const auto& [from, to] : names) tensors.emplace(to, st->tensor(from));
  } else {
    const Weights all = f.weights("", kCpu, dtype);
    for (const auto& [from, to] : names) tensors.emplace(to, all.get(from));
  }
  return Weights::from_tensors(std::move(tensors), "", device, dtype);
}

std::optional<int> metadata_int(const CheckpointFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) return std::nullopt;
  int v = 0;
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  DR_CHECK(ec == std::errc() && end == s.data() + s.size() && v > 0, kOp, f.path(), ": metadata ",
           key, " = '", s, "' is not a positive integer");
  return v;
}

std::string facts(const UNetConfig& c) {
  std::ostringstream os;
  os << "model_channels " << c.model_channels << ", " << c.levels() << " levels, context width "
     << c.context_dim << (c.linear_proj ? ", Linear proj_in" : ", 1×1-conv proj_in")
     << ", label_emb "
     << (c.adm_in_channels > 0 ? std::to_string(c.adm_in_channels) : std::string("none"));
  return os.str();
}

// The family from the shapes (or the one a tiny test file declares); the heads and groups.
void settle_family(const CheckpointFile& f, UNetConfig& c) {
  auto it = f.metadata().find("darkroom.family");
  const std::string declared = it == f.metadata().end() ? "" : it->second;
  if (declared.empty()) {
    DR_CHECK(controlnet_family(c).has_value(), kOp, f.path(),
             ": a ControlNet for no supported model (darkroom runs SD 1.x ControlNets: context "
             "768, no label_emb; SD 2.x ones: context 1024, Linear proj_in, no label_emb; and "
             "SDXL ones: context 2048, label_emb 2816); found ",
             facts(c));
  } else {
    DR_CHECK(declared == "sd15" || declared == "sd2" || declared == "sdxl", kOp, f.path(),
             ": darkroom.family '", declared, "' is not sd15, sd2 or sdxl");
    DR_CHECK((declared == "sdxl") == (c.adm_in_channels > 0), kOp, f.path(), ": declared ",
             declared, " but found ", facts(c));
    DR_CHECK(declared != "sd2" || c.linear_proj, kOp, f.path(),
             ": declared sd2 but proj_in is a 1×1 conv (SD 2.x's is Linear)");
  }
  if (auto g = metadata_int(f, "darkroom.unet.groups")) c.groups = *g;
  if (auto h = metadata_int(f, "darkroom.unet.num_heads")) {
    c.num_heads = *h;
    c.head_dim = 0;
  }
  if (auto d = metadata_int(f, "darkroom.unet.head_dim")) {
    c.head_dim = *d;
    c.num_heads = 0;
  }
}

// A difference ControlNet's tensors under ldm names (without "control_model."): file[X] +
// base[X] where the base UNet has X (its stored tensor cast to the file tensor's dtype,
// the sum rounded to that dtype, as torch's in-place add), file[X] elsewhere; on the CPU.
// `patched`: full names of `base` whose tensor is this one instead (a LoRA'd UNet's), or null.
Weights difference_weights(const CheckpointFile& f, const Weights& base,
                           const std::map<std::string, Tensor>* patched, DeviceId device,
                           DType dtype) {
  const Weights all = f.weights("", kCpu, DType::F32);
  std::map<std::string, Tensor> tensors;
  int added = 0;
  for (const auto& [name, shape] : f.tensors()) {
    if (!starts_with(name, kPthPrefix)) continue;
    const std::string x = name.substr(kPthPrefix.size());
    Tensor t = all.stored(name);
    const std::string full = base.prefix() + x;
    const auto p = patched ? patched->find(full) : std::map<std::string, Tensor>::const_iterator();
    const Tensor b = patched && p != patched->end() ? p->second : base.stored(full);
    if (b.defined()) {
      DR_CHECK(b.shape() == t.shape(), kOp, f.path(), ": ", name, " has shape ", t.shape(),
               " but the model's ", base.prefix(), x, " has ", b.shape(),
               "; the difference ControlNet is for another model");
      // base in the file's dtype (f8 / f16 / bf16 → f32 is exact, so via f32), summed in
      // f32 and rounded once to the file's dtype: torch's f16 / bf16 addition.
      auto to_f32 = [](const Tensor& v) { return ops::cast(v, DType::F32); };
      const Tensor base_in_file_dtype = ops::cast(to_f32(b), t.dtype());
      t = ops::cast(ops::add(to_f32(t), to_f32(base_in_file_dtype)), t.dtype());
      ++added;
    }
    tensors.emplace(x, std::move(t));
  }
  DR_CHECK(added > 0, kOp, f.path(),
           ": a difference ControlNet none of whose tensors the model's UNet has (names under ",
           base.prefix().empty() ? std::string("\"\"") : base.prefix(),
           "); it is for another model");
  return Weights::from_tensors(std::move(tensors), "", device, dtype);
}

CheckpointFile open_file(const std::string& path) {
  try {
    return CheckpointFile::open(path);
  } catch (const Error& e) {
    fail(kOp, path, ": not a readable .safetensors or torch.save file: ", e.what());
  }
}

}  // namespace

bool is_difference_controlnet(const std::string& path) {
  return open_file(path).has("difference");
}

std::optional<ModelFamily> controlnet_family(const UNetConfig& c) {
  if (c.context_dim == 768 && c.adm_in_channels == 0) return ModelFamily::Sd15;
  if (c.context_dim == 1024 && c.adm_in_channels == 0 && c.linear_proj) return ModelFamily::Sd2;
  if (c.context_dim == 2048 && c.adm_in_channels == 2816) return ModelFamily::Sdxl;
  return std::nullopt;
}

std::shared_ptr<const ControlNet> load_controlnet(
    const std::string& path, DeviceId device, DType dtype, uint64_t* bytes,
    const Weights* diff_base, const std::map<std::string, Tensor>* diff_patched) {
  const CheckpointFile file = open_file(path);
  const std::string kind = unsupported_kind(file);
  DR_CHECK(kind.empty(), kOp, path, ": ", kind,
           "; darkroom runs ControlNets of the ldm / diffusers ControlNetModel layout for SD 1.x, "
           "SD 2.x and SDXL");
  const bool difference = file.has("difference");
  DR_CHECK(!difference || diff_base != nullptr, kOp, path,
           ": a difference ControlNet (a \"difference\" tensor: its weights are added to a "
           "model's UNet); load it with DiffControlNetLoader (Load ControlNet Model (diff)), "
           "which takes the MODEL");

  try {
    std::optional<Weights> w;
    if (file.has("controlnet_cond_embedding.conv_in.weight")) {  // diffusers
      w = renamed_weights(file, ldm_names(file), device, dtype);
    } else if (difference) {  // control_model. names (unsupported_kind checked it)
      w = difference_weights(file, *diff_base, diff_patched, device, dtype);
    } else if (file.has(std::string(kPthPrefix) + "zero_convs.0.0.weight")) {
      w = file.weights(std::string(kPthPrefix), device, dtype);
    } else if (file.has("zero_convs.0.0.weight")) {
      w = file.weights("", device, dtype);
    } else {
      fail(kOp, path,
           ": not a ControlNet (no zero_convs.0.0.weight, control_model.zero_convs."
           "0.0.weight or controlnet_cond_embedding.conv_in.weight); ",
           file.tensors().size(), " tensors, top-level names: ", top_level(file));
    }
    UNetConfig config = ControlNet::detect_config(*w);
    settle_family(file, config);
    ControlNet loaded = ControlNet::load(*w, config);
    // ComfyUI: global average pooling for files whose name (without its extension) ends
    // in _shuffle or _shuffle_fp16.
    const std::string stem = std::filesystem::path(path).stem().string();
    auto ends_with = [&](std::string_view s) {
      return stem.size() >= s.size() && stem.compare(stem.size() - s.size(), s.size(), s) == 0;
    };
    loaded.set_global_average_pooling(ends_with("_shuffle") || ends_with("_shuffle_fp16"));
    auto net = std::make_shared<const ControlNet>(std::move(loaded));
    if (bytes) {
      *bytes = 0;
      const size_t skip = w->prefix().size();
      for (const std::string& name : w->used())
        *bytes += static_cast<uint64_t>(w->shape(std::string_view(name).substr(skip)).numel()) *
                  dtype_size(dtype);
    }
    return net;
  } catch (const Error& e) {
    const std::string what = e.what();
    if (starts_with(what, "[controlnet] " + path)) throw;
    fail(kOp, path, ": ", what);
  }
}

}  // namespace darkroom::pipeline
