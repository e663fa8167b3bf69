// Classifier-free guidance. The caller runs cond and uncond as one batch of 2 (or 2·N)
// and splits the denoised outputs; this combines them:
//   D = uncond + (cond - uncond)·scale
// (ComfyUI's cfg_function without sampler_cfg_function / post-CFG hooks; with scale 1
// ComfyUI skips the uncond pass entirely, which the caller decides.)
#pragma once

#include "core/tensor.h"

namespace darkroom::sampling {

// uncond, cond [N, ...] (same shape) -> [N, ...]
Tensor cfg_combine(const Tensor& uncond, const Tensor& cond, float scale);

}  // namespace darkroom::sampling
