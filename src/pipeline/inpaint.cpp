// BaseModel.concat_cond (comfy/model_base.py) for inpainting models, whose concat keys
// (set_inpaint) are "mask" then "masked_image":
//
//   mask          concat_mask (InpaintModelConditioning), else the sampler's denoise mask
//                 (prepare_mask'd: bilinear to the latent, repeated over the channels):
//                 its first channel, common_upscale(bilinear, centre crop) to the latent
//                 when its size differs, rounded, resize_to_batch_size to the latent's batch
//   masked_image  process_latent_in(concat_latent_image) (common_upscale'd and batch-resized
//                 when its shape differs), else the sampler's latent_image (model space)
//   no mask       ones, and blank_inpaint_image_like: the latent of a gray (0) image,
//                 (0.8223, -0.6876, 0.6364, 0.1380) per channel
#include "pipeline/inpaint.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "pipeline/mask_ops.h"

namespace darkroom::pipeline {
namespace {

// comfy.utils.common_upscale(s, W, H, "bilinear", "center") of planes [M, h, w]: cut to the
// target's aspect ratio around the centre (Python's round, half to even), then
// interpolate(mode="bilinear").
Tensor upscale_center(const Tensor& planes, int64_t H, int64_t W) {
  const int64_t m = planes.dim(0), oh = planes.dim(1), ow = planes.dim(2);
  const double old_aspect = static_cast<double>(ow) / static_cast<double>(oh);
  const double new_aspect = static_cast<double>(W) / static_cast<double>(H);
  int64_t x = 0, y = 0;
  if (old_aspect > new_aspect)
    x = static_cast<int64_t>(std::nearbyint((ow - ow * (new_aspect / old_aspect)) / 2));
  else if (old_aspect < new_aspect)
    y = static_cast<int64_t>(std::nearbyint((oh - oh * (old_aspect / new_aspect)) / 2));
  Tensor cut = planes;
  if (x > 0 || y > 0) {
    const int64_t ch = oh - 2 * y, cw = ow - 2 * x;
    std::vector<float> v(static_cast<size_t>(m * ch * cw));
    const float* s = planes.data<float>();
    for (int64_t i = 0; i < m; ++i)
      for (int64_t r = 0; r < ch; ++r)
        std::memcpy(v.data() + (i * ch + r) * cw, s + (i * oh + r + y) * ow + x,
                    static_cast<size_t>(cw) * sizeof(float));
    cut = Tensor::from_floats(v, {m, ch, cw});
  }
  return resize_masks_bilinear(cut, H, W);
}

// NHWC [n, h, w, c] ↔ planes [n·c, h, w].
Tensor to_planes(const Tensor& t) {
  const int64_t n = t.dim(0), h = t.dim(1), w = t.dim(2), c = t.dim(3);
  std::vector<float> v(static_cast<size_t>(t.numel()));
  const float* s = t.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < h * w; ++p)
      for (int64_t k = 0; k < c; ++k)
        v[static_cast<size_t>((i * c + k) * h * w + p)] = s[(i * h * w + p) * c + k];
  return Tensor::from_floats(v, {n * c, h, w});
}

Tensor from_planes(const Tensor& planes, int64_t n, int64_t c) {
  const int64_t h = planes.dim(1), w = planes.dim(2);
  std::vector<float> v(static_cast<size_t>(planes.numel()));
  const float* s = planes.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < h * w; ++p)
      for (int64_t k = 0; k < c; ++k)
        v[static_cast<size_t>((i * h * w + p) * c + k)] = s[(i * c + k) * h * w + p];
  return Tensor::from_floats(v, {n, h, w, c});
}

// comfy.utils.resize_to_batch_size along dimension 0: an even pick of the rows (fewer:
// round(i·(b-1)/(n-1)); more: floor((i + 0.5)·b/n)).
Tensor resize_to_batch_size(const Tensor& t, int64_t n) {
  const int64_t b = t.dim(0);
  if (b == n) return t;
  const int64_t row = t.numel() / b;
  std::vector<float> v(static_cast<size_t>(n * row));
  const float* s = t.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t src = 0;
    if (n > 1 && n < b)
      src = static_cast<int64_t>(std::nearbyint(static_cast<double>(i) * (b - 1) / (n - 1)));
    else if (n > 1)
      src = static_cast<int64_t>(std::floor((i + 0.5) * (static_cast<double>(b) / n)));
    src = std::min(src, b - 1);
    std::memcpy(v.data() + i * row, s + src * row, static_cast<size_t>(row) * sizeof(float));
  }
  std::vector<int64_t> dims = {n};
  for (int d = 1; d < t.ndim(); ++d) dims.push_back(t.dim(d));
  return Tensor::from_floats(v, Shape(dims));
}

