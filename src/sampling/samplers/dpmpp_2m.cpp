// DPM-Solver++(2M) and its SDE variant (k-diffusion / ComfyUI), multistep in
// t = -log σ using the previous step's denoised estimate.
//
// dpmpp_2m_sde's default noise is ComfyUI's: a torchsde Brownian tree seeded with the
// sampler seed (brownian_tree.h), queried at the schedule's own sigmas.
#include "sampling/samplers/common.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {

Tensor sample_dpmpp_2m(const Denoiser& denoise, const Tensor& x_in, std::span<const float> sigmas,
                       const SamplerOptions& options) {
  const int steps = detail::check_args(x_in, sigmas, "dpmpp_2m");
  Tensor x = clone(x_in);
  Tensor old_denoised;
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i], sigma_next = sigmas[i + 1];
    Tensor denoised = detail::denoise_checked(denoise, x, sigma);
    detail::report(options, i, x, denoised);
    if (sigma_next == 0) {
      x = denoised;  // (σ_next/σ)·x - expm1(-∞)·D
    } else {
      const double t = -std::log(static_cast<double>(sigma));
      const double t_next = -std::log(static_cast<double>(sigma_next));
      const double h = t_next - t;
      const auto a = static_cast<float>(static_cast<double>(sigma_next) / sigma);
      const auto b = static_cast<float>(-std::expm1(-h));
      if (!old_denoised.defined()) {
        x = lincomb(a, x, b, denoised);
      } else {
        const double h_last = t + std::log(static_cast<double>(sigmas[i - 1]));
        const double r = h_last / h;
        const Tensor denoised_d = lincomb(static_cast<float>(1 + 1 / (2 * r)), denoised,
                                          static_cast<float>(-(1 / (2 * r))), old_denoised);
        x = lincomb(a, x, b, denoised_d);
      }
    }
    old_denoised = denoised;
  }
  return x;
}

namespace {

enum class SolverType { Midpoint, Heun };

Tensor dpmpp_2m_sde_impl(const Denoiser& denoise, const Tensor& x_in, std::span<const float> sigmas,
                         const SamplerOptions& options, SolverType solver, const char* name) {
  const int steps = detail::check_args(x_in, sigmas, name);
  if (steps == 0) return clone(x_in);
  const NoiseSampler noise = detail::brownian_or_default(options, x_in, sigmas);
  const double eta = options.eta, s_noise = options.s_noise;
  Tensor x = clone(x_in);
  Tensor old_denoised;
  double h = 0, h_last = 0;
  for (int i = 0; i < steps; ++i) {
    const float sigma = sigmas[i], sigma_next = sigmas[i + 1];
    Tensor denoised = detail::denoise_checked(denoise, x, sigma);
    detail::report(options, i, x, denoised);
    if (sigma_next == 0) {
      x = denoised;
    } else {
      const double lambda_s = -std::log(static_cast<double>(sigma));
      const double lambda_t = -std::log(static_cast<double>(sigma_next));
      h = lambda_t - lambda_s;
      const double h_eta = h * (eta + 1);
      const double alpha_t = sigma_next * std::exp(lambda_t);
      const double phi = -std::expm1(-h_eta);  // 1 - e^{-h(1+η)}
      x = lincomb(static_cast<float>(static_cast<double>(sigma_next) / sigma * std::exp(-h * eta)),
                  x, static_cast<float>(alpha_t * phi), denoised);
      if (old_denoised.defined()) {
        const double r = h_last / h;
        const double coef = solver == SolverType::Heun ? alpha_t * (phi / -h_eta + 1) * (1 / r)
                                                       : 0.5 * alpha_t * phi * (1 / r);
        const auto c = static_cast<float>(coef);
        x = map3(x, denoised, old_denoised,
                 [c](float xv, float dv, float ov) { return xv + c * (dv - ov); });
      }
      if (eta > 0 && s_noise > 0) {
        const double scale = sigma_next * std::sqrt(-std::expm1(-2 * h * eta)) * s_noise;
        x = add_scaled(x, static_cast<float>(scale), noise(sigma, sigma_next));
      }
    }
    old_denoised = denoised;
    h_last = h;
  }
  return x;
}

}  // namespace

Tensor sample_dpmpp_2m_sde(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                           const SamplerOptions& options) {
  return dpmpp_2m_sde_impl(denoise, x, sigmas, options, SolverType::Midpoint, "dpmpp_2m_sde");
}

Tensor sample_dpmpp_2m_sde_heun(const Denoiser& denoise, const Tensor& x,
                                std::span<const float> sigmas, const SamplerOptions& options) {
  return dpmpp_2m_sde_impl(denoise, x, sigmas, options, SolverType::Heun, "dpmpp_2m_sde_heun");
}

}  // namespace darkroom::sampling
