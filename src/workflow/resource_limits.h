// Server-side caps on what one prompt may ask for, beyond the ranges the nodes declare
// (ComfyUI lets EmptyLatentImage ask for 16384² × 4096 images, which no machine holds).
// A prompt over a cap is refused when it is validated — POST /prompt answers 400 with
// ComfyUI's node_errors shape — instead of exhausting memory while it runs; values that
// only exist at run time (an upscaled image, a latent scaled by a factor) are checked
// before the next node consumes them and fail that prompt alone (execution_error).
//
//   pixels   width × height × batch, in image pixels (a latent [N, h, w, C] counts
//            N·h·w·64: one latent pixel is 8×8 image pixels)
//   steps    any node's "steps" input
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace darkroom::workflow {

struct ResourceLimits {
  uint64_t max_pixels = 0;  // 0: no cap (serve: --max-pixels, default 16 Mpx)
  int64_t max_steps = 0;    // 0: no cap (serve: --max-steps, default 1000)
};

// "" when `t` (an IMAGE [N, H, W, C] or, with latent = true, a LATENT [N, h, w, C]) is
// within the cap; else the message an execution_error carries.
std::string over_pixel_limit(const Tensor& t, bool latent, const ResourceLimits& limits);

}  // namespace darkroom::workflow
