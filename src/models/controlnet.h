// ControlNet (ldm's cldm.ControlNet; ComfyUI's comfy/cldm/cldm.py): a trainable copy of
// a UNet's input and middle blocks that reads a hint image and returns one residual per
// skip connection of the UNet and one for its middle block. Loaded under ldm names
// (the loader in pipeline/controlnet_loader.h renames diffusers files to these):
//
//   time_embed.{0,2}, label_emb.0.{0,2} (SDXL), input_blocks.*, middle_block.*   as the UNet's
//   input_hint_block.{0,2,4,…,14}   hint [B, 8h, 8w, hint_ch] → 3×3 convs with SiLU between,
//                                    three of them stride 2 → [B, h, w, mc]; added to
//                                    input_blocks.0's output
//   zero_convs.N.0                  1×1 conv on input block N's output → residual N
//   middle_block_out.0              1×1 conv on the middle block's output → middle residual
#pragma once

#include <string>

#include "models/unet.h"
#include "models/weights.h"

namespace darkroom {

class ControlNet {
 public:
  // `w` under the ControlNet's own prefix ("control_model." or ""). The configuration
  // is read from the shapes as UNetConfig::detect does (there are no output blocks);
  // hint_channels from input_hint_block.0.weight.
  static ControlNet load(const Weights& w);

  // x [B, h, w, in] the UNet's scaled input (calculate_input), hint [B, 8h, 8w,
  // hint_channels] f32 in [0, 1] (already sized and batched), timesteps [B] f32,
  // context [B, T, context_dim], y [B, adm] (SDXL) → residuals (not yet × strength) in
  // the weights' dtype on the weights' device, shaped as the UNet's skips.
  ControlResiduals forward(const Tensor& x, const Tensor& hint, const Tensor& timesteps,
                           const Tensor& context, const Tensor& y = {}) const;

  const UNetConfig& config() const { return config_; }
  int hint_channels() const { return hint_channels_; }
  DeviceId device() const { return device_; }
  DType dtype() const { return dtype_; }

 private:
  UNetConfig config_;
  int hint_channels_ = 3;
  DeviceId device_;
  DType dtype_ = DType::F32;
};

}  // namespace darkroom
