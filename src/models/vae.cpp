#include "models/vae.h"

#include <algorithm>
#include <string>

#include "backend/ops.h"

namespace darkroom {
namespace {

const char* kOp = "vae";

std::string level_block(const char* side, int level, int block) {
  return std::string(side) + "." + std::to_string(level) + ".block." + std::to_string(block) + ".";
}

// logvar clamped to [-30, 20]; there is no clamp op, and the tensor is small (the latent).
Tensor clamp_logvar(const Tensor& logvar) {
  std::vector<float> v = ops::to_device(logvar, kCpu).to_floats();
  for (float& x : v) x = std::clamp(x, -30.0f, 20.0f);
  return ops::to_device(Tensor::from_floats(v, logvar.shape(), logvar.dtype()), logvar.device());
}

}  // namespace

VaeConfig VaeConfig::detect(const Weights& w, int groups) {
  DR_CHECK(w.has("decoder.conv_in.weight") && w.has("decoder.conv_out.weight"), kOp,
           "no VAE decoder under '", w.prefix(),
           "' (decoder.conv_in.weight or decoder.conv_out.weight is missing)");
  VaeConfig c;
  c.groups = groups;
  // Only small tensors are read here (Weights has no shape query); all are loaded anyway.
  const Shape conv_in = w.get("decoder.conv_in.weight").shape();  // [mid width, z, 3, 3]
  c.z_channels = static_cast<int>(conv_in[1]);
  c.out_channels = static_cast<int>(w.get("decoder.conv_out.bias").dim(0));
  std::vector<int64_t> widths;
  while (w.has(level_block("decoder.up", static_cast<int>(widths.size()), 0) + "conv2.bias"))
    widths.push_back(
        w.get(level_block("decoder.up", static_cast<int>(widths.size()), 0) + "conv2.bias").dim(0));
  DR_CHECK(!widths.empty(), kOp, "no decoder.up.0.block.0 under '", w.prefix(), "'");
  c.ch = static_cast<int>(widths[0]);
  c.ch_mult.clear();
  for (int64_t width : widths) {
    DR_CHECK(width % c.ch == 0, kOp, "level width ", width, " is not a multiple of ", c.ch);
    c.ch_mult.push_back(static_cast<int>(width / c.ch));
  }
  DR_CHECK(conv_in[0] == widths.back(), kOp, "decoder.conv_in has ", conv_in[0],
           " channels but the lowest level has ", widths.back());
  int decoder_blocks = 0;
  while (w.has(level_block("decoder.up", 0, decoder_blocks) + "conv1.weight")) ++decoder_blocks;
  DR_CHECK(decoder_blocks >= 2, kOp, "decoder.up.0 has ", decoder_blocks,
           " ResnetBlocks; expected num_res_blocks + 1 ≥ 2");
  c.num_res_blocks = decoder_blocks - 1;
  // The encoder's input channels are read when it is loaded, so that a decoder-only load
  // touches no encoder tensor.
  c.has_encoder = w.has("encoder.conv_in.weight");
  c.has_quant_conv = w.has("quant_conv.weight");
  c.has_post_quant_conv = w.has("post_quant_conv.weight");
  return c;
}

Vae::Encoder Vae::load_encoder(const Weights& w, VaeConfig& c) {
  const int n = c.levels(), g = c.groups;
  Encoder e;
  c.in_channels = static_cast<int>(w.get("encoder.conv_in.weight").dim(1));
  e.conv_in = layers::Conv2d::load(w, "encoder.conv_in", c.in_channels, c.width(0), 3);
  int64_t in = c.width(0);
  for (int i = 0; i < n; ++i) {
    Level level;
    for (int j = 0; j < c.num_res_blocks; ++j) {
      level.blocks.push_back(
          vae::ResnetBlock::load(w.sub(level_block("encoder.down", i, j)), in, c.width(i), g));
      in = c.width(i);
    }
    if (i != n - 1)
      level.down =
          vae::Downsample::load(w.sub("encoder.down." + std::to_string(i) + ".downsample."), in);
    e.down.push_back(std::move(level));
  }
  e.mid = vae::MidBlock::load(w.sub("encoder.mid."), in, g);
  e.norm_out = layers::GroupNorm::load(w, "encoder.norm_out", in, g, vae::kNormEps);
  e.conv_out = layers::Conv2d::load(w, "encoder.conv_out", in, 2 * c.z_channels, 3);
  if (c.has_quant_conv)
    e.quant_conv = vae::load_conv1x1(w, "quant_conv", 2 * c.z_channels, 2 * c.z_channels);
  return e;
}

Vae::Decoder Vae::load_decoder(const Weights& w, const VaeConfig& c) {
  const int n = c.levels(), g = c.groups;
  Decoder d;
  if (c.has_post_quant_conv)
    d.post_quant_conv = vae::load_conv1x1(w, "post_quant_conv", c.z_channels, c.z_channels);
  int64_t in = c.width(n - 1);
  d.conv_in = layers::Conv2d::load(w, "decoder.conv_in", c.z_channels, in, 3);
  d.mid = vae::MidBlock::load(w.sub("decoder.mid."), in, g);
  d.up.resize(static_cast<size_t>(n));
  for (int i = n - 1; i >= 0; --i) {  // the order the decoder runs them, so `in` follows
    Level& level = d.up[static_cast<size_t>(i)];
    for (int j = 0; j < c.num_res_blocks + 1; ++j) {
      level.blocks.push_back(
          vae::ResnetBlock::load(w.sub(level_block("decoder.up", i, j)), in, c.width(i), g));
      in = c.width(i);
    }
    if (i != 0)
      level.up = vae::Upsample::load(w.sub("decoder.up." + std::to_string(i) + ".upsample."), in);
  }
  d.norm_out = layers::GroupNorm::load(w, "decoder.norm_out", in, g, vae::kNormEps);
  d.conv_out = layers::Conv2d::load(w, "decoder.conv_out", in, c.out_channels, 3);
  return d;
}

Vae Vae::load(const Weights& w, const VaeConfig& config, bool with_encoder) {
  DR_CHECK(!with_encoder || config.has_encoder, kOp, "the weights under '", w.prefix(),
           "' hold no encoder");
  Vae v;
  v.config_ = config;
  v.dtype_ = w.dtype();
  v.device_ = w.device();
  if (with_encoder) v.encoder_ = load_encoder(w, v.config_);
  v.decoder_ = load_decoder(w, config);
  return v;
}

Tensor Vae::decode(const Tensor& z) const {
  DR_CHECK(z.defined() && z.ndim() == 4 && z.dim(3) == config_.z_channels, kOp,
           "decode takes z [N, h, w, ", config_.z_channels, "], got ",
           z.defined() ? z.shape() : Shape{});
  const Decoder& d = decoder_;
  Tensor h = ops::cast(ops::to_device(z, device_), dtype_);  // [N, h, w, z]
  if (d.post_quant_conv) h = (*d.post_quant_conv)(h);
  h = d.conv_in(h);  // [N, h, w, C_last]
  h = (*d.mid)(h);
  for (int i = config_.levels() - 1; i >= 0; --i) {
    const Level& level = d.up[static_cast<size_t>(i)];
    for (const vae::ResnetBlock& b : level.blocks) h = b(h);  // [N, ·, ·, width(i)]
    if (level.up) h = (*level.up)(h);                         // 2× larger
  }
  h = d.conv_out(d.norm_out(h, /*silu=*/true));  // [N, H, W, out_channels]
  return ops::cast(h, z.dtype());
}

VaePosterior Vae::encode(const Tensor& image) const {
  DR_CHECK(encoder_.has_value(), kOp, "this VAE was loaded without its encoder");
  DR_CHECK(image.defined() && image.ndim() == 4 && image.dim(3) == config_.in_channels, kOp,
           "encode takes an image [N, H, W, ", config_.in_channels, "], got ",
           image.defined() ? image.shape() : Shape{});
  const Encoder& e = *encoder_;
  Tensor h = e.conv_in(ops::cast(ops::to_device(image, device_), dtype_));  // [N, H, W, ch]
  for (const Level& level : e.down) {
    for (const vae::ResnetBlock& b : level.blocks) h = b(h);
    if (level.down) h = (*level.down)(h);  // ⌊H/2⌋ × ⌊W/2⌋
  }
  h = (*e.mid)(h);
  h = e.conv_out(e.norm_out(h, /*silu=*/true));  // [N, h, w, 2z]
  if (e.quant_conv) h = (*e.quant_conv)(h);
  const int64_t zc = config_.z_channels;
  VaePosterior p;
  p.mean = ops::cast(ops::slice(h, 3, 0, zc), image.dtype());
  p.logvar = clamp_logvar(ops::cast(ops::slice(h, 3, zc, 2 * zc), image.dtype()));
  return p;
}

}  // namespace darkroom
