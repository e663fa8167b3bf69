// ComfyUI's common_ksampler (nodes.py) → comfy.sample.sample → KSampler / CFGGuider, for
// the KSampler and KSamplerAdvanced nodes:
//
//   noise     prepare_noise(seed, batch_index) (torch.randn-exact), or zeros (add_noise off)
//   sigmas    the scheduler's, cut by denoise (KSampler.set_steps), then by last_step
//             (its last sigma set to 0 with force_full_denoise) and start_step
//   latent    z·scale (process_latent_in; an all-zero latent is left as is)
//   x_0       noise_scaling(σ_0, noise, latent) (variance preserving at σ_max)
//   D(x, σ)   calc_cond_batch of positive and negative (cond_batch.h), combined by CFG
//             (uncond skipped when cfg == 1); with a noise mask, x outside the mask is
//             replaced by the re-noised input and D by the input (KSamplerX0Inpaint);
//             an inpainting model (9-channel UNet) also takes each entry's mask and
//             masked-image latent after x (inpaint.h)
//   result    sampler(D, x_0, sigmas) / scale (process_latent_out)
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/conditioning.h"
#include "pipeline/latent.h"
#include "pipeline/model_handles.h"

namespace darkroom::pipeline {

struct KSamplerParams {
  uint64_t seed = 0;
  int steps = 20;
  double cfg = 8.0;
  std::string sampler = "euler";
  std::string scheduler = "normal";
  double denoise = 1.0;
  // KSamplerAdvanced:
  bool add_noise = true;
  std::optional<int> start_step;
  std::optional<int> last_step;
  bool force_full_denoise = false;
  // SamplerCustom: these sigmas (descending, ending in 0 for a full denoise) instead of
  // the scheduler's; steps, scheduler and denoise are then not used.
  std::optional<std::vector<float>> sigmas;
};

struct KSamplerHooks {
  // After each step: step (0-based), the step count, and the x0 estimate (model space,
  // [N, h, w, C]) for previews.
  std::function<void(int step, int steps, const Tensor& x0)> on_step;
  // Before every UNet call; throws to stop (the workflow's interrupt).
  std::function<void()> check_interrupt;
};

// The sampled latent; noise_mask and batch_index are carried over from `latent`.
Latent ksample(const ModelHandle& model, const Conditioning& positive, const Conditioning& negative,
               const Latent& latent, const KSamplerParams& p, const KSamplerHooks& hooks = {});

}  // namespace darkroom::pipeline
