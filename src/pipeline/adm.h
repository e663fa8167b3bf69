// The UNet's vector input y for SDXL-family models, built per conditioning entry as
// ComfyUI's SDXL.encode_adm / SDXLRefiner.encode_adm (comfy/model_base.py) build it:
//
//   SDXL     y [1, 2816] = pooled [1, 1280] ‖ emb(height) emb(width) emb(crop_h) emb(crop_w)
//                          emb(target_height) emb(target_width)
//   refiner  y [1, 2560] = pooled [1, 1280] ‖ emb(height) emb(width) emb(crop_h) emb(crop_w)
//                          emb(aesthetic_score)
//
// emb is ldm's 256-wide sinusoidal timestep embedding (models/unet.h, sdxl_vector_y). What
// an entry does not set takes the sampler's defaults (comfy/samplers.py encode_model_conds):
// width and height = the latent's size × 8 (ComfyUI's fixed 8, whatever the VAE), crop 0,
// target = width / height, aesthetic score 6, or 2.5 for entries of the negative list
// (prompt_type "negative").
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "pipeline/conditioning.h"
#include "pipeline/model_family.h"

namespace darkroom::pipeline {

// Whether a family's UNet takes y.
bool family_has_adm(ModelFamily family);

// y [1, adm] (CPU f32) for `entry` in a latent of latent_h × latent_w latent pixels;
// `negative`: the entry belongs to the negative list. Throws "[sampler] ..." when the
// entry has no pooled output (a conditioning from another family's text encoder).
Tensor encode_adm(ModelFamily family, const CondEntry& entry, bool negative, int64_t latent_h,
                  int64_t latent_w);

}  // namespace darkroom::pipeline
