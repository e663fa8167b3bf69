// ComfyUI's VAE.encode for the nodes that encode images (VAEEncode, VAEEncodeForInpaint,
// InpaintModelConditioning): vae_encode_crop_pixels (a centred crop of each side to a
// multiple of the VAE's ratio), the RGB channels as 2x - 1, and the posterior's mean.
#pragma once

#include <functional>

#include "core/tensor.h"
#include "pipeline/model_handles.h"

namespace darkroom::pipeline {

// pixels: CPU f32 [N, H, W, C≥3] in [0, 1] → the latent z (the VAE's own space), CPU f32
// [N, H/r, W/r, z_channels]. Images are encoded one at a time; `before_each` (may be
// empty) runs before each (the workflow's interrupt check). `op` names the node in errors.
Tensor vae_encode(const VaeHandle& vae, const Tensor& pixels, const char* op,
                  const std::function<void()>& before_each = nullptr);

}  // namespace darkroom::pipeline
