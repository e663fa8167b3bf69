// ComfyUI's calc_cond_batch (comfy/samplers.py): the denoised estimate of every
// conditioning entry on its area, blended by its weight:
//
//   for each entry e of a list:  D_e = denoise(x cropped to e's area, its context)
//                                mult_e = strength · (mask · mask_strength, or ones with
//                                         the area's edges feathered over 8 latent pixels)
//   out = Σ D_e·mult_e / (1e-37 + Σ mult_e)     (each on its area of the latent)
//
// Entries whose crops have the same size run as one UNet batch (cond before uncond),
// their contexts repeated to a common token count (CONDCrossAttn.concat) and their y
// vectors (SDXL) stacked.
#pragma once

#include <functional>
#include <vector>

#include "core/tensor.h"
#include "pipeline/conditioning.h"
#include "pipeline/model_handles.h"

namespace darkroom::pipeline {

// An entry resolved against the latent: its crop and weight, ready for the UNet.
struct ResolvedCond {
  const CondEntry* entry = nullptr;    // what it was resolved from (valid while sampling)
  int list = 0;                        // which list it belongs to (0: positive, 1: negative)
  int64_t y = 0, x = 0, h = 0, w = 0;  // crop of the latent (rows y..y+h, cols x..x+w)
  Tensor context;                      // [1, T, C]
  Tensor mult;                         // [N, h, w, C] weights
  Tensor adm;                          // [1, adm]: the UNet's vector input y (SDXL), or undefined
  double start_percent = 0.0, end_percent = 1.0;
  // Extra UNet input channels for the whole latent, model space [n, H, W, Cc]
  // (inpainting models; inpaint.h), or undefined. Cropped to the area with x.
  Tensor concat;
  // The entry's ControlNet chain (control.h), or null. Entries batch together only when
  // they share it (ComfyUI's can_concat).
  std::shared_ptr<const ControlLink> control;
};

// Resolves areas (percentages → latent pixels), masks (resized to the latent) and the
// feathered weights for a latent of NHWC dims n×H×W×C; for a family whose UNet takes a
// vector input, each entry's y (adm.h; list 1 is the negative one).
std::vector<ResolvedCond> resolve_conds(const std::vector<const Conditioning*>& lists, int64_t n,
                                        int64_t H, int64_t W, int64_t C,
                                        ModelFamily family = ModelFamily::Sd15);

// Called before each UNet batch (interrupts throw from here).
using BeforeModelFn = std::function<void()>;

// One output per list: the blended denoised estimates D(x, σ) [N, H, W, C] for x [N, H, W, C]
// (the sampler's latent, model space).
std::vector<Tensor> calc_cond_batch(const ModelHandle& model,
                                    const std::vector<ResolvedCond>& conds, int lists,
                                    const Tensor& x, float sigma,
                                    const BeforeModelFn& before_model = nullptr);

}  // namespace darkroom::pipeline
