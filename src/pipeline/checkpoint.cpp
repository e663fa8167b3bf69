#include "pipeline/checkpoint.h"

#include <fstream>
#include <map>
#include <optional>
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

// The context width each family's UNet has (its text encoder's width).
int64_t context_width(ModelFamily family) {
  switch (family) {
    case ModelFamily::Sd15:
      return 768;
    case ModelFamily::Sd2:
      return 1024;
    case ModelFamily::Sdxl:
      return 2048;
    case ModelFamily::SdxlRefiner:
      return 1280;
  }
  return 0;
}

// The family whose parts are all there (ignoring the context width), if any.
std::optional<ModelFamily> family_by_parts(const CheckpointFacts& f) {
  if (!f.has_unet || !f.has_vae) return std::nullopt;
  if (f.has_label_emb) {
    if (f.has_sdxl_clip_l && f.has_sdxl_clip_g) return ModelFamily::Sdxl;
    if (f.has_refiner_clip_g && !f.has_sdxl_clip_l) return ModelFamily::SdxlRefiner;
    return std::nullopt;
  }
  if (f.has_conditioner) return std::nullopt;
  if (f.has_sd2_clip && !f.has_clip_l) return ModelFamily::Sd2;
  if (f.has_clip_l && !f.has_open_clip) return ModelFamily::Sd15;
  return std::nullopt;
}

using NamedShapes = std::vector<std::pair<std::string, Shape>>;

NamedShapes named_shapes(const SafetensorsFile& file) {
  NamedShapes out;
  out.reserve(file.tensors().size());
  for (const TensorInfo& t : file.tensors()) out.emplace_back(t.name, t.shape);
  return out;
}

// torch.save's ZIP archives start with a local file header; a pickle of the legacy format
// with the PROTO opcode. Anything else is left to the safetensors reader to judge.
bool looks_like_torch_save(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[4] = {};
  in.read(head, sizeof head);
  if (in.gcount() < 2) return false;
  return (head[0] == 'P' && head[1] == 'K') || static_cast<unsigned char>(head[0]) == 0x80;
}

constexpr std::string_view kStateDict = "state_dict.";

