// DPM-Solver++(2S) ancestral: a two-stage exponential-integrator step in t = -log σ
// down to σ_down, then fresh noise of size σ_up.
#include "sampling/samplers/common.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {

Tensor sample_dpmpp_2s_ancestral(const Denoiser& denoise, const Tensor& x_in,
                                 std::span<const float> sigmas, const SamplerOptions& options) {
  const int steps = detail::check_args(x_in, sigmas, "dpmpp_2s_ancestral");
  const NoiseSampler noise = detail::noise_or_default(options, x_in);
  Tensor x = clone(x_in);
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i], sigma_next = sigmas[i + 1];
    Tensor denoised = detail::denoise_checked(denoise, x, sigma);
    const auto [down, up] = detail::ancestral_step(sigma, sigma_next, options.eta);
    detail::report(options, i, x, denoised);
    if (down == 0) {
      const Tensor d = to_d(x, sigma, denoised);
      x = add_scaled(x, static_cast<float>(down - sigma), d);
    } else {
      const double t = -std::log(static_cast<double>(sigma)), t_next = -std::log(down);
      const double h = t_next - t;
      const double s = t + 0.5 * h;
      const double sigma_s = std::exp(-s);
      // x_2 = (σ_s/σ)·x - expm1(-h/2)·D
      const Tensor x_2 = lincomb(static_cast<float>(sigma_s / sigma), x,
                                 static_cast<float>(-std::expm1(-0.5 * h)), denoised);
      const Tensor denoised_2 = detail::denoise_checked(denoise, x_2, static_cast<float>(sigma_s));
      x = lincomb(static_cast<float>(std::exp(-t_next) / sigma), x,
                  static_cast<float>(-std::expm1(-h)), denoised_2);
    }
    if (sigma_next > 0)
      x = add_scaled(x, static_cast<float>(options.s_noise * up), noise(sigma, sigma_next));
  }
  return x;
}

}  // namespace darkroom::sampling
