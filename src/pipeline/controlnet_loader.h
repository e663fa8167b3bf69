// Loading a ControlNet file (ComfyUI's comfy/controlnet.py load_controlnet, for the
// SD 1.x, SD 2.x and SDXL ControlNets of ldm's cldm layout). Files: .safetensors or torch.save
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
// The family comes from the shapes (controlnet_family): SD 1.x (768-wide context, no
// label_emb), SD 2.x (1024-wide context from attn2.to_k, Linear proj_in, no label_emb;
// thibaud/controlnet-sd21-*) or SDXL (2048-wide context, label_emb from 2816). Tiny test
// files declare it in their metadata (safetensors header, or string leaves of a torch.save
// dict) as checkpoints do: "darkroom.family" = "sd15" | "sd2" | "sdxl",
// "darkroom.unet.groups", "darkroom.unet.num_heads" or "darkroom.unet.head_dim".
//
// Difference ControlNets (ComfyUI's DiffControlNetLoader): a file of the "control_model."
// layout holding a tensor named "difference" stores, for every tensor X the model's UNet
// also has, the ControlNet's weight minus the UNet's; given `diff_base` (the UNet's weights
// at the diffusion_model level, read with stored(), or the LoRA-patched copy of a tensor from
// `diff_patched` where it has one), the weight is file[X] + unet[X], the
// UNet's tensor cast to the file tensor's dtype and the sum rounded to it (ComfyUI: cd +=
// model_sd[...].type(cd.dtype)); tensors the UNet lacks (hint block, zero convs) are taken
// as they are. Without `diff_base` such a file is refused (ComfyUI loads it unchanged with
// a warning that it "will very likely not work"); a file without "difference" ignores
// `diff_base` and loads as usual, as in ComfyUI.
//
// Everything else — T2I-Adapters, Control-LoRAs (lora_controlnet), "difference" in files
// of another layout, ControlNet-XS, Union ControlNets, SD3 / Flux / DiT ControlNets
// (controlnet_blocks.*), unreadable files — is refused with "[controlnet] <path>: ..."
// saying what was found.
//
// As ComfyUI, a file whose name ends in _shuffle or _shuffle_fp16 (before the extension)
// gets global average pooling (ControlNet::set_global_average_pooling).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/device_id.h"
#include "core/dtype.h"
#include "models/controlnet.h"
#include "models/weights.h"
#include "pipeline/model_family.h"

namespace darkroom::pipeline {

// Reads, detects and uploads the network in `dtype` on `device`. `bytes`, when given,
// receives the weights' size in `dtype` (the model cache's budget). `diff_base`: the UNet a
// difference ControlNet is added to (see above), or null; `diff_patched`: tensors of it, by
// full name, that replace its stored ones (a LoRA'd MODEL's ModelHandle::lora_weights:
// ComfyUI adds the model's patched weights), or null.
std::shared_ptr<const ControlNet> load_controlnet(
    const std::string& path, DeviceId device, DType dtype, uint64_t* bytes = nullptr,
    const Weights* diff_base = nullptr,
    const std::map<std::string, Tensor>* diff_patched = nullptr);

// Whether the file holds a tensor named "difference" (ComfyUI's mark of a difference
// ControlNet); throws "[controlnet] <path>: ..." for an unreadable file.
bool is_difference_controlnet(const std::string& path);

// The family of a ControlNet of this configuration (UNetConfig::detect_encoder of its
// weights): SD 1.x (context 768, no label_emb), SD 2.x (context 1024, Linear projections,
// no label_emb), SDXL (context 2048, label_emb 2816); nullopt for any other.
std::optional<ModelFamily> controlnet_family(const UNetConfig& c);

}  // namespace darkroom::pipeline
