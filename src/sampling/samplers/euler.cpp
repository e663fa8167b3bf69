// Euler (Karras et al. 2022, Algorithm 2 without churn): x += (x - D)/σ · (σ_next - σ).
// ComfyUI's "ddim" is this sampler too (registry.h).
#include "sampling/samplers/common.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {

Tensor sample_euler(const Denoiser& denoise, const Tensor& x_in, std::span<const float> sigmas,
                    const SamplerOptions& options) {
  const int steps = detail::check_args(x_in, sigmas, "euler");
  Tensor x = clone(x_in);
  for (int i = 0; i < steps; ++i) {
    Tensor denoised = detail::denoise_checked(denoise, x, sigmas[i]);
    detail::report(options, i, x, denoised);
    const Tensor d = to_d(x, sigmas[i], denoised);
    x = add_scaled(x, sigmas[i + 1] - sigmas[i], d);
  }
  return x;
}

}  // namespace darkroom::sampling
