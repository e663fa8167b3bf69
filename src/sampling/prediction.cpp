// Prediction-type wrappers (eps, v, x0, lcm, img_to_img) around a network.
#include "sampling/prediction.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "sampling/tensor_math.h"

namespace darkroom::sampling {

Tensor calculate_input(float sigma, const Tensor& x) {
  check_f32_cpu(x, "calculate_input");
  const float denom = std::sqrt(sigma * sigma + 1.0f);
  return map1(x, [denom](float v) { return v / denom; });
}

Tensor calculate_input(Prediction prediction, float sigma, const Tensor& x) {
  if (prediction == Prediction::ImgToImg) {
    check_f32_cpu(x, "calculate_input");
    return clone(x);
  }
  return calculate_input(sigma, x);
}

Tensor calculate_denoised(Prediction prediction, float sigma, const Tensor& model_output,
                          const Tensor& model_input, float timestep) {
  check_same_shape(model_output, model_input, "calculate_denoised");
  switch (prediction) {
    case Prediction::Eps:
      return map2(model_input, model_output, [sigma](float x, float o) { return x - o * sigma; });
    case Prediction::V: {
      const float s2 = sigma * sigma + 1.0f;
      const float c_skip = 1.0f / s2;
      const float c_out = sigma / std::sqrt(s2);
      return map2(model_input, model_output,
                  [c_skip, c_out](float x, float o) { return x * c_skip - o * c_out; });
    }
    case Prediction::X0:
    case Prediction::ImgToImg:
      return clone(model_output);
    case Prediction::Lcm: {
      DR_CHECK(timestep >= 0.0f, "calculate_denoised",
               "the lcm prediction needs the timestep t(σ)");
      // float32 throughout, as torch evaluates LCM.calculate_denoised.
      const float sigma_data = 0.5f;
      const float scaled = timestep * 10.0f;  // timestep_scaling
      const float denom = scaled * scaled + sigma_data * sigma_data;
      const float c_skip = sigma_data * sigma_data / denom;
      const float c_out = scaled / std::sqrt(denom);
      return map2(model_input, model_output, [sigma, c_skip, c_out](float x, float o) {
        const float x0 = x - o * sigma;
        return c_out * x0 + c_skip * x;
      });
    }
  }
  DR_ASSERT(false, "unknown prediction type");
  return {};
}

Tensor noise_scaling(float sigma, const Tensor& noise, const Tensor& latent, bool max_denoise) {
  const float scale = max_denoise ? std::sqrt(1.0f + sigma * sigma) : sigma;
  return map2(noise, latent, [scale](float n, float l) { return n * scale + l; });
}

bool is_max_denoise(const DiscreteSchedule& schedule, float first_sigma) {
  const double max_sigma = schedule.sigma_max();
  const double sigma = first_sigma;
  // math.isclose(max_sigma, sigma, rel_tol=1e-05) or sigma > max_sigma
  const bool close =
      std::fabs(max_sigma - sigma) <= 1e-5 * std::max(std::fabs(max_sigma), std::fabs(sigma));
  return close || sigma > max_sigma;
}

Denoiser make_denoiser(Prediction prediction, NetworkFn network, const DiscreteSchedule& schedule) {
  return [prediction, network = std::move(network), schedule](const Tensor& x, float sigma) {
    const float t = schedule.timestep(sigma);
    Tensor out = network(calculate_input(prediction, sigma, x), t);
    return calculate_denoised(prediction, sigma, out, x, t);
  };
}

}  // namespace darkroom::sampling
