#include "models/unet_encoder.h"

namespace darkroom::unet {

std::string block_prefix(const char* list, int i, int j) {
  return std::string(list) + "." + std::to_string(i) + "." + std::to_string(j) + ".";
}

SpatialTransformer load_attention(const Weights& w, const UNetConfig& cfg,
                                  const std::string& prefix, int64_t ch, int depth) {
  return SpatialTransformer::load(w.sub(prefix), ch, cfg.context_dim, cfg.heads_for(ch), depth,
                                  cfg.linear_proj, cfg.groups);
}

std::vector<InputBlock> load_input_blocks(const Weights& w, const UNetConfig& cfg) {
  const int64_t mc = cfg.model_channels, emb_dim = 4 * mc;
  std::vector<InputBlock> blocks;
  int64_t ch = mc;
  int idx = 1;
  for (int level = 0; level < cfg.levels(); ++level) {
    const int64_t width = mc * cfg.channel_mult[level];
    for (int r = 0; r < cfg.num_res_blocks; ++r, ++idx) {
      InputBlock b;
      b.res = ResBlock::load(w.sub(block_prefix("input_blocks", idx, 0)), ch, width, emb_dim,
                             cfg.groups);
      ch = width;
      if (cfg.transformer_depth[level] > 0)
        b.attn = load_attention(w, cfg, block_prefix("input_blocks", idx, 1), ch,
                                cfg.transformer_depth[level]);
      b.channels = ch;
      blocks.push_back(std::move(b));
    }
    if (level + 1 < cfg.levels()) {
      InputBlock b;
      b.down = Downsample::load(w.sub(block_prefix("input_blocks", idx, 0)), ch);
      b.channels = ch;
      blocks.push_back(std::move(b));
      ++idx;
    }
  }
  return blocks;
}

MiddleBlock load_middle_block(const Weights& w, const UNetConfig& cfg, int64_t ch) {
  const int64_t emb_dim = 4 * cfg.model_channels;
  return {ResBlock::load(w.sub("middle_block.0."), ch, ch, emb_dim, cfg.groups),
          load_attention(w, cfg, "middle_block.1.", ch, cfg.transformer_depth_middle),
          ResBlock::load(w.sub("middle_block.2."), ch, ch, emb_dim, cfg.groups)};
}

}  // namespace darkroom::unet
