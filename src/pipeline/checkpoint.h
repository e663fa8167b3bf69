// Single-file checkpoints: which model family a file holds, read from its tensor names and
// shapes (nothing else in such a file says so reliably), and the prefixes under which each
// part lives. Both formats load: .safetensors, and PyTorch's torch.save files (.ckpt, .pt,
// .pth) through the restricted pickle reader (io/torch_checkpoint.h); CheckpointFile tells
// them apart by their first bytes, not by the file name.
//
//   SD 1.x        model.diffusion_model.* with a 768-wide cross-attention context and no
//                 label_emb; cond_stage_model.transformer.text_model.* (CLIP-L);
//                 first_stage_model.* (the KL VAE)
//   SD 2.x        no label_emb, 1024-wide context; OpenCLIP ViT-H under
//                 cond_stage_model.model.* (ln_final present); the VAE
//   SDXL          label_emb (adm 2816), 2048-wide context; CLIP-L under
//                 conditioner.embedders.0.transformer.text_model.*, OpenCLIP bigG under
//                 conditioner.embedders.1.model.*; the VAE
//   SDXL refiner  label_emb (adm 2560), 1280-wide context; bigG alone under
//                 conditioner.embedders.0.model.*; the VAE
//
// Tiny test models (whose widths are no released model's) declare their family in the
// metadata ("darkroom.family" = "sd15" | "sd2" | "sdxl" | "sdxl_refiner"): the parts must
// still be there, only the context width is not checked. Anything else is refused with the
// facts that were found.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "models/weights.h"
#include "pipeline/model_family.h"

namespace darkroom::pipeline {

inline constexpr const char* kSd15UNetPrefix = "model.diffusion_model.";
inline constexpr const char* kSd15ClipPrefix = "cond_stage_model.transformer.text_model.";
inline constexpr const char* kSd15VaePrefix = "first_stage_model.";
inline constexpr const char* kSd2ClipPrefix = "cond_stage_model.model.";
inline constexpr const char* kSdxlClipLPrefix = "conditioner.embedders.0.transformer.text_model.";
inline constexpr const char* kSdxlClipGPrefix = "conditioner.embedders.1.model.";
inline constexpr const char* kSdxlRefinerClipGPrefix = "conditioner.embedders.0.model.";

// What the tensor names and shapes say about a checkpoint.
struct CheckpointFacts {
  size_t tensors = 0;
  bool has_unet = false;            // model.diffusion_model.input_blocks.0.0.weight
  int64_t context_dim = 0;          // width of attn2.to_k's input in the first transformer
  bool has_label_emb = false;       // SDXL-style class/vector conditioning
  bool has_clip_l = false;          // cond_stage_model.transformer.text_model.*
  bool has_open_clip = false;       // cond_stage_model.model.* (SD 2.x)
  bool has_conditioner = false;     // conditioner.embedders.* (SDXL, SD3-era files)
  bool has_vae = false;             // first_stage_model.decoder.*
  int64_t adm_in_channels = 0;      // label_emb.0.0.weight's input width (SDXL 2816, refiner 2560)
  bool has_sd2_clip = false;        // cond_stage_model.model.ln_final.weight
  bool has_sdxl_clip_l = false;     // conditioner.embedders.0.transformer.text_model.*
  bool has_sdxl_clip_g = false;     // conditioner.embedders.1.model.ln_final.weight
  bool has_refiner_clip_g = false;  // conditioner.embedders.0.model.ln_final.weight
  std::string declared_family;      // metadata darkroom.family (tiny test models), or ""
  std::string top_level_prefixes;   // "model (1) , first_stage_model (248), ..." for errors
};

// A checkpoint file of either format, as named tensors.
//   .safetensors  the tensors as named in the file (zero-copy views of the mapping);
//   torch.save    a ZIP archive (PyTorch >= 1.6; the legacy format is refused with a clear
//                 error); nested dicts are joined with '.', and when the file holds a
//                 "state_dict" (as ldm's training checkpoints do) only that level is
//                 kept and its prefix dropped (ComfyUI's load_torch_file), so the names
//                 are the same as in the .safetensors of the same model.
class CheckpointFile {
 public:
  // Throws darkroom::Error "[safetensors] ..." / "[ckpt] <path>: ..." on a bad file.
  static CheckpointFile open(const std::string& path);

  const std::string& path() const { return path_; }
  bool is_torch_save() const { return torch_ != nullptr; }
  // Every tensor's name and shape (safetensors: in file order; torch.save: by name).
  const std::vector<std::pair<std::string, Shape>>& tensors() const { return shapes_; }
  // The safetensors header's metadata, or a torch.save file's non-tensor leaves
  // ("global_step" → "470000"), with the same "state_dict." rule as the tensors.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const;

  // The tensors under `prefix`, cast to `dtype` on `device` when read (models/weights.h).
  Weights weights(const std::string& prefix, DeviceId device, DType dtype) const;

 private:
  std::string path_;
  std::shared_ptr<const SafetensorsFile> safetensors_;  // or
  std::shared_ptr<const TorchCheckpoint> torch_;
  std::map<std::string, std::string> torch_names_;  // torch.save: our name → the file's
  std::vector<std::pair<std::string, Shape>> shapes_;
  std::map<std::string, std::string> metadata_;
};

CheckpointFacts inspect_checkpoint(const SafetensorsFile& file);
CheckpointFacts inspect_checkpoint(const CheckpointFile& file);

// The family, or darkroom::Error "[checkpoint] <path>: ..." naming what was found and the
// family it looks like. A declared darkroom.family must agree with the parts found.
ModelFamily detect_family(const SafetensorsFile& file);
ModelFamily detect_family(const CheckpointFile& file);

}  // namespace darkroom::pipeline
