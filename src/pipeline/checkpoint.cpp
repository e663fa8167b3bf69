#include "pipeline/checkpoint.h"

#include <map>
#include <sstream>
#include <string_view>

#include "core/error.h"

namespace darkroom::pipeline {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// The family the facts point to, for the error message.
std::string guess(const CheckpointFacts& f) {
  if (!f.has_unet) return "no SD-style UNet (model.diffusion_model.input_blocks.*) at all";
  if (f.has_label_emb || f.has_conditioner) return "looks like SDXL";
  if (f.context_dim == 1024 || f.has_open_clip) return "looks like SD 2.x";
  return "an unknown UNet variant";
}

}  // namespace

CheckpointFacts inspect_checkpoint(const SafetensorsFile& file) {
  CheckpointFacts f;
  std::map<std::string, size_t> prefixes;
  for (const TensorInfo& t : file.tensors()) {
    const std::string_view name = t.name;
    ++f.tensors;
    ++prefixes[std::string(name.substr(0, name.find('.')))];
    if (name == "model.diffusion_model.input_blocks.0.0.weight") f.has_unet = true;
    if (starts_with(name, "model.diffusion_model.label_emb.")) f.has_label_emb = true;
    if (starts_with(name, "cond_stage_model.transformer.text_model.")) f.has_clip_l = true;
    if (starts_with(name, "cond_stage_model.model.")) f.has_open_clip = true;
    if (starts_with(name, "conditioner.embedders.")) f.has_conditioner = true;
    if (starts_with(name, "first_stage_model.decoder.")) f.has_vae = true;
  }
  // The first cross-attention of the UNet: input_blocks.1 in SD 1.x/2.x; SDXL has none
  // there, so any attn2.to_k under the UNet will do.
  for (const TensorInfo& t : file.tensors()) {
    if (starts_with(t.name, "model.diffusion_model.") &&
        t.name.find(".attn2.to_k.weight") != std::string::npos && t.shape.ndim() == 2) {
      f.context_dim = t.shape[1];
      break;
    }
  }
  std::ostringstream os;
  bool first = true;
  for (const auto& [p, n] : prefixes) {
    os << (first ? "" : ", ") << p << " (" << n << ")";
    first = false;
  }
  f.top_level_prefixes = os.str();
  return f;
}

ModelFamily detect_family(const SafetensorsFile& file) {
  const CheckpointFacts f = inspect_checkpoint(file);
  const bool sd15 = f.has_unet && f.context_dim == 768 && !f.has_label_emb && f.has_clip_l &&
                    !f.has_conditioner && f.has_vae;
  if (sd15) return ModelFamily::Sd15;
  fail("checkpoint", file.path(),
       ": not a Stable Diffusion 1.x single-file checkpoint, the only family darkroom loads "
       "so far (",
       guess(f), "). Found: ", f.tensors, " tensors; UNet ", f.has_unet ? "yes" : "no",
       ", cross-attention context width ", f.context_dim, " (SD 1.x: 768), label_emb ",
       f.has_label_emb ? "yes" : "no", ", CLIP-L text model ", f.has_clip_l ? "yes" : "no",
       ", OpenCLIP ", f.has_open_clip ? "yes" : "no", ", conditioner.embedders ",
       f.has_conditioner ? "yes" : "no", ", VAE decoder ", f.has_vae ? "yes" : "no",
       "; top-level prefixes: ", f.top_level_prefixes);
}

}  // namespace darkroom::pipeline
