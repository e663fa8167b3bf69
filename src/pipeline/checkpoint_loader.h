// Loading the MODEL / CLIP / VAE values of ComfyUI's loader nodes from files:
//
//   load_sd15_checkpoint  a single-file SD 1.x .safetensors (CheckpointLoaderSimple)
//   load_vae_file         a VAE .safetensors, keys under "first_stage_model." or bare
//                         ("encoder.*", "decoder.*", ...) (VAELoader)
//
// What the shapes cannot say (GroupNorm groups, heads) follows the released models. Tiny
// test models say theirs in the file's metadata: "darkroom.unet.groups",
// "darkroom.unet.num_heads", "darkroom.vae.groups", "darkroom.clip.heads", and
// "darkroom.family" = "sd15" (their 32-wide context is not SD 1.x's 768).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/device_id.h"
#include "core/dtype.h"
#include "pipeline/model_handles.h"

namespace darkroom::pipeline {

struct LoadedCheckpoint {
  ModelHandle model;
  ClipHandle clip;
  VaeHandle vae;
  uint64_t bytes = 0;  // the weights' size in `dtype`, for the model cache's budget
};

// The tokenizer is shared by every checkpoint (SD 1.x's CLIP-L vocabulary). The weights
// are uploaded to `device` once; on a CUDA device the MODEL gets a UNetRunner (graphs on).
LoadedCheckpoint load_sd15_checkpoint(const std::string& path,
                                      std::shared_ptr<const text::ClipTokenizer> tokenizer,
                                      DType dtype, DeviceId device = kCpu);

struct LoadedVae {
  VaeHandle vae;
  uint64_t bytes = 0;
};
LoadedVae load_vae_file(const std::string& path, DType dtype, DeviceId device = kCpu);

// ComfyUI's ModelSamplingDiscrete: the SD sigma table, optionally rescaled to zero
// terminal SNR (the last ᾱ set to 4.8973451890853435e-08 as ComfyUI does).
std::shared_ptr<const sampling::DiscreteSchedule> discrete_schedule(bool zsnr);

}  // namespace darkroom::pipeline
