#include "models/unet_blocks.h"

#include <string>

#include "backend/ops.h"
#include "core/error.h"

namespace darkroom::unet {

layers::Linear load_projection(const Weights& w, std::string_view name, int64_t in, int64_t out,
                               bool conv1x1) {
  if (!conv1x1) return layers::Linear::load(w, name, in, out);
  const std::string n(name);
  // [out, in, 1, 1] and [out, in] have the same bytes: a 1×1 conv over NHWC pixels is a
  // Linear over their channels.
  layers::Linear l;
  l.weight = w.get(n + ".weight", {out, in, 1, 1}).reshape({out, in});
  l.bias = w.get(n + ".bias", {out});
  return l;
}

TimeEmbedding TimeEmbedding::load(const Weights& w, int64_t model_channels, int64_t adm) {
  TimeEmbedding e;
  const int64_t emb_dim = 4 * model_channels;
  e.model_channels = model_channels;
  e.adm_channels = adm;
  e.time0 = layers::Linear::load(w, "time_embed.0", model_channels, emb_dim);
  e.time2 = layers::Linear::load(w, "time_embed.2", emb_dim, emb_dim);
  if (adm > 0) {
    e.label0 = layers::Linear::load(w, "label_emb.0.0", adm, emb_dim);
    e.label2 = layers::Linear::load(w, "label_emb.0.2", emb_dim, emb_dim);
  }
  return e;
}

Tensor TimeEmbedding::operator()(const Tensor& timesteps, const Tensor& y_in, DType dtype,
                                 DeviceId device, const char* what) const {
  const Tensor t = ops::to_device(timesteps, device);
  const Tensor t_freq = ops::timestep_embedding(t, static_cast<int>(model_channels),
                                                /*flip_sin_to_cos=*/true, 0.0f, 10000.0f,
                                                dtype);  // [B, mc]
  Tensor emb = time2(ops::silu(time0(t_freq)));          // [B, 4mc]
  if (label0) {
    const int64_t b = timesteps.dim(0);
    DR_CHECK(y_in.ndim() == 2 && y_in.dim(0) == b && y_in.dim(1) == adm_channels, what,
             "y has shape ", y_in.shape(), ", expected [", b, ", ", adm_channels, "]");
    Tensor y = y_in.dtype() == dtype ? y_in : ops::cast(y_in, dtype);
    y = ops::to_device(y, device);
    emb = ops::add(emb, (*label2)(ops::silu((*label0)(y))));  // [B, 4mc]
  }
  return ops::silu(emb);  // [B, 4mc]
}

void check_unet_inputs(const Tensor& x, const Tensor& timesteps, const Tensor& context,
                       const Tensor& y, int64_t in_channels, int64_t context_dim, int64_t adm,
                       const char* what) {
  DR_CHECK(x.ndim() == 4 && x.dim(3) == in_channels, what, "x has shape ", x.shape(),
           ", expected [B, H, W, ", in_channels, "]");
  const int64_t b = x.dim(0);
  DR_CHECK(x.dim(1) >= 1 && x.dim(2) >= 1, what, "empty latent ", x.shape());
  DR_CHECK(timesteps.ndim() == 1 && timesteps.dim(0) == b && timesteps.dtype() == DType::F32, what,
           "timesteps must be f32 [", b, "], got ", dtype_name(timesteps.dtype()), " ",
           timesteps.shape());
  DR_CHECK(context.ndim() == 3 && context.dim(0) == b && context.dim(2) == context_dim, what,
           "context has shape ", context.shape(), ", expected [", b, ", T, ", context_dim, "]");
  DR_CHECK((adm > 0) == y.defined(), what,
           adm > 0 ? "this network needs the vector y [B, adm]" : "this network takes no vector y");
}

ResBlock ResBlock::load(const Weights& w, int64_t in, int64_t out, int64_t emb_dim, int groups) {
  ResBlock r;
  r.in_norm = layers::GroupNorm::load(w, "in_layers.0", in, groups, kResNormEps);
  r.in_conv = layers::Conv2d::load(w, "in_layers.2", in, out, 3);
  r.emb_proj = layers::Linear::load(w, "emb_layers.1", emb_dim, out);
  r.out_norm = layers::GroupNorm::load(w, "out_layers.0", out, groups, kResNormEps);
  r.out_conv = layers::Conv2d::load(w, "out_layers.3", out, out, 3);
  if (in != out) r.skip = load_projection(w, "skip_connection", in, out, /*conv1x1=*/true);
  return r;
}

Tensor ResBlock::operator()(const Tensor& x, const Tensor& emb_silu) const {
  // x [B, H, W, in]
  Tensor h = in_conv(in_norm(x, /*silu=*/true));  // [B, H, W, out]
  // The timestep embedding shifts every pixel: [B, out] → [B, 1, 1, out], broadcast.
  const Tensor e = emb_proj(emb_silu);  // [B, out]
  h = ops::add(h, e.reshape({e.dim(0), 1, 1, e.dim(1)}));
  // Dropout is the identity at inference.
  h = out_conv(out_norm(h, /*silu=*/true));   // [B, H, W, out]
  return ops::add(skip ? (*skip)(x) : x, h);  // [B, H, W, out]
}

Attention Attention::load(const Weights& w, int64_t dim, int64_t context_dim, int heads) {
  DR_CHECK(heads >= 1 && dim % heads == 0, "unet", w.prefix(), ": ", dim,
           " channels do not split into ", heads, " heads");
  Attention a;
  a.to_q = layers::Linear::load(w, "to_q", dim, dim, /*bias=*/false);
  a.to_k = layers::Linear::load(w, "to_k", context_dim, dim, /*bias=*/false);
  a.to_v = layers::Linear::load(w, "to_v", context_dim, dim, /*bias=*/false);
  a.to_out = layers::Linear::load(w, "to_out.0", dim, dim);
  a.heads = heads;
  return a;
}

Tensor Attention::operator()(const Tensor& x, const Tensor& context) const {
  const Tensor q = to_q(x);        // [B, N, dim]: heads side by side in the channels
  const Tensor k = to_k(context);  // [B, T, dim]
  const Tensor v = to_v(context);  // [B, T, dim]
  // softmax(q·kᵀ / sqrt(dim/heads)) · v per head, scale as ldm's dim_head^-0.5.
  const Tensor o = ops::attention(q, k, v, heads);  // [B, N, dim]
  return to_out(o);                                 // [B, N, dim]
}

FeedForward FeedForward::load(const Weights& w, int64_t dim, int64_t inner) {
  return {layers::Linear::load(w, "net.0.proj", dim, 2 * inner),
          layers::Linear::load(w, "net.2", inner, dim)};
}

Tensor FeedForward::operator()(const Tensor& x) const {
  const Tensor h = ops::geglu(proj_in(x));  // [B, N, 2·inner] → [B, N, inner]
  return proj_out(h);                       // [B, N, dim]
}

TransformerBlock TransformerBlock::load(const Weights& w, int64_t dim, int64_t context_dim,
                                        int heads) {
  TransformerBlock b;
  b.norm1 = layers::LayerNorm::load(w, "norm1", dim, kLayerNormEps);
  b.attn1 = Attention::load(w.sub("attn1."), dim, dim, heads);
  b.norm2 = layers::LayerNorm::load(w, "norm2", dim, kLayerNormEps);
  b.attn2 = Attention::load(w.sub("attn2."), dim, context_dim, heads);
  b.norm3 = layers::LayerNorm::load(w, "norm3", dim, kLayerNormEps);
  b.ff = FeedForward::load(w.sub("ff."), dim, 4 * dim);
  return b;
}

Tensor TransformerBlock::operator()(const Tensor& x, const Tensor& context) const {
  // x [B, N, dim]
  Tensor h = norm1(x);
  Tensor r = ops::add(attn1(h, h), x);  // self-attention
  h = norm2(r);
  r = ops::add(attn2(h, context), r);  // cross-attention to the text tokens [B, T, ctx]
  return ops::add(ff(norm3(r)), r);    // [B, N, dim]
}

SpatialTransformer SpatialTransformer::load(const Weights& w, int64_t channels, int64_t context_dim,
                                            int heads, int depth, bool linear_proj, int groups) {
  SpatialTransformer t;
  t.norm = layers::GroupNorm::load(w, "norm", channels, groups, kTransformerNormEps);
  t.proj_in = load_projection(w, "proj_in", channels, channels, !linear_proj);
  for (int i = 0; i < depth; ++i)
    t.blocks.push_back(TransformerBlock::load(
        w.sub("transformer_blocks." + std::to_string(i) + "."), channels, context_dim, heads));
  t.proj_out = load_projection(w, "proj_out", channels, channels, !linear_proj);
  return t;
}

Tensor SpatialTransformer::operator()(const Tensor& x, const Tensor& context) const {
  // x [B, H, W, C]. ldm applies proj_in before flattening (conv) or after (linear); on
  // NHWC data the two orders are the same computation.
  const int64_t b = x.dim(0), hgt = x.dim(1), wid = x.dim(2), c = x.dim(3);
  Tensor h = proj_in(norm(x)).reshape({b, hgt * wid, c});  // tokens [B, H·W, C]
  for (const TransformerBlock& block : blocks) h = block(h, context);
  h = proj_out(h).reshape({b, hgt, wid, c});  // [B, H, W, C]
  return ops::add(h, x);
}

Downsample Downsample::load(const Weights& w, int64_t channels) {
  return {layers::Conv2d::load(w, "op", channels, channels, 3, /*stride=*/2, /*padding=*/1)};
}

Upsample Upsample::load(const Weights& w, int64_t channels) {
  return {layers::Conv2d::load(w, "conv", channels, channels, 3)};
}

Tensor Upsample::operator()(const Tensor& x) const {
  return conv(ops::upsample_nearest2x(x));  // [B, H, W, C] → [B, 2H, 2W, C]
}

Tensor Upsample::operator()(const Tensor& x, int64_t out_h, int64_t out_w) const {
  const int64_t h = x.dim(1), w = x.dim(2);
  DR_CHECK((out_h == 2 * h || out_h == 2 * h - 1) && (out_w == 2 * w || out_w == 2 * w - 1), "unet",
           "cannot upsample ", h, "x", w, " to ", out_h, "x", out_w,
           " (the skip must be twice the size, or one less)");
  Tensor up = ops::upsample_nearest2x(x);  // [B, 2H, 2W, C]
  if (out_h != 2 * h) up = ops::slice(up, 1, 0, out_h);
  if (out_w != 2 * w) up = ops::slice(up, 2, 0, out_w);
  return conv(up);  // [B, out_h, out_w, C]
}

}  // namespace darkroom::unet
