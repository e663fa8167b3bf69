// Resampling as ComfyUI's image and latent nodes do it (ImageScale, LatentUpscale, latent
// previews), restated from the libraries it calls:
//  - torch.nn.functional.interpolate on NCHW floats: "nearest-exact", "bilinear" and
//    "bicubic" (align_corners=False, no antialias; bicubic A = -0.75 with clamped
//    borders), "area" (adaptive average pooling);
//  - Pillow's Image.resize on 8-bit images: BILINEAR, BICUBIC (a = -0.5) and LANCZOS (a =
//    3), antialiased when shrinking, in Pillow's 22-bit fixed point with the horizontal
//    pass first and its result rounded to 8 bits, so results match Pillow's bytes.
// Images here are NHWC (darkroom's and ComfyUI's IMAGE layout); every channel is resampled
// alike, so the same functions serve latents [N, h, w, C].
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace darkroom::workflow {

// comfy.utils.common_upscale: x CPU f32 [N, H, W, C] → [N, height, width, C]. method:
// "nearest-exact" | "bilinear" | "area" | "bicubic" | "lanczos" (Pillow LANCZOS on the
// image clipped and truncated to uint8, as comfy.utils.lanczos) | "bislerp"; crop
// "disabled" | "center" (cut to the target aspect ratio first).
Tensor common_upscale(const Tensor& x, int64_t width, int64_t height, const std::string& method,
                      const std::string& crop);

// torch.nn.functional.interpolate(mode=method) on one image [h, w, c] → [oh, ow, c].
std::vector<float> interpolate(std::span<const float> src, int64_t h, int64_t w, int64_t c,
                               int64_t oh, int64_t ow, const std::string& method);

// comfy.utils.bislerp on one image [h, w, c] → [oh, ow, c]: bilinear positions, but each
// pixel's channel vector is slerped between its two neighbours (direction by angle,
// length linearly), along the width and then the height.
std::vector<float> bislerp(std::span<const float> src, int64_t h, int64_t w, int64_t c, int64_t oh,
                           int64_t ow);

enum class PilFilter { Bilinear, Bicubic, Lanczos };

// Pillow's Image.resize((ow, oh), filter) on uint8 [h, w, c] → [oh, ow, c].
std::vector<uint8_t> pil_resize(std::span<const uint8_t> src, int64_t h, int64_t w, int64_t c,
                                int64_t oh, int64_t ow, PilFilter filter);

// Python's round() for the sizes ComfyUI computes (halves to even).
int64_t round_half_even(double v);

}  // namespace darkroom::workflow
