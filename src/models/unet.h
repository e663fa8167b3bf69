// The denoising UNet of Stable Diffusion (ldm's UNetModel, openaimodel.py), loaded under
// its single-file checkpoint names ("model.diffusion_model." is the caller's prefix):
//
//   time_embed.{0,2}                  t → sinusoid [B, mc] → linear, SiLU, linear [B, 4mc]
//   label_emb.0.{0,2}                 (SDXL) y [B, adm] → linear, SiLU, linear, added to emb
//   input_blocks.0.0                  conv_in 3×3
//   input_blocks.N.{0 ResBlock, 1 SpatialTransformer} | input_blocks.N.0.op (downsample)
//   middle_block.{0 ResBlock, 1 SpatialTransformer, 2 ResBlock}
//   output_blocks.N.{0 ResBlock, 1 SpatialTransformer, last: Upsample ".conv"}
//   out.{0 GroupNorm, 2 conv 3×3}
//
// Activations are NHWC, so a feature map [B, H, W, C] is also the token sequence
// [B, H·W, C] of its transformer with no permute. The configuration is read from the
// weights' shapes (UNetConfig::detect); only the head layout and the GroupNorm group
// count are not visible in the shapes.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/unet_blocks.h"
#include "models/weights.h"

namespace darkroom {

struct UNetConfig {
  int in_channels = 4;
  int out_channels = 4;
  int model_channels = 320;                      // mc; the time embedding has 4·mc
  std::vector<int> channel_mult = {1, 2, 4, 4};  // one entry per resolution level
  int num_res_blocks = 2;                        // ResBlocks per level on the way down
  // Transformer blocks per SpatialTransformer at each level (0: no attention there), and
  // in the middle block. SD 1.5: {1, 1, 1, 0} / 1; SDXL: {0, 2, 10} / 10.
  std::vector<int> transformer_depth = {1, 1, 1, 0};
  int transformer_depth_middle = 1;
  int context_dim = 768;     // width of the cross-attention context (CLIP-L: 768)
  bool linear_proj = false;  // proj_in/out as Linear [C, C] (SD 2, SDXL), else 1×1 conv
  int adm_in_channels = 0;   // > 0: label_emb takes a vector y [B, adm] (SDXL: 2816)
  // Attention heads: a fixed count per block (SD 1.5: 8, so head width C/8), or, when
  // head_dim > 0, a fixed head width (SD 2 and SDXL: 64, so C/64 heads).
  int num_heads = 8;
  int head_dim = 0;
  int groups = 32;  // GroupNorm groups everywhere (ldm's normalization(): 32)

  // From the tensors under `w`'s prefix: channels, levels, res blocks, transformer
  // depths, context width, projection kind, label_emb. Heads follow ldm's configs: a
  // 768-wide context (SD 1.x) gets 8 heads, any other (SD 2, SDXL) 64-wide heads.
  static UNetConfig detect(const Weights& w);
  // The same from the input side alone (time_embed, label_emb, input_blocks, middle_block),
  // for networks without output blocks (ControlNet); out_channels is left = in_channels.
  static UNetConfig detect_encoder(const Weights& w);
  // The published architectures: SD 1.x (the defaults above) and SDXL 1.0 base (320
  // channels, mult 1, 2, 4, depths 0/2/10 and 10 in the middle, 2048-wide context,
  // linear projections, label_emb from 2816, 64-wide heads).
  static UNetConfig sd15();
  static UNetConfig sdxl();

  // Every tensor this configuration's UNet::load reads, under ldm names without the
  // "model.diffusion_model." prefix, with its shape (for random-weight benchmarks).
  std::vector<std::pair<std::string, Shape>> tensor_shapes() const;

  int heads_for(int64_t channels) const;
  int levels() const { return static_cast<int>(channel_mult.size()); }
};

// SDXL's vector condition y [B, pooled + 6·dim] for label_emb, as sgm's conditioner
// (ComfyUI: SDXL.encode_adm; diffusers: text_embeds + time_ids) builds it: the pooled
// text embedding [B, P], then the sinusoidal embedding (ldm's timestep_embedding: `dim`
// values, cos half first, max period 10000) of each of the six size numbers per image:
// original height, width, crop top, crop left, target height, width. CPU f32.
// SDXL base: P = 1280, dim = 256, so 2816.
Tensor sdxl_vector_y(const Tensor& pooled, const std::vector<std::array<float, 6>>& sizes,
                     int dim = 256);

// What ControlNets add to a UNet (ComfyUI's control dict, "output" and "middle"), already
// scaled by their strengths and summed over a chain: skips[i] is added to the output of
// input block i (conv_in is block 0) before it becomes a skip connection, `middle` to the
// middle block's output. An undefined tensor adds nothing. Shapes are the UNet's own
// activations [B, h, w, C] at that point; any dtype and device (cast on use).
struct ControlResiduals {
  std::vector<Tensor> skips;
  Tensor middle;
};

class UNet {
 public:
  // `w` is the UNet's weights under its own prefix (e.g. "model.diffusion_model.").
  static UNet load(const Weights& w, const UNetConfig& config);

  // x [B, H, W, in] NHWC latent (any H, W: odd sides round up on the way down and the
  // way up is sized to each skip, as ldm does), timesteps [B] f32,
  // context [B, T, context_dim], y [B, adm] for label_emb models (else undefined)
  // → eps [B, H, W, out]. Inputs are cast to the weights' dtype; the output comes back
  // in x's dtype. `control`: ControlNet residuals (null or empty: none).
  Tensor forward(const Tensor& x, const Tensor& timesteps, const Tensor& context,
                 const Tensor& y = {}, const ControlResiduals* control = nullptr) const;

  const UNetConfig& config() const { return config_; }
  DeviceId device() const { return device_; }  // where the weights live and it computes
  DType dtype() const { return dtype_; }       // the weights' (compute) dtype

 private:
  // One entry of input_blocks / output_blocks: what ldm's TimestepEmbedSequential holds.
  struct Stage {
    std::optional<unet::ResBlock> res;
    std::optional<unet::SpatialTransformer> attn;
    std::optional<unet::Downsample> down;
    std::optional<unet::Upsample> up;
  };
  // `skip`: for an output block that upsamples, the skip its output will be joined with
  // (the upsampling is sized to it, ldm's output_shape); undefined elsewhere.
  Tensor run_stage(const Stage& s, Tensor h, const Tensor& emb, const Tensor& context,
                   const Tensor& skip = {}) const;

  UNetConfig config_;
  DType dtype_ = DType::F32;
  DeviceId device_;
  unet::TimeEmbedding time_embed_;  // time_embed (+ label_emb)
  layers::Conv2d conv_in_;
  std::vector<Stage> input_blocks_;  // [0] holds no block: conv_in_ is input_blocks.0.0
  Stage middle_block_;               // middle_block.0 (ResBlock) and .1 (transformer)
  unet::ResBlock middle_res2_;       // middle_block.2
  std::vector<Stage> output_blocks_;
  layers::GroupNorm out_norm_;
  layers::Conv2d out_conv_;
};

}  // namespace darkroom
