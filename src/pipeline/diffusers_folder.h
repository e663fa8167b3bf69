// Diffusers pipeline folders (what save_pretrained writes and ComfyUI's DiffusersLoader
// reads) as the same MODEL / CLIP / VAE a single-file checkpoint gives:
//
//   model_index.json                 _class_name: StableDiffusionPipeline (SD 1.x, or SD 2.x
//                                    when text_encoder's hidden_act is "gelu": OpenCLIP
//                                    ViT-H, which diffusers' conversion stores without its
//                                    last layer: ComfyUI's default "penultimate" of 24 is
//                                    the folder's last; CLIPSetLastLayer -1 is refused),
//                                    StableDiffusionXLPipeline (SDXL),
//                                    StableDiffusionXLImg2ImgPipeline (the refiner when it has
//                                    no text_encoder, else SDXL)
//   unet/                            UNet2DConditionModel (unet_diffusers_names.h); GroupNorm
//                                    groups and heads from its config.json (norm_num_groups;
//                                    attention_head_dim: a number = heads, a list = heads per
//                                    level, i.e. a fixed head width)
//   text_encoder/                    CLIPTextModel: CLIP-L (SD 1.x, SDXL), ViT-H (SD 2.x)
//   text_encoder_2/                  CLIPTextModelWithProjection: bigG (SDXL, the refiner)
//   vae/                             AutoencoderKL (vae_diffusers_names.h)
//   scheduler/scheduler_config.json  prediction_type "v_prediction" → v, else eps
//   tokenizer/                       vocab.json + merges.txt when present, else the shared
//                                    tokenizer
//
// Each part: config.json plus model.safetensors / diffusion_pytorch_model.safetensors
// (the fp16 variant's *.fp16.safetensors when that is the only one). The heads and
// activation of the text encoders come from their config.json.
#pragma once

#include <memory>
#include <string>

#include "pipeline/checkpoint_loader.h"
#include "pipeline/model_family.h"

namespace darkroom::pipeline {

// A directory holding model_index.json.
bool is_diffusers_folder(const std::string& path);

// The family model_index.json and the text encoder's config say, or darkroom::Error
// "[diffusers] <dir>: ...".
ModelFamily diffusers_folder_family(const std::string& dir);

LoadedCheckpoint load_diffusers_folder(const std::string& dir,
                                       std::shared_ptr<const text::ClipTokenizer> tokenizer,
                                       DType dtype, DeviceId device = kCpu);

}  // namespace darkroom::pipeline
