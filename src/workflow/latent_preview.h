// Latent previews while a sampler runs, as ComfyUI's latent_preview.Latent2RGBPreviewer
// and server.send_image make them:
//
//   x0 [N, h, w, C] (model space) → image 0 · latent_rgb_factors [C, 3] + bias → ((v + 1) / 2)
//   clamped to [0, 1] · 255, truncated to uint8 → resized to fit max_size × max_size
//   (Pillow BILINEAR, ImageOps.contain: up or down) → JPEG, quality 95.
//
// latent_preview.cpp registers preview_from_latent as the executor's LatentPreviewer
// (workflow/node.h), so KSampler reaches it through NodeContext::preview_latent.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "workflow/executor.h"
#include "workflow/node.h"

namespace darkroom::workflow {

// ComfyUI's latent_rgb_factors for a ModelHandle::latent_format ("sd15", "sdxl"), rows per
// latent channel; nullptr for formats without factors here.
const std::vector<std::array<float, 3>>* latent_rgb_factors(const std::string& latent_format);
// Its latent_rgb_factors_bias (zeros where ComfyUI has none: SD 1.x).
std::array<float, 3> latent_rgb_bias(const std::string& latent_format);

// Image 0 of x0 as RGB bytes [h, w, 3], before any resizing.
std::vector<uint8_t> latent_to_rgb8(const Tensor& x0, const std::string& latent_format);

// The preview of x0's first image: a JPEG fitted into options.max_size; nullopt when
// options.method is "none" or the format has no factors.
std::optional<EncodedPreview> preview_from_latent(const Tensor& x0,
                                                  const std::string& latent_format,
                                                  const PreviewOptions& options);

// ImageOps.contain's size: (w, h) scaled to fit max_size × max_size, aspect kept (Python
// round for the shorter side).
std::pair<int64_t, int64_t> contain_size(int64_t w, int64_t h, int64_t max_size);

}  // namespace darkroom::workflow
