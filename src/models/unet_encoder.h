// The down path that the UNet and its ControlNets share, loaded under ldm's names:
// input_blocks.1, … (each a ResBlock with an optional SpatialTransformer, or a
// Downsample) and middle_block.{0 ResBlock, 1 SpatialTransformer, 2 ResBlock}.
// input_blocks.0 (conv_in) is the caller's: the UNet and the ControlNet add different
// things to its output.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "models/unet.h"
#include "models/unet_blocks.h"

namespace darkroom::unet {

struct InputBlock {
  std::optional<ResBlock> res;
  std::optional<SpatialTransformer> attn;
  std::optional<Downsample> down;
  int64_t channels = 0;  // its output width
};

struct MiddleBlock {
  ResBlock res1;
  SpatialTransformer attn;
  ResBlock res2;
};

// "<list>.<i>.<j>." (e.g. "input_blocks.4.1.").
std::string block_prefix(const char* list, int i, int j);

// A SpatialTransformer of `depth` blocks at width `ch` under `prefix`, with cfg's context
// width, heads, projection kind and GroupNorm groups.
SpatialTransformer load_attention(const Weights& w, const UNetConfig& cfg,
                                  const std::string& prefix, int64_t ch, int depth);

// input_blocks.1 … in order (conv_in's output is model_channels wide).
std::vector<InputBlock> load_input_blocks(const Weights& w, const UNetConfig& cfg);

// middle_block at width `ch` (the last input block's).
MiddleBlock load_middle_block(const Weights& w, const UNetConfig& cfg, int64_t ch);

}  // namespace darkroom::unet