CheckpointFacts inspect(const NamedShapes& tensors,
                        const std::map<std::string, std::string>& metadata) {
  CheckpointFacts f;
  if (auto it = metadata.find("darkroom.family"); it != metadata.end())
    f.declared_family = it->second;
  std::map<std::string, size_t> prefixes;
  for (const auto& [full_name, shape] : tensors) {
    const std::string_view name = full_name;
    ++f.tensors;
    ++prefixes[std::string(name.substr(0, name.find('.')))];
    if (name == "model.diffusion_model.input_blocks.0.0.weight") f.has_unet = true;
    if (starts_with(name, "model.diffusion_model.label_emb.")) f.has_label_emb = true;
    if (starts_with(name, "cond_stage_model.transformer.text_model.")) f.has_clip_l = true;
    if (starts_with(name, "cond_stage_model.model.")) f.has_open_clip = true;
    if (starts_with(name, "conditioner.embedders.")) f.has_conditioner = true;
    if (starts_with(name, "first_stage_model.decoder.")) f.has_vae = true;
    if (name == "model.diffusion_model.label_emb.0.0.weight" && shape.ndim() == 2)
      f.adm_in_channels = shape[1];
    if (name == std::string(kSd2ClipPrefix) + "ln_final.weight") f.has_sd2_clip = true;
    if (starts_with(name, kSdxlClipLPrefix)) f.has_sdxl_clip_l = true;
    if (name == std::string(kSdxlClipGPrefix) + "ln_final.weight") f.has_sdxl_clip_g = true;
    if (name == std::string(kSdxlRefinerClipGPrefix) + "ln_final.weight")
      f.has_refiner_clip_g = true;
  }
  // The first cross-attention of the UNet: input_blocks.1 in SD 1.x/2.x; SDXL has none
  // there, so any attn2.to_k under the UNet will do.
  for (const auto& [name, shape] : tensors) {
    if (starts_with(name, "model.diffusion_model.") &&
        name.find(".attn2.to_k.weight") != std::string::npos && shape.ndim() == 2) {
      f.context_dim = shape[1];
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

ModelFamily detect(const CheckpointFacts& f, const std::string& path) {
  const std::optional<ModelFamily> by_parts = family_by_parts(f);
  if (!f.declared_family.empty()) {
    DR_CHECK(by_parts && f.declared_family == family_key(*by_parts), "checkpoint", path,
             ": the metadata says darkroom.family = '", f.declared_family, "' but the tensors ",
             by_parts ? std::string("are ") + family_name(*by_parts) + "'s"
                      : std::string("are no complete model of a known family"));
    return *by_parts;
  }
  if (by_parts && f.context_dim == context_width(*by_parts) &&
      (*by_parts != ModelFamily::Sdxl || f.adm_in_channels == 2816) &&
      (*by_parts != ModelFamily::SdxlRefiner || f.adm_in_channels == 2560))
    return *by_parts;
  fail("checkpoint", path,
       ": not a Stable Diffusion 1.x, 2.x, SDXL or SDXL refiner single-file checkpoint, the "
       "families darkroom loads (",
       guess(f), "). Found: ", f.tensors, " tensors; UNet ", f.has_unet ? "yes" : "no",
       ", cross-attention context width ", f.context_dim,
       " (SD 1.x: 768), SD 2.x: 1024, SDXL: 2048, SDXL refiner: 1280; label_emb ",
       f.has_label_emb ? "yes" : "no", " (adm width ", f.adm_in_channels, "), CLIP-L text model ",
       f.has_clip_l ? "yes" : "no", ", OpenCLIP ", f.has_open_clip ? "yes" : "no",
       " (complete: ", f.has_sd2_clip ? "yes" : "no", "), conditioner.embedders ",
       f.has_conditioner ? "yes" : "no", " (CLIP-L ", f.has_sdxl_clip_l ? "yes" : "no",
       ", bigG as embedder 1 ", f.has_sdxl_clip_g ? "yes" : "no", ", bigG as embedder 0 ",
       f.has_refiner_clip_g ? "yes" : "no", "), VAE decoder ", f.has_vae ? "yes" : "no",
       "; top-level prefixes: ", f.top_level_prefixes);
}

}  // namespace

const char* family_key(ModelFamily f) {
  switch (f) {
    case ModelFamily::Sd15:
      return "sd15";
    case ModelFamily::Sd2:
      return "sd2";
    case ModelFamily::Sdxl:
      return "sdxl";
    case ModelFamily::SdxlRefiner:
      return "sdxl_refiner";
  }
  return "?";
}

const char* family_name(ModelFamily f) {
  switch (f) {
    case ModelFamily::Sd15:
      return "SD 1.x";
    case ModelFamily::Sd2:
      return "SD 2.x";
    case ModelFamily::Sdxl:
      return "SDXL";
    case ModelFamily::SdxlRefiner:
      return "SDXL refiner";
  }
  return "?";
}

CheckpointFile CheckpointFile::open(const std::string& path) {
  CheckpointFile f;
  f.path_ = path;
  if (!looks_like_torch_save(path)) {
    f.safetensors_ = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path));
    f.shapes_ = named_shapes(*f.safetensors_);
    f.metadata_ = f.safetensors_->metadata();
    return f;
  }
  f.torch_ = std::make_shared<const TorchCheckpoint>(TorchCheckpoint::open(path));
  bool nested = false;
  for (const CkptTensorInfo& t : f.torch_->tensors()) nested |= starts_with(t.name, kStateDict);
  for (const CkptTensorInfo& t : f.torch_->tensors()) {
    if (nested && !starts_with(t.name, kStateDict)) continue;
    const std::string name = nested ? t.name.substr(kStateDict.size()) : t.name;
    f.torch_names_[name] = t.name;
    f.shapes_.emplace_back(name, t.shape);
  }
  for (const auto& [key, value] : f.torch_->metadata()) {
    if (nested && !starts_with(key, kStateDict)) continue;
    f.metadata_[nested ? key.substr(kStateDict.size()) : key] = value;
  }
  return f;
}

bool CheckpointFile::has(const std::string& name) const {
  return safetensors_ ? safetensors_->find(name) != nullptr : torch_names_.contains(name);
}

Weights CheckpointFile::weights(const std::string& prefix, DeviceId device, DType dtype) const {
  if (safetensors_) return Weights::from_file(safetensors_, prefix, device, dtype);
  // Views of the mapping (copies only for tensors saved non-contiguous), read and cast by
  // Weights when a network asks for them.
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, file_name] : torch_names_)
    if (starts_with(name, prefix)) tensors.emplace(name, torch_->tensor(file_name));
  return Weights::from_tensors(std::move(tensors), prefix, device, dtype);
}

CheckpointFacts inspect_checkpoint(const SafetensorsFile& file) {
  return inspect(named_shapes(file), file.metadata());
}

CheckpointFacts inspect_checkpoint(const CheckpointFile& file) {
  return inspect(file.tensors(), file.metadata());
}

ModelFamily detect_family(const SafetensorsFile& file) {
  return detect(inspect_checkpoint(file), file.path());
}

ModelFamily detect_family(const CheckpointFile& file) {
  return detect(inspect_checkpoint(file), file.path());
}

}  // namespace darkroom::pipeline
