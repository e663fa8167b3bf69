// ControlNets applied to conditioning (ComfyUI's comfy/controlnet.py ControlNet object as
// ControlNetApply / ControlNetApplyAdvanced attach it): each link holds a loaded network,
// its hint image, strength and timestep range, and the link before it in the chain
// (previous_controlnet). The sampler asks the last link of an entry's chain for the
// residuals of one UNet batch (cond_batch.cpp).
#pragma once

#include <memory>
#include <optional>

#include "core/tensor.h"
#include "models/controlnet.h"
#include "pipeline/conditioning.h"
#include "pipeline/model_handles.h"

namespace darkroom::pipeline {

struct ControlLink {
  std::shared_ptr<const ControlNet> net;
  Tensor hint;  // IMAGE: CPU f32 [M, H, W, C] in [0, 1], any size (resized per call)
  float strength = 1.0f;
  double start_percent = 0.0, end_percent = 1.0;
  std::shared_ptr<const ControlLink> previous;  // earlier ControlNet of the chain, or null
};

// The summed residuals (each link's × its strength) of the chain ending at `last` for one
// UNet batch: x_in = calculate_input(σ, x) [b, h, w, C] with b = entries · n (entries
// batched together, `entries` of them, each n latents), timesteps [b], context
// [b, T, ctx] and y [b, adm] (SDXL) exactly as the UNet gets them. Links whose
// start/end range excludes `sigma` add nothing; nullopt when no link applies.
std::optional<ControlResiduals> control_residuals(const ControlLink& last,
                                                  const ModelSampling& sampling, float sigma,
                                                  const Tensor& x_in, const Tensor& timesteps,
                                                  const Tensor& context, const Tensor& y,
                                                  int entries);

// comfy/samplers.py's apply_empty_x_to_equal_area for "control", as the sampler runs it
// before sampling: when no negative entry without an area has a ControlNet, the chains of
// the positive entries marked control_apply_to_uncond (ControlNetApply's) and without an
// area go to the negative's entries without area and ControlNet, the i-th chain to the
// (i mod n)-th of those n entries. The negative as it is otherwise.
Conditioning control_to_uncond(const Conditioning& positive, const Conditioning& negative);

}  // namespace darkroom::pipeline
