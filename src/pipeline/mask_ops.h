// Mask resizing and batching as ComfyUI does it before sampling (comfy/sampler_helpers.py
// prepare_mask, comfy/samplers.py resolve_areas_and_cond_masks).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace darkroom::pipeline {

// torch.nn.functional.interpolate(mode="bilinear", align_corners=False) of masks
// [M, H, W] (CPU f32) to [M, h, w].
Tensor resize_masks_bilinear(const Tensor& masks, int64_t h, int64_t w);

// prepare_mask: `mask` [M, H', W'] resized to the latent's h×w, repeated over its C
// channels and to its batch n (comfy.utils.repeat_to_batch_size: cut when M > n, tiled
// when M < n) → [n, h, w, C] (NHWC like the latent).
Tensor prepare_noise_mask(const Tensor& mask, int64_t n, int64_t h, int64_t w, int64_t c);

}  // namespace darkroom::pipeline
