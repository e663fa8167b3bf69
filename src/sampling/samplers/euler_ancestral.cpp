// Euler ancestral: an Euler step down to σ_down, then fresh noise of size σ_up.
#include "sampling/samplers/common.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {

Tensor sample_euler_ancestral(const Denoiser& denoise, const Tensor& x_in,
                              std::span<const float> sigmas, const SamplerOptions& options) {
  const int steps = detail::check_args(x_in, sigmas, "euler_ancestral");
  const NoiseSampler noise = detail::noise_or_default(options, x_in);
  Tensor x = clone(x_in);
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i], sigma_next = sigmas[i + 1];
    Tensor denoised = detail::denoise_checked(denoise, x, sigma);
    const auto [down, up] = detail::ancestral_step(sigma, sigma_next, options.eta);
    detail::report(options, i, x, denoised);
    if (down == 0) {
      x = denoised;
      continue;
    }
    const Tensor d = to_d(x, sigma, denoised);
    const float dt = static_cast<float>(down - sigma);
    const float noise_scale = static_cast<float>(options.s_noise * up);
    const Tensor n = noise(sigma, sigma_next);
    x = map3(x, d, n, [dt, noise_scale](float xv, float dv, float nv) {
      return (xv + dv * dt) + nv * noise_scale;
    });
  }
  return x;
}

}  // namespace darkroom::sampling
