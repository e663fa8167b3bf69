// ControlNet::load and ControlNet::forward: cldm.ControlNet from the UNet's blocks
// (unet_blocks.h), its hint block and its zero convs.
#include "models/controlnet.h"

#include "models/unet_encoder.h"

#include <string>
#include <vector>

namespace darkroom {
namespace {

const char* kOp = "controlnet";

std::string hint_conv(size_t k) {
  return "input_hint_block." + std::to_string(2 * k);
}

Tensor as(const Tensor& t, DType dtype, DeviceId device) {
  Tensor r = t.dtype() == dtype ? t : ops::cast(t, dtype);
  return ops::to_device(r, device);
}

// [B, h, w, C] → its mean over h and w, repeated over them: [B, h, w, C].
Tensor spatial_mean(const Tensor& x) {
  const int64_t b = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const Tensor per_channel = ops::permute(x, {0, 3, 1, 2}).reshape({b, c, h * w});
  const Tensor ones = Tensor::from_floats(
      std::vector<float>(static_cast<size_t>(h * w), 1.0f / static_cast<float>(h * w)), {1, h * w},
      x.dtype());
  const Tensor mean = ops::linear(per_channel, ops::to_device(ones, x.device()));  // [B, C, 1]
  const Tensor zeros = ops::to_device(Tensor::zeros(x.shape(), x.dtype()), x.device());
  return ops::add(zeros, mean.reshape({b, 1, 1, c}));
}

}  // namespace

UNetConfig ControlNet::detect_config(const Weights& w) {
  for (const char* name : {"input_hint_block.0.weight", "zero_convs.0.0.weight",
                           "middle_block_out.0.weight", "time_embed.0.weight"}) {
    DR_CHECK(w.has(name), kOp, "no ControlNet under '", w.prefix(), "' (", name, " is missing)");
  }
  return UNetConfig::detect_encoder(w);
}

ControlNet ControlNet::load(const Weights& w) {
  return load(w, detect_config(w));
}

ControlNet ControlNet::load(const Weights& w, const UNetConfig& cfg) {
  DR_CHECK(cfg.levels() >= 1 && static_cast<int>(cfg.transformer_depth.size()) == cfg.levels(), kOp,
           "channel_mult and transformer_depth need one entry per level");
  ControlNet n;
  n.config_ = cfg;
  n.dtype_ = w.dtype();
  n.device_ = w.device();
  const int64_t mc = cfg.model_channels;

  n.time_embed_ = unet::TimeEmbedding::load(w, mc, cfg.adm_in_channels);

  // input_hint_block: 3×3 convs at even indices; the first and last at stride 1, those
  // between alternating 1, 2 (ldm: 16→16, 16→32 s2, 32→32, 32→96 s2, ...).
  size_t count = 0;
  while (w.has(hint_conv(count) + ".weight")) ++count;
  DR_CHECK(count >= 2 && count % 2 == 0, kOp, "input_hint_block has ", count,
           " convs; expected an even number (8 in released ControlNets)");
  const Shape first = w.shape(hint_conv(0) + ".weight");  // [16, hint_ch, 3, 3]
  DR_CHECK(first.ndim() == 4 && first[0] > 0 && first[1] > 0, kOp,
           "input_hint_block.0.weight has shape ", first, ", expected [C, hint_channels, 3, 3]");
  n.hint_channels_ = static_cast<int>(first[1]);
  n.hint_factor_ = 1;
  int64_t ch = first[1];
  for (size_t k = 0; k < count; ++k) {
    const bool last = k + 1 == count;
    const Shape s = w.shape(hint_conv(k) + ".weight");  // [out, in, 3, 3]
    DR_CHECK(s.ndim() == 4 && s[0] > 0, kOp, hint_conv(k), ".weight has shape ", s);
    const int64_t out = last ? mc : s[0];
    const int stride = (k >= 1 && !last && k % 2 == 0) ? 2 : 1;
    n.hint_factor_ *= stride;
    n.hint_convs_.push_back(layers::Conv2d::load(w, hint_conv(k), ch, out, 3, stride, 1));
    ch = out;
  }
  DR_CHECK(n.hint_factor_ == 8, kOp, "input_hint_block downsamples by ", n.hint_factor_,
           "; ControlNets take the hint at 8× the latent");

  n.conv_in_ = layers::Conv2d::load(w, "input_blocks.0.0", cfg.in_channels, mc, 3);
  auto zero_conv = [&](int i, int64_t channels) {
    n.zero_convs_.push_back(unet::load_projection(w, "zero_convs." + std::to_string(i) + ".0",
                                                  channels, channels, /*conv1x1=*/true));
  };
  zero_conv(0, mc);

  // The UNet's input blocks (unet_encoder.h), each followed by its zero conv.
  n.input_blocks_ = unet::load_input_blocks(w, cfg);
  for (size_t i = 0; i < n.input_blocks_.size(); ++i)
    zero_conv(static_cast<int>(i) + 1, n.input_blocks_[i].channels);
  const int idx = static_cast<int>(n.input_blocks_.size()) + 1;
  DR_CHECK(!w.has("zero_convs." + std::to_string(idx) + ".0.weight"), kOp, "zero_convs.", idx,
           " is present but there are only ", idx, " input blocks");
  ch = n.input_blocks_.empty() ? mc : n.input_blocks_.back().channels;

  unet::MiddleBlock middle = unet::load_middle_block(w, cfg, ch);
  n.middle_res1_ = std::move(middle.res1);
  n.middle_attn_ = std::move(middle.attn);
  n.middle_res2_ = std::move(middle.res2);
  n.middle_out_ = unet::load_projection(w, "middle_block_out.0", ch, ch, /*conv1x1=*/true);
  return n;
}

ControlResiduals ControlNet::forward(const Tensor& x_in, const Tensor& hint_in,
                                     const Tensor& timesteps, const Tensor& context_in,
                                     const Tensor& y_in) const {
  const UNetConfig& c = config_;
  unet::check_unet_inputs(x_in, timesteps, context_in, y_in, c.in_channels, c.context_dim,
                          c.adm_in_channels, kOp);
  const int64_t b = x_in.dim(0), h = x_in.dim(1), wd = x_in.dim(2);
  DR_CHECK(hint_in.ndim() == 4 && hint_in.dim(0) == b && hint_in.dim(1) == h * hint_factor_ &&
               hint_in.dim(2) == wd * hint_factor_ && hint_in.dim(3) == hint_channels_,
           kOp, "hint has shape ", hint_in.shape(), ", expected [", b, ", ", h * hint_factor_, ", ",
           wd * hint_factor_, ", ", hint_channels_, "] for x ", x_in.shape());

  const Tensor x = as(x_in, dtype_, device_);              // [B, h, w, in]
  const Tensor context = as(context_in, dtype_, device_);  // [B, T, ctx]
  // The UNet's time embedding; cldm adds label_emb after the hint block, which does not
  // read emb, so the order makes no difference.
  const Tensor emb_silu = time_embed_(timesteps, y_in, dtype_, device_, kOp);  // [B, 4mc]

  // guided hint: [B, 8h, 8w, hint_ch] → 16 → ... → 256 (three stride-2 convs) → [B, h, w, mc]
  Tensor g = as(hint_in, dtype_, device_);
  for (size_t k = 0; k < hint_convs_.size(); ++k) {
    g = hint_convs_[k](g);
    if (k + 1 < hint_convs_.size()) g = ops::silu(g);
  }

  ControlResiduals out;
  Tensor hs = ops::add(conv_in_(x), g);  // [B, h, w, mc]
  out.skips.push_back(zero_convs_[0](hs));
  for (size_t i = 0; i < input_blocks_.size(); ++i) {
    const unet::InputBlock& s = input_blocks_[i];
    if (s.res) hs = (*s.res)(hs, emb_silu);   // [B, h/f, w/f, C]
    if (s.attn) hs = (*s.attn)(hs, context);  // [B, h/f, w/f, C]
    if (s.down) hs = (*s.down)(hs);           // [B, ceil(h/2f), ceil(w/2f), C]
    out.skips.push_back(zero_convs_[i + 1](hs));
  }
  hs = middle_res1_(hs, emb_silu);
  hs = middle_attn_(hs, context);
  hs = middle_res2_(hs, emb_silu);  // [B, h/F, w/F, C]
  out.middle = middle_out_(hs);
  if (global_average_pooling_) {
    for (Tensor& r : out.skips) r = spatial_mean(r);
    out.middle = spatial_mean(out.middle);
  }
  return out;
}

}  // namespace darkroom