// The "mask" key: [n, h, w], 0 or 1.
Tensor concat_mask_of(const Tensor& mask, int64_t n, int64_t h, int64_t w) {
  DR_CHECK(mask.ndim() >= 2, "inpaint", "expected a mask [M, H, W], got ", mask.shape().str());
  // mask.reshape((-1, 1, H', W')); a [M, 1, H', W'] mask keeps its first channel.
  const int64_t mh = mask.dim(mask.ndim() - 2), mw = mask.dim(mask.ndim() - 1);
  Tensor m = mask;
  if (mask.ndim() == 4 && mask.dim(1) > 1) {
    std::vector<float> v;
    const std::vector<float> all = mask.to_floats();
    for (int64_t i = 0; i < mask.dim(0); ++i)
      v.insert(v.end(), all.begin() + i * mask.dim(1) * mh * mw,
               all.begin() + (i * mask.dim(1) + 1) * mh * mw);
    m = Tensor::from_floats(v, {mask.dim(0), mh, mw});
  } else {
    m = Tensor::from_floats(mask.to_floats(), {mask.numel() / (mh * mw), mh, mw});
  }
  if (mh != h || mw != w) m = upscale_center(m, h, w);
  std::vector<float> v = m.to_floats();
  for (float& e : v) e = std::nearbyint(e);  // torch.round: half to even
  return resize_to_batch_size(Tensor::from_floats(v, m.shape()), n);
}

}  // namespace

int concat_channels(const ModelHandle& model, int64_t latent_channels) {
  const int64_t in = model.unet->config().in_channels;
  if (in == latent_channels) return 0;
  // ComfyUI makes a UNet inpainting (set_inpaint) when it takes 9 channels: latent,
  // mask and masked-image latent.
  DR_CHECK(in == 2 * latent_channels + 1, "KSampler", "the latent has ", latent_channels,
           " channels but the model takes ", in, " (an inpainting model takes ",
           2 * latent_channels + 1, ": the latent, the mask and the masked image's latent)");
  return static_cast<int>(latent_channels + 1);
}

Tensor inpaint_concat(const ModelHandle& model, const CondEntry& entry, const Tensor& latent_in,
                      const std::optional<Tensor>& noise_mask) {
  const int64_t n = latent_in.dim(0), h = latent_in.dim(1), w = latent_in.dim(2),
                c = latent_in.dim(3);
  const int cc = concat_channels(model, c);
  if (cc == 0) return {};

  std::optional<Tensor> mask;
  if (entry.concat_mask)
    mask = concat_mask_of(*entry.concat_mask, n, h, w);
  else if (noise_mask)  // the sampler's prepared denoise mask, first channel
    mask = concat_mask_of(prepare_noise_mask(*noise_mask, n, h, w, 1).reshape({n, h, w}), n, h, w);

  std::vector<float> out(static_cast<size_t>(n * h * w * cc));
  if (!mask) {
    // ones_like(noise)[:, :1] and blank_inpaint_image_like(noise)
    static constexpr float kBlank[4] = {0.8223f, -0.6876f, 0.6364f, 0.1380f};
    DR_CHECK(c == 4, "inpaint", "no blank inpainting image is known for a ", c,
             "-channel latent; give the sampler a noise mask or use InpaintModelConditioning");
    for (int64_t p = 0; p < n * h * w; ++p) {
      out[static_cast<size_t>(p * cc)] = 1.0f;
      for (int64_t k = 0; k < c; ++k) out[static_cast<size_t>(p * cc + 1 + k)] = kBlank[k];
    }
    return Tensor::from_floats(out, {n, h, w, cc});
  }

  Tensor image = latent_in;
  if (entry.concat_latent_image) {
    const Tensor& z = *entry.concat_latent_image;
    DR_CHECK(z.ndim() == 4 && z.dim(3) == c, "inpaint", "the inpainting image's latent ",
             z.shape().str(), " does not have the sampled latent's ", c, " channels");
    std::vector<float> v = z.to_floats();
    for (float& e : v) e *= model.latent_scale;  // process_latent_in
    image = Tensor::from_floats(v, z.shape());
    if (z.dim(1) != h || z.dim(2) != w)
      image = from_planes(upscale_center(to_planes(image), h, w), z.dim(0), c);
    image = resize_to_batch_size(image, n);
  }
  const float* mk = mask->data<float>();
  const float* im = image.data<float>();
  for (int64_t p = 0; p < n * h * w; ++p) {
    out[static_cast<size_t>(p * cc)] = mk[p];
    for (int64_t k = 0; k < c; ++k) out[static_cast<size_t>(p * cc + 1 + k)] = im[p * c + k];
  }
  return Tensor::from_floats(out, {n, h, w, cc});
}

}  // namespace darkroom::pipeline
