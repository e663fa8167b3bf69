// Diffusers' AutoencoderKL tensor names → ldm's AutoencoderKL names, so that a diffusers
// folder (vae/diffusion_pytorch_model.safetensors) loads into the same Vae as a
// single-file checkpoint. In both encoder and decoder:
//
//   conv_in / conv_out / conv_norm_out     conv_in / conv_out / norm_out
//   down_blocks.I.resnets.J                down.I.block.J
//   down_blocks.I.downsamplers.0.conv      down.I.downsample.conv
//   up_blocks.I.resnets.J                  up.(n-1-I).block.J      (n = number of up blocks:
//   up_blocks.I.upsamplers.0.conv          up.(n-1-I).upsample.conv  ldm counts from the top)
//   mid_block.resnets.{0,1}                mid.block_{1,2}
//   mid_block.attentions.0.group_norm      mid.attn_1.norm
//   mid_block.attentions.0.to_{q,k,v}      mid.attn_1.{q,k,v}      (older diffusers:
//   mid_block.attentions.0.to_out.0        mid.attn_1.proj_out      query, key, value, proj_attn)
//
// and inside a resnet conv_shortcut → nin_shortcut (norm1, conv1, norm2, conv2 keep their
// names); quant_conv and post_quant_conv keep theirs. Diffusers stores the attention
// projections as Linear [C, C]; ldm as 1×1 convs [C, C, 1, 1], which is how they are
// handed out.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/weights.h"

namespace darkroom {

// For each diffusers name, its ldm name (without "first_stage_model."). The number of up
// blocks is read from the names themselves. Throws "[vae] ..." for a name that is not
// part of an AutoencoderKL.
std::map<std::string, std::string> vae_ldm_names_from_diffusers(
    const std::vector<std::string>& diffusers_names);

// The tensors of a diffusers VAE file as Weights under ldm names (prefix ""), ready for
// VaeConfig::detect and Vae::load.
Weights vae_weights_from_diffusers(const std::shared_ptr<const SafetensorsFile>& file,
                                   DeviceId device, DType dtype);

}  // namespace darkroom
