// Diffusers' UNet2DConditionModel tensor names → ldm's UNetModel names, so that a
// diffusers folder (unet/diffusion_pytorch_model.safetensors) loads into the same UNet
// as a single-file checkpoint.
//
//   time_embedding.linear_{1,2}        time_embed.{0,2}
//   add_embedding.linear_{1,2}         label_emb.0.{0,2}                     (SDXL)
//   conv_in / conv_norm_out / conv_out input_blocks.0.0 / out.0 / out.2
//   down_blocks.I.resnets.J            input_blocks.(1 + I·(L+1) + J).0
//   down_blocks.I.attentions.J         input_blocks.(1 + I·(L+1) + J).1
//   down_blocks.I.downsamplers.0.conv  input_blocks.((I+1)·(L+1)).0.op
//   mid_block.resnets.{0,1}            middle_block.{0,2}
//   mid_block.attentions.0             middle_block.1
//   up_blocks.I.resnets.J              output_blocks.(I·(L+1) + J).0
//   up_blocks.I.attentions.J           output_blocks.(I·(L+1) + J).1
//   up_blocks.I.upsamplers.0.conv      output_blocks.(I·(L+1) + L).{1, or 2 after attention}.conv
//
// with L = layers_per_block (down blocks hold L ResBlocks, up blocks L+1), and inside a
// ResBlock norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut → in_layers.0,
// in_layers.2, emb_layers.1, out_layers.0, out_layers.3, skip_connection. Transformer
// internals (norm, proj_in, transformer_blocks.K.*, proj_out) keep their names.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/weights.h"

namespace darkroom {

// For each diffusers name, its ldm name (without "model.diffusion_model."). L and which
// up blocks have attention are read from the names themselves. Throws "[unet] ..." for
// a name that is not part of a UNet2DConditionModel of this family.
// encoder_only: the names hold no up_blocks, conv_norm_out or conv_out (a ControlNet's
// copy of the UNet's time embedding, input and middle blocks); any of them is refused.
std::map<std::string, std::string> unet_ldm_names_from_diffusers(
    const std::vector<std::string>& diffusers_names, bool encoder_only = false);

// The tensors of a diffusers UNet file as Weights under ldm names (prefix ""), ready for
// UNetConfig::detect and UNet::load.
Weights unet_weights_from_diffusers(const std::shared_ptr<const SafetensorsFile>& file,
                                    DeviceId device, DType dtype);

}  // namespace darkroom
