// UNetConfig::detect: the UNet's hyperparameters read from its tensors' names and shapes.
#include <string>

#include "models/unet.h"

namespace darkroom {
namespace {

const char* kOp = "unet";

std::string block(const char* list, int i, int j) {
  return std::string(list) + "." + std::to_string(i) + "." + std::to_string(j) + ".";
}

// The shape of a tensor the UNet loads anyway (Weights has no shape query, so this reads
// it; detect() asks only for small tensors: biases, norms, the first and last conv).
Shape shape_of(const Weights& w, const std::string& name) {
  return w.get(name).shape();
}

// Number of transformer_blocks.K under `prefix` (a SpatialTransformer).
int count_transformer_blocks(const Weights& w, const std::string& prefix) {
  int depth = 0;
  while (w.has(prefix + "transformer_blocks." + std::to_string(depth) + ".norm1.weight")) ++depth;
  return depth;
}

}  // namespace

int UNetConfig::heads_for(int64_t channels) const {
  if (head_dim > 0) {
    DR_CHECK(channels % head_dim == 0, kOp, channels, " channels do not split into heads of ",
             head_dim);
    return static_cast<int>(channels / head_dim);
  }
  return num_heads;
}

UNetConfig UNetConfig::detect(const Weights& w) {
  DR_CHECK(w.has("input_blocks.0.0.weight") && w.has("out.2.weight"), kOp, "no UNet under '",
           w.prefix(), "' (input_blocks.0.0.weight or out.2.weight is missing)");
  UNetConfig c = detect_encoder(w);
  c.out_channels = static_cast<int>(shape_of(w, "out.2.bias")[0]);
  return c;
}

UNetConfig UNetConfig::detect_encoder(const Weights& w) {
  UNetConfig c;
  DR_CHECK(w.has("input_blocks.0.0.weight"), kOp, "no UNet input blocks under '", w.prefix(),
           "' (input_blocks.0.0.weight is missing)");
  const Shape conv_in = shape_of(w, "input_blocks.0.0.weight");  // [mc, in, 3, 3]
  DR_CHECK(conv_in.ndim() == 4 && conv_in[0] > 0 && conv_in[1] > 0, kOp,
           "input_blocks.0.0.weight has shape ", conv_in, ", expected [mc, in, 3, 3]");
  c.model_channels = static_cast<int>(conv_in[0]);
  c.in_channels = static_cast<int>(conv_in[1]);
  c.out_channels = c.in_channels;  // no output blocks to read it from

  // Walk input_blocks 1, 2, ...: ResBlocks (with an optional SpatialTransformer) until a
  // Downsample ("op") closes the level; the last level has none.
  c.channel_mult.clear();
  c.transformer_depth.clear();
  int res_in_level = 0, res_per_level = -1, level_width = -1, level_depth = -1;
  bool found_context = false;
  auto close_level = [&](int i) {
    DR_CHECK(res_in_level > 0, kOp, "input_blocks.", i, " closes a level with no ResBlock");
    DR_CHECK(res_per_level < 0 || res_per_level == res_in_level, kOp,
             "levels have different numbers of ResBlocks (", res_per_level, " and ", res_in_level,
             ")");
    DR_CHECK(level_width % c.model_channels == 0, kOp, "level width ", level_width,
             " is not a multiple of ", c.model_channels);
    res_per_level = res_in_level;
    c.channel_mult.push_back(level_width / c.model_channels);
    c.transformer_depth.push_back(level_depth);
    res_in_level = 0;
  };
  int i = 1;
  for (;; ++i) {
    const std::string res = block("input_blocks", i, 0);
    if (w.has(res + "op.weight")) {
      close_level(i);
      continue;
    }
    if (!w.has(res + "in_layers.2.bias")) break;
    const int width = static_cast<int>(shape_of(w, res + "in_layers.2.bias")[0]);
    const std::string attn = block("input_blocks", i, 1);
    const int depth = w.has(attn + "norm.weight") ? count_transformer_blocks(w, attn) : 0;
    if (res_in_level == 0) {
      level_width = width;
      level_depth = depth;
    }
    DR_CHECK(width == level_width && depth == level_depth, kOp, "input_blocks.", i,
             " differs in width or transformer depth from the rest of its level");
    if (depth > 0 && !found_context) {
      const Shape to_k = shape_of(w, attn + "transformer_blocks.0.attn2.to_k.weight");
      c.context_dim = static_cast<int>(to_k[1]);  // [C, context_dim]
      c.linear_proj = shape_of(w, attn + "proj_in.weight").ndim() == 2;
      found_context = true;
    }
    ++res_in_level;
  }
  close_level(i);
  c.num_res_blocks = res_per_level;

  DR_CHECK(w.has("middle_block.1.norm.weight"), kOp,
           "middle_block.1 is not a SpatialTransformer; this UNet layout is not supported");
  c.transformer_depth_middle = count_transformer_blocks(w, "middle_block.1.");
  if (!found_context) {
    c.context_dim =
        static_cast<int>(shape_of(w, "middle_block.1.transformer_blocks.0.attn2.to_k.weight")[1]);
    c.linear_proj = shape_of(w, "middle_block.1.proj_in.weight").ndim() == 2;
  }

  if (w.has("label_emb.0.0.weight"))
    c.adm_in_channels = static_cast<int>(shape_of(w, "label_emb.0.0.weight")[1]);

  // The head layout is not in the shapes. ldm's configs: SD 1.x (CLIP-L context, 768)
  // uses num_heads 8; SD 2.x (OpenCLIP-H, 1024) and SDXL (2048) num_head_channels 64.
  if (c.context_dim == 768) {
    c.num_heads = 8;
    c.head_dim = 0;
  } else {
    c.num_heads = 0;
    c.head_dim = 64;
  }
  return c;
}

}  // namespace darkroom

