// LCM (latent consistency model) sampling: jump to the denoised estimate, then re-noise
// it to σ_next with fresh noise (noise_scaling, σ·noise + x for ε/v models).
#include "sampling/samplers/common.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {

Tensor sample_lcm(const Denoiser& denoise, const Tensor& x_in, std::span<const float> sigmas,
                  const SamplerOptions& options) {
  const int steps = detail::check_args(x_in, sigmas, "lcm");
  const NoiseSampler noise = detail::noise_or_default(options, x_in);
  Tensor x = clone(x_in);
  for (int i = 0; i < steps; ++i) {
    Tensor denoised = detail::denoise_checked(denoise, x, sigmas[i]);
    detail::report(options, i, x, denoised);
    x = denoised;
    if (sigmas[i + 1] > 0) {
      Tensor n = noise(sigmas[i], sigmas[i + 1]);
      if (options.s_noise != 1.0) {
        const auto s = static_cast<float>(options.s_noise);
        n = map1(n, [s](float v) { return v * s; });
      }
      if (options.noise_scaling) {
        x = options.noise_scaling(sigmas[i + 1], n, x);
      } else {
        const float sigma_next = sigmas[i + 1];
        x = map2(n, x, [sigma_next](float nv, float xv) { return nv * sigma_next + xv; });
      }
    }
  }
  return x;
}

}  // namespace darkroom::sampling
