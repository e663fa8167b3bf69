// Pieces shared by the sampler files.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>

#include "sampling/brownian_tree.h"
#include "sampling/noise.h"
#include "sampling/sampler.h"
#include "sampling/tensor_math.h"

namespace darkroom::sampling::detail {

// k-diffusion's get_ancestral_step: the σ to step down to deterministically and the
// amount of fresh noise that brings the variance back up to σ_to.
inline std::pair<double, double> ancestral_step(double sigma_from, double sigma_to, double eta) {
  if (eta == 0) return {sigma_to, 0.0};
  const double up =
      std::min(sigma_to, eta * std::sqrt(sigma_to * sigma_to *
                                         (sigma_from * sigma_from - sigma_to * sigma_to) /
                                         (sigma_from * sigma_from)));
  const double down = std::sqrt(sigma_to * sigma_to - up * up);
  return {down, up};
}

// The caller's noise sampler, or ComfyUI's default one for a CPU latent.
inline NoiseSampler noise_or_default(const SamplerOptions& options, const Tensor& x) {
  if (options.noise_sampler) return options.noise_sampler;
  return torch_noise_sampler(x.shape(), options.seed, options.box_muller);
}

// The caller's noise sampler, or ComfyUI's default for the SDE samplers: a Brownian tree
// over [smallest non-zero sigma, largest sigma] seeded with the seed itself.
inline NoiseSampler brownian_or_default(const SamplerOptions& options, const Tensor& x,
                                        std::span<const float> sigmas) {
  if (options.noise_sampler) return options.noise_sampler;
  float lo = INFINITY, hi = 0;
  for (float s : sigmas) {
    if (s > 0) lo = std::min(lo, s);
    hi = std::max(hi, s);
  }
  return brownian_tree_noise_sampler(x.shape(), lo, hi, options.seed, options.box_muller);
}

// Calls the denoiser and checks what it returns.
inline Tensor denoise_checked(const Denoiser& denoise, const Tensor& x, float sigma) {
  Tensor out = denoise(x, sigma);
  check_same_shape(out, x, "denoise");
  return out;
}

inline void report(const SamplerOptions& options, int step, const Tensor& x,
                   const Tensor& denoised) {
  if (options.callback) options.callback(step, x, denoised);
}

// Common argument checks; returns the step count.
inline int check_args(const Tensor& x, std::span<const float> sigmas, const char* where) {
  check_f32_cpu(x, where);
  for (float s : sigmas)
    DR_CHECK(std::isfinite(s) && s >= 0, where, "sigmas must be finite and >= 0");
  return std::max(0, static_cast<int>(sigmas.size()) - 1);
}

}  // namespace darkroom::sampling::detail
