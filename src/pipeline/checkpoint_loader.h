// Loading the MODEL / CLIP / VAE values of ComfyUI's loader nodes from files:
//
//   load_checkpoint       a single-file checkpoint of any family that detect_family knows
//                         (SD 1.x, SD 2.x, SDXL, SDXL refiner; .safetensors or torch.save),
//                         as CheckpointLoaderSimple loads it
//                         or a diffusers folder (model_index.json; diffusers_folder.h)
//   load_sd15_checkpoint  the same, refusing every family but SD 1.x
//   load_vae_file         a VAE .safetensors, keys under "first_stage_model.", bare
//                         ("encoder.*", "decoder.*", ...) or diffusers' AutoencoderKL
//                         names ("decoder.up_blocks.*", renamed by vae_diffusers_names.h)
//                         (VAELoader)
//
// What the shapes cannot say (GroupNorm groups, heads) follows the released models. Tiny
// test models say theirs in the file's metadata: "darkroom.unet.groups",
// "darkroom.unet.num_heads" or "darkroom.unet.head_dim", "darkroom.vae.groups",
// "darkroom.clip.heads" (CLIP-L), "darkroom.clip_g.heads" (OpenCLIP), "darkroom.prediction" ("eps"
// | "v"), and "darkroom.family" = "sd15" | "sd2" | "sdxl" | "sdxl_refiner" (their context widths
// are no released model's).
//
// What the loader sets per family (model_family.h): the MODEL's latent scale and format
// (SDXL: 0.13025, "sdxl"), its prediction (SD 2.x: v when the file says so, else ComfyUI's
// test: the std of output_blocks.11.1.transformer_blocks.0.norm1.bias above 0.09; SDXL
// files with a "v_pred" key: v, and "ztsnr": zero terminal SNR), and the CLIP's default
// layer (clip_skip 2 for SD 2.x and SDXL).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/device_id.h"
#include "core/dtype.h"
#include "pipeline/model_handles.h"

namespace darkroom {
class Weights;
}

namespace darkroom::pipeline {

class CheckpointFile;

struct LoadedCheckpoint {
  ModelHandle model;
  ClipHandle clip;
  VaeHandle vae;
  uint64_t bytes = 0;  // the weights' size in `dtype`, for the model cache's budget
};

// The tokenizer is shared by every checkpoint (CLIP's vocabulary, OpenCLIP's too). The
// weights are uploaded to `device` once; on a CUDA device the MODEL gets a UNetRunner
// (graphs on).
LoadedCheckpoint load_checkpoint(const std::string& path,
                                 std::shared_ptr<const text::ClipTokenizer> tokenizer, DType dtype,
                                 DeviceId device = kCpu);
LoadedCheckpoint load_sd15_checkpoint(const std::string& path,
                                      std::shared_ptr<const text::ClipTokenizer> tokenizer,
                                      DType dtype, DeviceId device = kCpu);

struct LoadedVae {
  VaeHandle vae;
  uint64_t bytes = 0;
};
LoadedVae load_vae_file(const std::string& path, DType dtype, DeviceId device = kCpu);

// Whether an SD 2.x checkpoint is v-prediction (`uw`: its UNet, at the
// "model.diffusion_model." level). Metadata "darkroom.prediction" ("v" | "eps") decides when
// present; else ComfyUI's SD20.model_type: a UNet of 4 input channels (inpainting ones never
// are) whose output_blocks.11.1.transformer_blocks.0.norm1.bias has a population std above
// 0.09 (torch.std(unbiased=False)).
bool sd2_is_v_prediction(const CheckpointFile& file, const Weights& uw);

// ComfyUI's ModelSamplingDiscrete: the SD sigma table, optionally rescaled to zero
// terminal SNR (the last ᾱ set to 4.8973451890853435e-08 as ComfyUI does).
std::shared_ptr<const sampling::DiscreteSchedule> discrete_schedule(bool zsnr);

}  // namespace darkroom::pipeline
