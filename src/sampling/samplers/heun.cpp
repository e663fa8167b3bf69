// Heun (Karras et al. 2022, Algorithm 2 without churn): an Euler step, then the average
// of the slopes at both ends; the last step (to σ = 0) is plain Euler.
#include "sampling/samplers/common.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {

Tensor sample_heun(const Denoiser& denoise, const Tensor& x_in, std::span<const float> sigmas,
                   const SamplerOptions& options) {
  const int steps = detail::check_args(x_in, sigmas, "heun");
  Tensor x = clone(x_in);
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i], sigma_next = sigmas[i + 1];
    Tensor denoised = detail::denoise_checked(denoise, x, sigma);
    const Tensor d = to_d(x, sigma, denoised);
    detail::report(options, i, x, denoised);
    const float dt = sigma_next - sigma;
    if (sigma_next == 0) {
      x = add_scaled(x, dt, d);
      continue;
    }
    const Tensor x_2 = add_scaled(x, dt, d);
    const Tensor denoised_2 = detail::denoise_checked(denoise, x_2, sigma_next);
    const Tensor d_2 = to_d(x_2, sigma_next, denoised_2);
    x = map3(x, d, d_2, [dt](float xv, float a, float b) { return xv + ((a + b) / 2.0f) * dt; });
  }
  return x;
}

}  // namespace darkroom::sampling
