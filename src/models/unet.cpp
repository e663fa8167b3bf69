// UNet::load and UNet::forward: ldm's UNetModel assembled from the blocks of unet_blocks.h.
#include "models/unet.h"

#include "models/unet_encoder.h"

#include <string>

namespace darkroom {
namespace {

const char* kOp = "unet";

Tensor as(const Tensor& t, DType dtype, DeviceId device) {
  Tensor r = t.dtype() == dtype ? t : ops::cast(t, dtype);
  return ops::to_device(r, device);
}

}  // namespace

UNet UNet::load(const Weights& w, const UNetConfig& cfg) {
  DR_CHECK(cfg.levels() >= 1 && static_cast<int>(cfg.transformer_depth.size()) == cfg.levels(), kOp,
           "channel_mult and transformer_depth need one entry per level");
  UNet u;
  u.config_ = cfg;
  u.dtype_ = w.dtype();
  u.device_ = w.device();
  const int64_t mc = cfg.model_channels, emb_dim = 4 * mc;

  u.time_embed_ = unet::TimeEmbedding::load(w, mc, cfg.adm_in_channels);
  u.conv_in_ = layers::Conv2d::load(w, "input_blocks.0.0", cfg.in_channels, mc, 3);

  // Down: every ResBlock (+ transformer) and every Downsample is one input block, and
  // each one's output is kept for the skip connection of an output block.
  std::vector<int64_t> skip_channels = {mc};  // conv_in's output
  for (unet::InputBlock& b : unet::load_input_blocks(w, cfg)) {
    skip_channels.push_back(b.channels);
    u.input_blocks_.push_back({std::move(b.res), std::move(b.attn), std::move(b.down), {}});
  }
  int64_t ch = skip_channels.back();

  unet::MiddleBlock middle = unet::load_middle_block(w, cfg, ch);
  u.middle_block_.res = std::move(middle.res1);
  u.middle_block_.attn = std::move(middle.attn);
  // The second ResBlock of the middle has no Stage slot of its own: it is run after attn.
  u.middle_res2_ = std::move(middle.res2);

  // Up: num_res_blocks + 1 ResBlocks per level, each taking one skip; the last of a
  // level (not the top one) upsamples, as block .1 or, after a transformer, .2.
  int idx = 0;
  for (int level = cfg.levels() - 1; level >= 0; --level) {
    const int64_t width = mc * cfg.channel_mult[level];
    for (int r = 0; r <= cfg.num_res_blocks; ++r, ++idx) {
      Stage s;
      const int64_t skip = skip_channels.back();
      skip_channels.pop_back();
      s.res = unet::ResBlock::load(w.sub(unet::block_prefix("output_blocks", idx, 0)), ch + skip,
                                   width, emb_dim, cfg.groups);
      ch = width;
      const int depth = cfg.transformer_depth[level];
      if (depth > 0)
        s.attn =
            unet::load_attention(w, cfg, unet::block_prefix("output_blocks", idx, 1), ch, depth);
      if (level > 0 && r == cfg.num_res_blocks)
        s.up = unet::Upsample::load(
            w.sub(unet::block_prefix("output_blocks", idx, depth > 0 ? 2 : 1)), ch);
      u.output_blocks_.push_back(std::move(s));
    }
  }
  DR_ASSERT(skip_channels.empty());

  u.out_norm_ = layers::GroupNorm::load(w, "out.0", ch, cfg.groups, unet::kResNormEps);
  u.out_conv_ = layers::Conv2d::load(w, "out.2", ch, cfg.out_channels, 3);
  return u;
}

Tensor UNet::run_stage(const Stage& s, Tensor h, const Tensor& emb_silu, const Tensor& context,
                       const Tensor& skip) const {
  if (s.res) h = (*s.res)(h, emb_silu);   // [B, H, W, C_in] → [B, H, W, C]
  if (s.attn) h = (*s.attn)(h, context);  // [B, H, W, C]
  if (s.down) h = (*s.down)(h);           // [B, H/2, W/2, C]
  if (s.up) {  // [B, 2H, 2W, C], or the skip's size (2H - 1 below an odd side)
    h = skip.defined() ? (*s.up)(h, skip.dim(1), skip.dim(2)) : (*s.up)(h);
  }
  return h;
}

Tensor UNet::forward(const Tensor& x_in, const Tensor& timesteps, const Tensor& context_in,
                     const Tensor& y_in, const ControlResiduals* control) const {
  const UNetConfig& c = config_;
  unet::check_unet_inputs(x_in, timesteps, context_in, y_in, c.in_channels, c.context_dim,
                          c.adm_in_channels, kOp);
  const Tensor x = as(x_in, dtype_, device_);                                  // [B, H, W, in]
  const Tensor context = as(context_in, dtype_, device_);                      // [B, T, ctx]
  const Tensor emb_silu = time_embed_(timesteps, y_in, dtype_, device_, kOp);  // [B, 4mc]

  if (control) {
    DR_CHECK(control->skips.empty() || control->skips.size() == input_blocks_.size() + 1, kOp,
             "ControlNet residuals for ", control->skips.size(), " skips; this UNet has ",
             input_blocks_.size() + 1);
  }
  // ComfyUI's apply_control: h + residual, at the residual's shape.
  auto controlled = [&](const Tensor& h, const Tensor& r) {
    if (!r.defined()) return h;
    DR_CHECK(r.shape() == h.shape(), kOp, "a ControlNet residual has shape ", r.shape(),
             ", the UNet's activation ", h.shape());
    return ops::add(h, as(r, dtype_, device_));
  };
  auto skip_residual = [&](size_t i) {
    return control && !control->skips.empty() ? control->skips[i] : Tensor();
  };

  Tensor h = conv_in_(x);  // [B, H, W, mc]
  std::vector<Tensor> skips = {controlled(h, skip_residual(0))};
  for (size_t i = 0; i < input_blocks_.size(); ++i) {
    h = run_stage(input_blocks_[i], h, emb_silu, context);  // down to [B, H/f, W/f, C]
    skips.push_back(controlled(h, skip_residual(i + 1)));
  }
  // (the residuals go to the skips only, as ComfyUI's 'output' controls; h goes on as is)
  h = run_stage(middle_block_, h, emb_silu, context);
  h = middle_res2_(h, emb_silu);  // [B, H/f, W/f, C]
  if (control) h = controlled(h, control->middle);
  for (const Stage& s : output_blocks_) {
    // The skip joins along the channels: [B, h, w, C] ++ [B, h, w, C_skip].
    h = ops::concat({h, skips.back()}, 3);
    skips.pop_back();
    // An upsampling stage is sized to the next skip (ldm's output_shape).
    h = run_stage(s, h, emb_silu, context, skips.empty() ? Tensor() : skips.back());
    // back up to [B, H, W, mc]
  }
  h = out_conv_(out_norm_(h, /*silu=*/true));  // [B, H, W, out]
  return h.dtype() == x_in.dtype() ? h : ops::cast(h, x_in.dtype());
}

Tensor sdxl_vector_y(const Tensor& pooled, const std::vector<std::array<float, 6>>& sizes,
                     int dim) {
  DR_CHECK(pooled.defined() && pooled.ndim() == 2, kOp, "pooled must be [B, P]");
  const int64_t b = pooled.dim(0);
  DR_CHECK(static_cast<int64_t>(sizes.size()) == b, kOp, sizes.size(),
           " size entries for a batch of ", b);
  DR_CHECK(dim > 0 && dim % 2 == 0, kOp, "the size embedding width must be even, got ", dim);
  std::vector<float> numbers;  // [B·6], image-major as sgm flattens them
  for (const auto& s : sizes) numbers.insert(numbers.end(), s.begin(), s.end());
  const Tensor t = Tensor::from_floats(numbers, {6 * b});
  const Tensor emb = ops::timestep_embedding(t, dim, /*flip_sin_to_cos=*/true, 0.0f, 10000.0f,
                                             DType::F32);  // [6B, dim]
  const Tensor p = ops::cast(ops::to_device(pooled, kCpu), DType::F32);
  return ops::concat({p, emb.reshape({b, 6 * dim})}, 1);  // [B, P + 6·dim]
}

}  // namespace darkroom
