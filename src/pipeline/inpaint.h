// Inpainting models (9-channel UNets: the latent, then ComfyUI's concat_keys "mask" and
// "masked_image") and the conditioning InpaintModelConditioning attaches. ComfyUI:
// BaseModel.concat_cond in comfy/model_base.py.
#pragma once

#include <optional>

#include "core/tensor.h"
#include "pipeline/conditioning.h"
#include "pipeline/model_handles.h"

namespace darkroom::pipeline {

// Channels the model's UNet takes beyond the latent's own (0 for ordinary models, 5 for
// inpainting models: mask + masked-image latent).
int concat_channels(const ModelHandle& model, int64_t latent_channels);

// The extra UNet input of one conditioning entry, model space, CPU f32 [n, h, w, Cc]
// (Cc = concat_channels): the entry's concat_mask / concat_latent_image when
// InpaintModelConditioning set them, else the sampler's noise mask and input latent
// (`latent_in`, model space [n, h, w, C]), else ComfyUI's defaults (mask of ones, blank
// inpaint image). Undefined when the model takes no extra channels.
Tensor inpaint_concat(const ModelHandle& model, const CondEntry& entry, const Tensor& latent_in,
                      const std::optional<Tensor>& noise_mask);

}  // namespace darkroom::pipeline
