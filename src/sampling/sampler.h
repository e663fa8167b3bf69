// The contract between samplers and their callers. Sampling is pure math over a
// denoise callback (STYLE.md principle 6): nothing here knows of models or devices.
//
// Conventions (k-diffusion's, which ComfyUI follows):
//  - x is the noisy latent in "sigma space": x = x0 + σ·ε, a CPU f32 tensor of any shape
//    (darkroom latents are NHWC [N, H, W, C]); every sampler is elementwise over it.
//  - denoise(x, σ) returns D(x, σ), the model's estimate of x0 (CFG already applied).
//  - sigmas are a decreasing schedule σ_0 > … > σ_n, usually ending in 0; a run makes
//    n steps and returns the final latent.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "core/tensor.h"
#include "sampling/torch_rng.h"

namespace darkroom::sampling {

// D(x, σ): x [N, ...] -> denoised estimate, same shape.
using Denoiser = std::function<Tensor(const Tensor& x, float sigma)>;
// Fresh unit Gaussian noise of the latent's shape for the step from σ to σ_next.
using NoiseSampler = std::function<Tensor(float sigma, float sigma_next)>;
// Called once per step after the first model call: step index, x, denoised.
using StepCallback = std::function<void(int step, const Tensor& x, const Tensor& denoised)>;
// EPS-style noise_scaling(σ, noise, latent) = σ·noise + latent by default (used by lcm).
using NoiseScaling = std::function<Tensor(float sigma, const Tensor& noise, const Tensor& x)>;

struct SamplerOptions {
  // Ancestral / SDE noise amount; ComfyUI's defaults.
  double eta = 1.0;
  double s_noise = 1.0;
  // Where stochastic samplers get their noise. Empty: the sampler's default, seeded
  // from `seed` (see registry.h for which default each sampler has).
  NoiseSampler noise_sampler;
  uint64_t seed = 0;
  // Which of torch's CPU randn kernels the default noise reproduces (torch_rng.h).
  BoxMuller box_muller = BoxMuller::Avx2;
  StepCallback callback;
  NoiseScaling noise_scaling;
};

using SamplerFn = Tensor (*)(const Denoiser& denoise, const Tensor& x,
                             std::span<const float> sigmas, const SamplerOptions& options);

}  // namespace darkroom::sampling