namespace darkroom {

UNetConfig UNetConfig::sd15() {
  return UNetConfig{};
}

UNetConfig UNetConfig::sdxl() {
  UNetConfig c;
  c.model_channels = 320;
  c.channel_mult = {1, 2, 4};
  c.num_res_blocks = 2;
  c.transformer_depth = {0, 2, 10};
  c.transformer_depth_middle = 10;
  c.context_dim = 2048;
  c.linear_proj = true;
  c.adm_in_channels = 2816;
  c.num_heads = 0;
  c.head_dim = 64;
  return c;
}

std::vector<std::pair<std::string, Shape>> UNetConfig::tensor_shapes() const {
  std::vector<std::pair<std::string, Shape>> out;
  const int64_t mc = model_channels, emb = 4 * mc, ctx = context_dim;
  auto add = [&](const std::string& name, Shape shape) {
    out.emplace_back(name, std::move(shape));
  };
  auto linear = [&](const std::string& name, int64_t in, int64_t o, bool bias = true) {
    add(name + ".weight", {o, in});
    if (bias) add(name + ".bias", {o});
  };
  auto conv = [&](const std::string& name, int64_t in, int64_t o, int64_t k) {
    add(name + ".weight", {o, in, k, k});
    add(name + ".bias", {o});
  };
  auto norm = [&](const std::string& name, int64_t ch) {
    add(name + ".weight", {ch});
    add(name + ".bias", {ch});
  };
  auto res_block = [&](const std::string& p, int64_t in, int64_t o) {
    norm(p + "in_layers.0", in);
    conv(p + "in_layers.2", in, o, 3);
    linear(p + "emb_layers.1", emb, o);
    norm(p + "out_layers.0", o);
    conv(p + "out_layers.3", o, o, 3);
    if (in != o) conv(p + "skip_connection", in, o, 1);
  };
  auto transformer = [&](const std::string& p, int64_t ch, int depth) {
    norm(p + "norm", ch);
    auto proj = [&](const std::string& name) {
      if (linear_proj)
        linear(name, ch, ch);
      else
        conv(name, ch, ch, 1);
    };
    proj(p + "proj_in");
    for (int i = 0; i < depth; ++i) {
      const std::string b = p + "transformer_blocks." + std::to_string(i) + ".";
      for (const char* a : {"attn1.", "attn2."}) {
        const int64_t kv = a[4] == '1' ? ch : ctx;
        linear(b + a + "to_q", ch, ch, false);
        linear(b + a + "to_k", kv, ch, false);
        linear(b + a + "to_v", kv, ch, false);
        linear(b + a + "to_out.0", ch, ch);
      }
      linear(b + "ff.net.0.proj", ch, 8 * ch);  // GEGLU: two halves of 4·ch
      linear(b + "ff.net.2", 4 * ch, ch);
      for (const char* n : {"norm1", "norm2", "norm3"}) norm(b + n, ch);
    }
    proj(p + "proj_out");
  };

  linear("time_embed.0", mc, emb);
  linear("time_embed.2", emb, emb);
  if (adm_in_channels > 0) {
    linear("label_emb.0.0", adm_in_channels, emb);
    linear("label_emb.0.2", emb, emb);
  }
  conv("input_blocks.0.0", in_channels, mc, 3);
  std::vector<int64_t> skips = {mc};
  int64_t ch = mc;
  int idx = 1;
  for (int level = 0; level < levels(); ++level) {
    const int64_t width = mc * channel_mult[static_cast<size_t>(level)];
    const int depth = transformer_depth[static_cast<size_t>(level)];
    for (int r = 0; r < num_res_blocks; ++r, ++idx) {
      res_block(block("input_blocks", idx, 0), ch, width);
      ch = width;
      if (depth > 0) transformer(block("input_blocks", idx, 1), ch, depth);
      skips.push_back(ch);
    }
    if (level + 1 < levels()) {
      conv(block("input_blocks", idx, 0) + "op", ch, ch, 3);
      skips.push_back(ch);
      ++idx;
    }
  }
  res_block("middle_block.0.", ch, ch);
  transformer("middle_block.1.", ch, transformer_depth_middle);
  res_block("middle_block.2.", ch, ch);
  idx = 0;
  for (int level = levels() - 1; level >= 0; --level) {
    const int64_t width = mc * channel_mult[static_cast<size_t>(level)];
    const int depth = transformer_depth[static_cast<size_t>(level)];
    for (int r = 0; r <= num_res_blocks; ++r, ++idx) {
      res_block(block("output_blocks", idx, 0), ch + skips.back(), width);
      skips.pop_back();
      ch = width;
      if (depth > 0) transformer(block("output_blocks", idx, 1), ch, depth);
      if (level > 0 && r == num_res_blocks)
        conv(block("output_blocks", idx, depth > 0 ? 2 : 1) + "conv", ch, ch, 3);
    }
  }
  norm("out.0", ch);
  conv("out.2", ch, out_channels, 3);
  return out;
}

}  // namespace darkroom
