// CONDITIONING: ComfyUI's list of [cond, {options}] pairs. Each entry is one text
// conditioning with its cross-attention context and the options that nodes such as
// ConditioningSetArea, ConditioningSetMask and ConditioningSetTimestepRange attach. The
// sampler runs every entry (on its area, for its timestep range) and blends the results
// as comfy/samplers.py's calc_cond_batch does.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "core/tensor.h"

namespace darkroom::pipeline {

struct ControlLink;  // control.h

// ConditioningSetArea's area in latent pixels (ComfyUI stores (h // 8, w // 8, y // 8,
// x // 8) after dividing the node's pixel values by 8).
struct CondArea {
  int64_t height = 0;
  int64_t width = 0;
  int64_t y = 0;
  int64_t x = 0;
};

// ConditioningSetAreaPercentage: the same as fractions of the latent's size.
struct CondAreaPercent {
  double height = 1.0;
  double width = 1.0;
  double y = 0.0;
  double x = 0.0;
};

// SDXL's size conditioning as CLIPTextEncodeSDXL / CLIPTextEncodeSDXLRefiner attach it
// (pixels); unset values take the sampler's defaults (pipeline/adm.h).
struct SizeCond {
  std::optional<double> width, height;
  std::optional<double> crop_w, crop_h;
  std::optional<double> target_width, target_height;  // SDXL base
  std::optional<double> aesthetic_score;              // SDXL refiner
};

struct CondEntry {
  Tensor context;  // CPU f32 [1, T, C]: cross-attention tokens (T a multiple of 77)
  Tensor pooled;   // CPU f32 [1, P] (CLIP's pooled output) or undefined
  SizeCond size;   // SDXL: the numbers that go into the UNet's y with `pooled`
  std::optional<CondArea> area;
  std::optional<CondAreaPercent> area_percent;
  float strength = 1.0f;  // ConditioningSetArea / SetMask strength
  // ConditioningSetMask: CPU f32 [1, H', W'] at any resolution, and whether the area is
  // cut to the mask's bounding box ("set_cond_area": "mask bounds").
  std::optional<Tensor> mask;
  float mask_strength = 1.0f;
  bool mask_bounds = false;
  // ConditioningSetTimestepRange, as fractions of the schedule (0 = start, 1 = end).
  double start_percent = 0.0;
  double end_percent = 1.0;
  // ControlNetApply / ControlNetApplyAdvanced: the last ControlNet of this entry's chain.
  std::shared_ptr<const ControlLink> control;
  // ControlNetApply's: the sampler gives this chain to the negative too when the negative
  // has none (control_to_uncond in control.h).
  bool control_apply_to_uncond = false;
  // InpaintModelConditioning (inpainting models): the masked image's latent (the VAE's own
  // z, CPU f32 [N, h, w, C]) and the mask (CPU f32 [M, H', W'], any resolution).
  std::optional<Tensor> concat_latent_image;
  std::optional<Tensor> concat_mask;
};

using Conditioning = std::vector<CondEntry>;

}  // namespace darkroom::pipeline
