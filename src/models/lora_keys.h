// Which base-checkpoint tensor each LoRA module name patches. The map is built from the
// names the base checkpoint actually has (as ComfyUI's model_lora_keys_unet / _clip do),
// never from a fixed list, so any block layout of the supported families works.
//
// For a base tensor "<prefix><path>.weight" the module names that reach it are:
//   UNet (model.diffusion_model.<ldm path>):
//     lora_unet_<ldm path with '_' for '.'>             kohya/A1111, ldm names
//     lora_unet_<diffusers path with '_'>               kohya sd-scripts (diffusers names)
//     unet.<diffusers path>, <diffusers path>           diffusers / PEFT
//     [unet.]<…attnN.processor.to_q|k|v|out>            older diffusers attention processors
//   CLIP-L (cond_stage_model.transformer.<path>, conditioner.embedders.0.transformer.<path>):
//     lora_te_<path with '_'>, lora_te1_<…>, text_encoder.<path>
//   OpenCLIP (cond_stage_model.model.<…> SD 2.x ViT-H: lora_te_, lora_te1_ / text_encoder.;
//             conditioner.embedders.1.model.<…> SDXL bigG: lora_te2_ / text_encoder_2.;
//             conditioner.embedders.0.model.<…> the refiner's bigG, its only tower:
//             lora_te_, lora_prior_te_ / text_encoder. — ComfyUI's model_lora_keys_clip
//             names clip_g so when no clip_l is present, as clip_h always):
//     named as the equivalent transformers CLIP module "text_model.encoder.layers.N.
//     self_attn.q_proj" etc.; q/k/v patch rows [0, C), [C, 2C), [2C, 3C) of the fused
//     "transformer.resblocks.N.attn.in_proj_weight" [3C, C]; out_proj → attn.out_proj,
//     mlp.fc1 → mlp.c_fc, mlp.fc2 → mlp.c_proj.
// The diffusers UNet paths come from inverting the ldm layout and are kept only when
// unet_ldm_names_from_diffusers (the one diffusers → ldm map) gives the ldm name back.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/shape.h"

namespace darkroom {

struct LoraTarget {
  std::string name;  // full base tensor name, e.g. "model.diffusion_model.out.2.weight"
  // Rows [row_begin, row_end) of dim 0 that the module is (bigG's fused q/k/v); both 0
  // for the whole tensor.
  int64_t row_begin = 0, row_end = 0;
};

// LoRA module name → target, for a base checkpoint with these tensors (full names).
std::map<std::string, LoraTarget> lora_key_map(const std::map<std::string, Shape>& base);

// One of OpenCLIP's text-tower weights that LoRA modules patch: `open_clip`, its name in the
// tower ("transformer.resblocks.N.attn.in_proj_weight"), and the transformers CLIP modules
// ("text_model.encoder.layers.N.self_attn.q_proj", …) whose weights are its row blocks, in
// order. The one OpenCLIP ↔ transformers table of these names (lora_key_map's, and a
// diffusers folder's OpenCLIP tower presented to LoRAs under OpenCLIP's names).
struct OpenClipLinear {
  std::string open_clip;
  std::vector<std::string> modules;
};
// Those of layer `n`: in_proj_weight (q_proj, k_proj, v_proj), out_proj, c_fc, c_proj.
std::vector<OpenClipLinear> open_clip_linears(int n);

}  // namespace darkroom
