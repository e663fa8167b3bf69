// The blocks of ldm's AutoencoderKL (ldm/modules/diffusionmodules/model.py), each loaded
// from Weights already narrowed to the block's prefix (e.g. "decoder.up.3.block.0.") under
// ldm's names. Feature maps are NHWC [N, H, W, C]; every GroupNorm is ldm's Normalize():
// `groups` groups (32 in every released VAE), eps 1e-6, affine.
#pragma once

#include <cstdint>
#include <optional>

#include "models/layers.h"
#include "models/weights.h"

namespace darkroom::vae {

inline constexpr float kNormEps = 1e-6f;

// A 1×1 convolution [out, in, 1, 1] loaded as the Linear it is on NHWC data (the weight
// is a reshaped view).
layers::Linear load_conv1x1(const Weights& w, std::string_view name, int64_t in, int64_t out);

// ResnetBlock: norm1, SiLU, conv1 3×3, norm2, SiLU, (dropout), conv2 3×3, plus the input
// (through nin_shortcut, a 1×1 conv, when the width changes).
struct ResnetBlock {
  layers::GroupNorm norm1, norm2;
  layers::Conv2d conv1, conv2;
  std::optional<layers::Linear> nin_shortcut;

  static ResnetBlock load(const Weights& w, int64_t in, int64_t out, int groups);
  Tensor operator()(const Tensor& x) const;  // [N, H, W, in] → [N, H, W, out]
};

// AttnBlock: single-head self-attention over the H·W positions, q/k/v/proj_out 1×1
// convs, scale C^-1/2, residual.
struct AttnBlock {
  layers::GroupNorm norm;
  layers::Linear q, k, v, proj_out;

  static AttnBlock load(const Weights& w, int64_t channels, int groups);
  Tensor operator()(const Tensor& x) const;  // [N, H, W, C] → [N, H, W, C]
};

// mid: block_1, attn_1, block_2 at the lowest resolution.
struct MidBlock {
  ResnetBlock block_1, block_2;
  AttnBlock attn_1;

  static MidBlock load(const Weights& w, int64_t channels, int groups);
  Tensor operator()(const Tensor& x) const;
};

// Encoder's Downsample: zero-pad one row at the bottom and one column at the right, then
// conv 3×3 stride 2 without padding (ldm pads asymmetrically; torch pads symmetrically).
struct Downsample {
  layers::Conv2d conv;

  static Downsample load(const Weights& w, int64_t channels);
  Tensor operator()(const Tensor& x) const;  // [N, H, W, C] → [N, ⌊H/2⌋, ⌊W/2⌋, C]
};

// Decoder's Upsample: nearest 2× then conv 3×3 padding 1.
struct Upsample {
  layers::Conv2d conv;

  static Upsample load(const Weights& w, int64_t channels);
  Tensor operator()(const Tensor& x) const;  // [N, H, W, C] → [N, 2H, 2W, C]
};

// x [N, H, W, C] → [N, H + 1, W + 1, C] with zeros in the new last row and column.
Tensor pad_bottom_right(const Tensor& x);

}  // namespace darkroom::vae
