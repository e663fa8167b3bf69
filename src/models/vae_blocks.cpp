#include "models/vae_blocks.h"

#include <string>

#include "backend/ops.h"

namespace darkroom::vae {

layers::Linear load_conv1x1(const Weights& w, std::string_view name, int64_t in, int64_t out) {
  const std::string n(name);
  return {w.get(n + ".weight", {out, in, 1, 1}).reshape({out, in}), w.get(n + ".bias", {out})};
}

ResnetBlock ResnetBlock::load(const Weights& w, int64_t in, int64_t out, int groups) {
  ResnetBlock b{
      layers::GroupNorm::load(w, "norm1", in, groups, kNormEps),
      layers::GroupNorm::load(w, "norm2", out, groups, kNormEps),
      layers::Conv2d::load(w, "conv1", in, out, 3),
      layers::Conv2d::load(w, "conv2", out, out, 3),
      std::nullopt,
  };
  if (in != out) b.nin_shortcut = load_conv1x1(w, "nin_shortcut", in, out);
  return b;
}

Tensor ResnetBlock::operator()(const Tensor& x) const {
  // x [N, H, W, in]
  Tensor h = conv1(norm1(x, /*silu=*/true));  // [N, H, W, out]
  h = conv2(norm2(h, /*silu=*/true));         // dropout is the identity at inference
  return ops::add(nin_shortcut ? (*nin_shortcut)(x) : x, h);
}

AttnBlock AttnBlock::load(const Weights& w, int64_t c, int groups) {
  return {layers::GroupNorm::load(w, "norm", c, groups, kNormEps), load_conv1x1(w, "q", c, c),
          load_conv1x1(w, "k", c, c), load_conv1x1(w, "v", c, c),
          load_conv1x1(w, "proj_out", c, c)};
}

Tensor AttnBlock::operator()(const Tensor& x) const {
  // x [N, H, W, C] is already the token sequence [N, H·W, C].
  const int64_t n = x.dim(0), c = x.dim(3);
  const Tensor h = norm(x).reshape({n, -1, c});
  const Tensor a = ops::attention(q(h), k(h), v(h), /*heads=*/1);  // scale 1/sqrt(C)
  return ops::add(x, proj_out(a).reshape(x.shape()));
}

MidBlock MidBlock::load(const Weights& w, int64_t c, int groups) {
  return {ResnetBlock::load(w.sub("block_1."), c, c, groups),
          ResnetBlock::load(w.sub("block_2."), c, c, groups),
          AttnBlock::load(w.sub("attn_1."), c, groups)};
}

Tensor MidBlock::operator()(const Tensor& x) const {
  return block_2(attn_1(block_1(x)));
}

Tensor pad_bottom_right(const Tensor& x) {
  // x [N, H, W, C] → [N, H, W + 1, C] → [N, H + 1, W + 1, C]
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  auto zeros = [&](const Shape& s) {
    return ops::to_device(Tensor::zeros(s, x.dtype()), x.device());
  };
  const Tensor wider = ops::concat({x, zeros({n, h, 1, c})}, 2);
  return ops::concat({wider, zeros({n, 1, w + 1, c})}, 1);
}

Downsample Downsample::load(const Weights& w, int64_t c) {
  return {layers::Conv2d::load(w, "conv", c, c, 3, /*stride=*/2, /*padding=*/0)};
}

Tensor Downsample::operator()(const Tensor& x) const {
  return conv(pad_bottom_right(x));
}

Upsample Upsample::load(const Weights& w, int64_t c) {
  return {layers::Conv2d::load(w, "conv", c, c, 3)};
}

Tensor Upsample::operator()(const Tensor& x) const {
  return conv(ops::upsample_nearest2x(x));
}

}  // namespace darkroom::vae
