// Single-file checkpoints: which model family a .safetensors holds, read from its tensor
// names and shapes (nothing else in such a file says so reliably), and the prefixes under
// which each part lives.
//
//   SD 1.x  model.diffusion_model.* with a 768-wide cross-attention context and no
//           label_emb; cond_stage_model.transformer.text_model.* (CLIP-L);
//           first_stage_model.* (the KL VAE)
//
// Other families (SD 2.x: 1024-wide context, OpenCLIP under cond_stage_model.model.;
// SDXL: label_emb and conditioner.embedders.*) are recognised only to say so in the error.
#pragma once

#include <memory>
#include <string>

#include "io/safetensors.h"

namespace darkroom::pipeline {

enum class ModelFamily { Sd15 };

inline constexpr const char* kSd15UNetPrefix = "model.diffusion_model.";
inline constexpr const char* kSd15ClipPrefix = "cond_stage_model.transformer.text_model.";
inline constexpr const char* kSd15VaePrefix = "first_stage_model.";

// What the tensor names and shapes say about a checkpoint.
struct CheckpointFacts {
  size_t tensors = 0;
  bool has_unet = false;           // model.diffusion_model.input_blocks.0.0.weight
  int64_t context_dim = 0;         // width of attn2.to_k's input in the first transformer
  bool has_label_emb = false;      // SDXL-style class/vector conditioning
  bool has_clip_l = false;         // cond_stage_model.transformer.text_model.*
  bool has_open_clip = false;      // cond_stage_model.model.* (SD 2.x)
  bool has_conditioner = false;    // conditioner.embedders.* (SDXL, SD3-era files)
  bool has_vae = false;            // first_stage_model.decoder.*
  std::string top_level_prefixes;  // "model (1) , first_stage_model (248), ..." for errors
};

CheckpointFacts inspect_checkpoint(const SafetensorsFile& file);

// The family, or darkroom::Error "[checkpoint] <path>: ..." naming what was found and the
// family it looks like.
ModelFamily detect_family(const SafetensorsFile& file);

}  // namespace darkroom::pipeline
