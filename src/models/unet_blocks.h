// The blocks of ldm's UNetModel (openaimodel.py, attention.py), shared by the SD 1.x,
// SD 2.x and SDXL UNets. Each loads from the Weights it is given (already narrowed to
// the block's prefix, e.g. "input_blocks.1.0.") under ldm's module names. Feature maps
// are NHWC [B, H, W, C]; token sequences [B, N, C].
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "models/layers.h"
#include "models/weights.h"

namespace darkroom::unet {

// Epsilons of ldm: normalization() in ResBlocks and the output is GroupNorm32 with
// torch's default 1e-5; the SpatialTransformer's Normalize() uses 1e-6; LayerNorms 1e-5.
inline constexpr float kResNormEps = 1e-5f;
inline constexpr float kTransformerNormEps = 1e-6f;
inline constexpr float kLayerNormEps = 1e-5f;

// A projection that checkpoints store either as a 1×1 conv [out, in, 1, 1] or as a
// Linear [out, in]. On NHWC data both are the same matmul over the last dimension, so
// the conv form is loaded as a Linear whose weight is a reshaped view.
layers::Linear load_projection(const Weights& w, std::string_view name, int64_t in, int64_t out,
                               bool conv1x1);

// The timestep embedding of the UNet and of its ControlNets: t → ldm's sinusoid [B, mc]
// (cos half first, max period 10000) → time_embed.{0,2} (Linear, SiLU, Linear) [B, 4mc],
// plus, for SDXL-style models, label_emb.0.{0,2} of the vector y [B, adm] (Linear, SiLU,
// Linear). Returns SiLU(emb): every ResBlock's emb_layers starts with that SiLU, so it is
// applied once here.
struct TimeEmbedding {
  layers::Linear time0, time2;
  std::optional<layers::Linear> label0, label2;
  int64_t model_channels = 0, adm_channels = 0;

  // `w` at the network's root; adm > 0 loads label_emb.
  static TimeEmbedding load(const Weights& w, int64_t model_channels, int64_t adm);
  // timesteps [B] f32 (any device), y [B, adm] or undefined → SiLU(emb) [B, 4mc] in
  // `dtype` on `device`. `what` names the network in errors.
  Tensor operator()(const Tensor& timesteps, const Tensor& y, DType dtype, DeviceId device,
                    const char* what) const;
};

// The checks every UNet-shaped forward makes on its inputs: x [B, h, w, in_channels],
// timesteps f32 [B], context [B, T, context_dim], y [B, adm] exactly when adm > 0.
void check_unet_inputs(const Tensor& x, const Tensor& timesteps, const Tensor& context,
                       const Tensor& y, int64_t in_channels, int64_t context_dim, int64_t adm,
                       const char* what);

// ResBlock: in_layers (GroupNorm, SiLU, conv 3×3), emb_layers (SiLU, Linear),
// out_layers (GroupNorm, SiLU, dropout, conv 3×3), skip_connection (1×1 conv when the
// width changes).
struct ResBlock {
  layers::GroupNorm in_norm, out_norm;
  layers::Conv2d in_conv, out_conv;
  layers::Linear emb_proj;
  std::optional<layers::Linear> skip;

  static ResBlock load(const Weights& w, int64_t in, int64_t out, int64_t emb_dim, int groups);
  // x [B, H, W, in], emb_silu [B, emb_dim] (SiLU already applied: it is shared by every
  // block) → [B, H, W, out]
  Tensor operator()(const Tensor& x, const Tensor& emb_silu) const;
};

// CrossAttention: to_q, to_k, to_v without bias, to_out.0 with bias; heads split the
// channel dimension.
struct Attention {
  layers::Linear to_q, to_k, to_v, to_out;
  int heads = 1;

  static Attention load(const Weights& w, int64_t dim, int64_t context_dim, int heads);
  // x [B, N, dim], context [B, T, context_dim] (x itself for self-attention) → [B, N, dim]
  Tensor operator()(const Tensor& x, const Tensor& context) const;
};

// FeedForward with GEGLU: net.0.proj [2·inner, C], GEGLU → inner, net.2.weight [C, inner]
// (inner = 4C in every SD model).
struct FeedForward {
  layers::Linear proj_in, proj_out;

  static FeedForward load(const Weights& w, int64_t dim, int64_t inner);
  Tensor operator()(const Tensor& x) const;  // [B, N, dim] → [B, N, dim]
};

// BasicTransformerBlock: pre-LayerNorm self-attention, cross-attention, feed-forward,
// each added to the residual stream.
struct TransformerBlock {
  layers::LayerNorm norm1, norm2, norm3;
  Attention attn1, attn2;
  FeedForward ff;

  static TransformerBlock load(const Weights& w, int64_t dim, int64_t context_dim, int heads);
  // x [B, N, dim], context [B, T, context_dim] → [B, N, dim]
  Tensor operator()(const Tensor& x, const Tensor& context) const;
};

// SpatialTransformer: GroupNorm, proj_in, `depth` TransformerBlocks over the H·W tokens,
// proj_out, plus the input.
struct SpatialTransformer {
  layers::GroupNorm norm;
  layers::Linear proj_in, proj_out;
  std::vector<TransformerBlock> blocks;

  static SpatialTransformer load(const Weights& w, int64_t channels, int64_t context_dim, int heads,
                                 int depth, bool linear_proj, int groups);
  // x [B, H, W, C], context [B, T, context_dim] → [B, H, W, C]
  Tensor operator()(const Tensor& x, const Tensor& context) const;
};

// Downsample: conv 3×3, stride 2, padding 1 ("op"). An odd side rounds up:
// [B, H, W, C] → [B, ceil(H/2), ceil(W/2), C].
struct Downsample {
  layers::Conv2d op;
  static Downsample load(const Weights& w, int64_t channels);
  Tensor operator()(const Tensor& x) const { return op(x); }
};

// Upsample: nearest 2× then conv 3×3 ("conv").
struct Upsample {
  layers::Conv2d conv;
  static Upsample load(const Weights& w, int64_t channels);
  Tensor operator()(const Tensor& x) const;  // [B, H, W, C] → [B, 2H, 2W, C]
  // To the size of the skip it will be joined with (ldm's output_shape, diffusers'
  // upsample_size), which is 2H or, below an odd side that a Downsample rounded up,
  // 2H - 1: [B, H, W, C] → [B, out_h, out_w, C]. Nearest interpolation to 2H - 1 samples
  // exactly the first 2H - 1 rows of the 2× image, so it is that, cut before the conv
  // (the conv's zero padding must see the cut edge).
  Tensor operator()(const Tensor& x, int64_t out_h, int64_t out_w) const;
};

}  // namespace darkroom::unet
