// Loading a ControlNet file (ComfyUI's comfy/controlnet.py load_controlnet, for the
// SD 1.x and SDXL ControlNets of ldm's cldm layout). Files: .safetensors or torch.save
// (.pth, .ckpt; the restricted pickle reader), told apart by their bytes. Layouts:
//
//   ldm names under "control_model."   ControlNet 1.0 (control_sd15_canny.pth): the key
//                                      control_model.zero_convs.0.0.weight
//   ldm names, no prefix               ControlNet 1.1 (control_v11p_sd15_canny.pth) and
//                                      most .safetensors: zero_convs.0.0.weight
//   diffusers names                    diffusion_pytorch_model.safetensors of a
//                                      ControlNetModel: controlnet_cond_embedding.conv_in
//                                      .weight; renamed to ldm's (the UNet part as
//                                      models/unet_diffusers_names.h renames it;
//                                      controlnet_cond_embedding.{conv_in, blocks.N, conv_out}
//                                      → input_hint_block.{0, 2N + 2, last};
//                                      controlnet_down_blocks.N → zero_convs.N.0;
//                                      controlnet_mid_block → middle_block_out.0)
//
// The family comes from the shapes: SD 1.x (768-wide context, no label_emb) or SDXL
// (2048-wide context, label_emb from 2816). Tiny test files declare it in their metadata
// (safetensors header, or string leaves of a torch.save dict) as checkpoints do:
// "darkroom.family" = "sd15" | "sdxl", "darkroom.unet.groups", "darkroom.unet.num_heads"
// or "darkroom.unet.head_dim". Everything else — T2I-Adapters, Control-LoRAs
// (lora_controlnet), difference ControlNets, ControlNet-XS, Union ControlNets, SD3 / Flux
// / DiT ControlNets (controlnet_blocks.*), SD 2.x ControlNets, unreadable files — is
// refused with "[controlnet] <path>: ..." saying what was found.
//
// As ComfyUI, a file whose name ends in _shuffle or _shuffle_fp16 (before the extension)
// gets global average pooling (ControlNet::set_global_average_pooling).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/device_id.h"
#include "core/dtype.h"
#include "models/controlnet.h"

namespace darkroom::pipeline {

// Reads, detects and uploads the network in `dtype` on `device`. `bytes`, when given,
// receives the weights' size in `dtype` (the model cache's budget).
std::shared_ptr<const ControlNet> load_controlnet(const std::string& path, DeviceId device,
                                                  DType dtype, uint64_t* bytes = nullptr);

}  // namespace darkroom::pipeline
