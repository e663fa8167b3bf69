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
//
// The hint block's widths are read from its shapes (released files: 16, 16, 32, 32, 96,
// 96, 256, mc); every conv but the first and last alternates stride 1 and 2 as ldm builds
// it (.4, .8, .12 have stride 2), so the hint comes at hint_factor() = 8× the latent.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "models/unet.h"
#include "models/unet_encoder.h"
#include "models/weights.h"

namespace darkroom {

class ControlNet {
 public:
  // `w` under the ControlNet's own prefix ("control_model." or ""). The configuration
  // is read from the shapes as UNetConfig::detect does (there are no output blocks);
  // hint_channels from input_hint_block.0.weight.
  static ControlNet load(const Weights& w);
  // With the configuration given (detect_config(w) with what the shapes cannot say, the
  // GroupNorm groups and heads, set from elsewhere).
  static ControlNet load(const Weights& w, const UNetConfig& config);
  // UNetConfig::detect_encoder, checked for a ControlNet's parts (the hint block and
  // zero convs); throws "[controlnet] ..." naming what is missing.
  static UNetConfig detect_config(const Weights& w);

  // x [B, h, w, in] the UNet's scaled input (calculate_input), hint [B, 8h, 8w,
  // hint_channels] f32 in [0, 1] (already sized and batched), timesteps [B] f32,
  // context [B, T, context_dim], y [B, adm] (SDXL) → residuals (not yet × strength) in
  // the weights' dtype on the weights' device, shaped as the UNet's skips.
  ControlResiduals forward(const Tensor& x, const Tensor& hint, const Tensor& timesteps,
                           const Tensor& context, const Tensor& y = {}) const;

  const UNetConfig& config() const { return config_; }
  int hint_channels() const { return hint_channels_; }
  // How many times larger than the latent the hint is (2^stride-2 convs; 8 in every
  // released ControlNet, whatever its number of levels).
  int hint_factor() const { return hint_factor_; }
  DeviceId device() const { return device_; }
  DType dtype() const { return dtype_; }

  // ComfyUI's global_average_pooling (set by its loader for files named *_shuffle, the
  // content-shuffle ControlNet): every residual is replaced by its mean over h and w
  // (diffusers: global_pool_conditions).
  void set_global_average_pooling(bool on) { global_average_pooling_ = on; }
  bool global_average_pooling() const { return global_average_pooling_; }

 private:
  UNetConfig config_;
  int hint_channels_ = 3;
  int hint_factor_ = 8;
  bool global_average_pooling_ = false;
  DeviceId device_;
  DType dtype_ = DType::F32;
  unet::TimeEmbedding time_embed_;              // time_embed (+ label_emb), as the UNet's
  std::vector<layers::Conv2d> hint_convs_;      // input_hint_block.{0, 2, ...}, SiLU between
  layers::Conv2d conv_in_;                      // input_blocks.0.0
  std::vector<unet::InputBlock> input_blocks_;  // input_blocks.1, ...
  unet::ResBlock middle_res1_, middle_res2_;
  unet::SpatialTransformer middle_attn_;
  std::vector<layers::Linear> zero_convs_;  // zero_convs.N.0, 1×1 as Linear over channels
  layers::Linear middle_out_;               // middle_block_out.0
};

}  // namespace darkroom
