// DPM-Solver++ (stochastic, k-diffusion's sample_dpmpp_sde with r = ½) in ComfyUI's
// half-log-SNR form for ε/v models: λ = -log σ, α = 1.
//
// Noise: ComfyUI's default, a torchsde Brownian tree seeded with the sampler seed
// (brownian_tree.h). The intermediate σ_s1 at which it is queried is computed in float32
// like ComfyUI's tensors; torch may evaluate that log/exp with SLEEF or MKL, which can
// differ from the C library in the last bit, so the noise matches ComfyUI's to float
// rounding (the query is rounded to 6 decimals first, which usually absorbs it).
#include <tuple>

#include "sampling/samplers/common.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {

Tensor sample_dpmpp_sde(const Denoiser& denoise, const Tensor& x_in, std::span<const float> sigmas,
                        const SamplerOptions& options) {
  const int steps = detail::check_args(x_in, sigmas, "dpmpp_sde");
  if (steps == 0) return clone(x_in);
  const NoiseSampler noise = detail::brownian_or_default(options, x_in, sigmas);
  constexpr double r = 0.5;
  const double eta = options.eta, s_noise = options.s_noise;
  const bool add_noise = eta > 0 && s_noise > 0;
  Tensor x = clone(x_in);
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i], sigma_next = sigmas[i + 1];
    Tensor denoised = detail::denoise_checked(denoise, x, sigma);
    detail::report(options, i, x, denoised);
    if (sigma_next == 0) {
      x = denoised;
      continue;
    }
    // λ = -log σ and the midpoint σ_s1, as float32 tensors in ComfyUI.
    const float lambda_s_f = -std::log(sigma), lambda_t_f = -std::log(sigma_next);
    const float lambda_s1_f = lambda_s_f + static_cast<float>(r) * (lambda_t_f - lambda_s_f);
    const float sigma_s1_f = std::exp(-lambda_s1_f);
    const double lambda_s = lambda_s_f, lambda_t = lambda_t_f, lambda_s1 = lambda_s1_f;
    const double fac = 1 / (2 * r);
    const double sigma_s1 = sigma_s1_f;
    const double alpha_s = sigma * std::exp(lambda_s);
    const double alpha_s1 = sigma_s1 * std::exp(lambda_s1);
    const double alpha_t = sigma_next * std::exp(lambda_t);

    // Step 1: to σ_s1 (ancestrally), evaluate there.
    auto [sd, su] = detail::ancestral_step(std::exp(-lambda_s), std::exp(-lambda_s1), eta);
    double h_ = -std::log(sd) - lambda_s;
    Tensor x_2 = lincomb(static_cast<float>(alpha_s1 / alpha_s * std::exp(-h_)), x,
                         static_cast<float>(-alpha_s1 * std::expm1(-h_)), denoised);
    if (add_noise)
      x_2 = add_scaled(x_2, static_cast<float>(alpha_s1 * s_noise * su), noise(sigma, sigma_s1_f));
    const Tensor denoised_2 = detail::denoise_checked(denoise, x_2, sigma_s1_f);

    // Step 2: to σ_next with the blended estimate.
    std::tie(sd, su) = detail::ancestral_step(std::exp(-lambda_s), std::exp(-lambda_t), eta);
    h_ = -std::log(sd) - lambda_s;
    const Tensor denoised_d =
        lincomb(static_cast<float>(1 - fac), denoised, static_cast<float>(fac), denoised_2);
    x = lincomb(static_cast<float>(alpha_t / alpha_s * std::exp(-h_)), x,
                static_cast<float>(-alpha_t * std::expm1(-h_)), denoised_d);
    if (add_noise)
      x = add_scaled(x, static_cast<float>(alpha_t * s_noise * su), noise(sigma, sigma_next));
  }
  return x;
}

}  // namespace darkroom::sampling
