// DPM-Solver-2-like midpoint samplers (k-diffusion): the slope is taken at the
// geometric midpoint σ_mid = exp(lerp(log σ, log σ_to, ½)).
//   dpm_2:           deterministic, σ_to = σ_next
//   dpm_2_ancestral: σ_to = σ_down, then fresh noise of size σ_up
// ComfyUI drops the penultimate sigma for both (registry.h).
#include "sampling/samplers/common.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {
namespace {

// torch.lerp(a, b, 0.5) then exp.
double geometric_mid(double sigma, double sigma_to) {
  const double a = std::log(sigma), b = std::log(sigma_to);
  return std::exp(b - (b - a) * 0.5);
}

// x + D(x_2, σ_mid)'s slope · (σ_to - σ), with x_2 = x + d·(σ_mid - σ).
Tensor midpoint_step(const Denoiser& denoise, const Tensor& x, const Tensor& d, float sigma,
                     float sigma_to) {
  const auto sigma_mid = static_cast<float>(geometric_mid(sigma, sigma_to));
  const Tensor x_2 = add_scaled(x, sigma_mid - sigma, d);
  const Tensor denoised_2 = detail::denoise_checked(denoise, x_2, sigma_mid);
  const Tensor d_2 = to_d(x_2, sigma_mid, denoised_2);
  return add_scaled(x, sigma_to - sigma, d_2);
}

}  // namespace

Tensor sample_dpm_2(const Denoiser& denoise, const Tensor& x_in, std::span<const float> sigmas,
                    const SamplerOptions& options) {
  const int steps = detail::check_args(x_in, sigmas, "dpm_2");
  Tensor x = clone(x_in);
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i], sigma_next = sigmas[i + 1];
    Tensor denoised = detail::denoise_checked(denoise, x, sigma);
    const Tensor d = to_d(x, sigma, denoised);
    detail::report(options, i, x, denoised);
    x = sigma_next == 0 ? add_scaled(x, sigma_next - sigma, d)
                        : midpoint_step(denoise, x, d, sigma, sigma_next);
  }
  return x;
}

Tensor sample_dpm_2_ancestral(const Denoiser& denoise, const Tensor& x_in,
                              std::span<const float> sigmas, const SamplerOptions& options) {
  const int steps = detail::check_args(x_in, sigmas, "dpm_2_ancestral");
  const NoiseSampler noise = detail::noise_or_default(options, x_in);
  Tensor x = clone(x_in);
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i], sigma_next = sigmas[i + 1];
    Tensor denoised = detail::denoise_checked(denoise, x, sigma);
    const auto [down, up] = detail::ancestral_step(sigma, sigma_next, options.eta);
    detail::report(options, i, x, denoised);
    const Tensor d = to_d(x, sigma, denoised);
    if (down == 0) {
      x = add_scaled(x, static_cast<float>(down - sigma), d);
      continue;
    }
    x = midpoint_step(denoise, x, d, sigma, static_cast<float>(down));
    x = add_scaled(x, static_cast<float>(options.s_noise * up), noise(sigma, sigma_next));
  }
  return x;
}

}  // namespace darkroom::sampling
