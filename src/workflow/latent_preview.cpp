// Latent → RGB previews (see latent_preview.h).
#include "workflow/latent_preview.h"

#include <algorithm>
#include <array>

#include "io/image_codec.h"
#include "workflow/image_resize.h"

namespace darkroom::workflow {

const std::vector<std::array<float, 3>>* latent_rgb_factors(const std::string& latent_format) {
  // comfy/latent_formats.py, SD15.latent_rgb_factors (R, G, B per latent channel); no
  // bias. SD 1.x and 2.x share it.
  static const std::vector<std::array<float, 3>> kSd15 = {{0.3512f, 0.2297f, 0.3227f},
                                                          {0.3250f, 0.4974f, 0.2350f},
                                                          {-0.2829f, 0.1762f, 0.2721f},
                                                          {-0.2120f, -0.2616f, -0.7177f}};
  // SDXL.latent_rgb_factors (with the bias of latent_rgb_bias).
  static const std::vector<std::array<float, 3>> kSdxl = {{0.3651f, 0.4232f, 0.4341f},
                                                          {-0.2533f, -0.0042f, 0.1068f},
                                                          {0.1076f, 0.1111f, -0.0362f},
                                                          {-0.3165f, -0.2492f, -0.2188f}};
  if (latent_format == "sd15") return &kSd15;
  if (latent_format == "sdxl") return &kSdxl;
  return nullptr;
}

std::array<float, 3> latent_rgb_bias(const std::string& latent_format) {
  if (latent_format == "sdxl") return {0.1084f, -0.0175f, -0.0011f};  // latent_rgb_factors_bias
  return {0.0f, 0.0f, 0.0f};
}

std::vector<uint8_t> latent_to_rgb8(const Tensor& x0, const std::string& latent_format) {
  const std::vector<std::array<float, 3>>* factors = latent_rgb_factors(latent_format);
  DR_CHECK(factors != nullptr, "preview", "no latent → RGB factors for latent format '",
           latent_format, "'");
  DR_CHECK(x0.ndim() == 4 && x0.dim(0) >= 1, "preview", "expected x0 [N, h, w, C], got ",
           x0.shape());
  const int64_t h = x0.dim(1), w = x0.dim(2), c = x0.dim(3);
  DR_CHECK(c == static_cast<int64_t>(factors->size()), "preview", "x0 has ", c,
           " channels; latent format '", latent_format, "' has ", factors->size());
  const std::array<float, 3> bias = latent_rgb_bias(latent_format);
  const std::vector<float> v = x0.narrow0(0, 1).to_floats();  // [h, w, C]
  std::vector<uint8_t> rgb(static_cast<size_t>(h * w * 3));
  for (int64_t p = 0; p < h * w; ++p)
    for (int k = 0; k < 3; ++k) {
      // torch.nn.functional.linear: a float dot product over the channels, plus the bias.
      float s = bias[static_cast<size_t>(k)];
      for (int64_t ch = 0; ch < c; ++ch)
        s += v[static_cast<size_t>(p * c + ch)] * (*factors)[static_cast<size_t>(ch)][k];
      const float unit = std::clamp((s + 1.0f) / 2.0f, 0.0f, 1.0f);
      rgb[static_cast<size_t>(p * 3 + k)] = static_cast<uint8_t>(unit * 255.0f);  // truncates
    }
  return rgb;
}

std::pair<int64_t, int64_t> contain_size(int64_t w, int64_t h, int64_t max_size) {
  const double im_ratio = static_cast<double>(w) / static_cast<double>(h);
  if (im_ratio > 1.0) return {max_size, round_half_even(static_cast<double>(h) / w * max_size)};
  if (im_ratio < 1.0) return {round_half_even(static_cast<double>(w) / h * max_size), max_size};
  return {max_size, max_size};
}

std::optional<EncodedPreview> preview_from_latent(const Tensor& x0,
                                                  const std::string& latent_format,
                                                  const PreviewOptions& options) {
  if (options.method == "none" || latent_rgb_factors(latent_format) == nullptr) return std::nullopt;
  std::vector<uint8_t> rgb = latent_to_rgb8(x0, latent_format);
  int64_t w = x0.dim(2), h = x0.dim(1);
  if (options.max_size > 0) {
    const auto [cw, ch] = contain_size(w, h, options.max_size);
    const int64_t nw = std::max<int64_t>(cw, 1), nh = std::max<int64_t>(ch, 1);
    if (nw != w || nh != h) {
      rgb = pil_resize(rgb, h, w, 3, nh, nw, PilFilter::Bilinear);
      w = nw;
      h = nh;
    }
  }
  EncodedPreview p;
  p.format = "JPEG";
  p.bytes = encode_jpeg(rgb, static_cast<int>(w), static_cast<int>(h), 3, 95);
  return p;
}

namespace {
// The executor's hook (workflow/node.h); darkroom_workflow is linked whole, so this runs.
const bool kRegistered = [] {
  set_latent_previewer(preview_from_latent);
  return true;
}();
}  // namespace

}  // namespace darkroom::workflow
