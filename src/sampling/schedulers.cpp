// The scheduler functions of comfy/samplers.py and k-diffusion (get_sigmas_karras,
// get_sigmas_exponential), computed in float32 where ComfyUI works on float32 tensors.
#include <algorithm>
#include <boost/math/special_functions/beta.hpp>
#include <cmath>

#include "core/error.h"
#include "sampling/schedule.h"

namespace darkroom::sampling {

std::vector<float> karras_sigmas(int n, double sigma_min, double sigma_max, double rho) {
  DR_CHECK(n >= 1, "karras", "need at least 1 step");
  const std::vector<float> ramp = linspace_f32(0.0f, 1.0f, n);
  const double min_inv_rho = std::pow(sigma_min, 1.0 / rho);
  const double max_inv_rho = std::pow(sigma_max, 1.0 / rho);
  std::vector<float> out;
  for (float r : ramp) {
    const float base =
        static_cast<float>(max_inv_rho) + r * static_cast<float>(min_inv_rho - max_inv_rho);
    out.push_back(static_cast<float>(std::pow(static_cast<double>(base), rho)));
  }
  out.push_back(0.0f);
  return out;
}

std::vector<float> exponential_sigmas(int n, double sigma_min, double sigma_max) {
  DR_CHECK(n >= 1, "exponential", "need at least 1 step");
  std::vector<float> out = linspace_f32(static_cast<float>(std::log(sigma_max)),
                                        static_cast<float>(std::log(sigma_min)), n);
  for (float& v : out) v = std::exp(v);
  out.push_back(0.0f);
  return out;
}

namespace {

// normal_scheduler(sgm=...): timesteps evenly spaced from t(σ_max) to t(σ_min).
std::vector<float> normal_impl(const DiscreteSchedule& s, int steps, bool sgm) {
  const float start = s.timestep(s.sigma_max());
  const float end = s.timestep(s.sigma_min());
  bool append_zero = true;
  std::vector<float> ts;
  if (sgm) {
    ts = linspace_f32(start, end, steps + 1);
    ts.pop_back();
  } else {
    // A schedule whose last sigma is ~0 already ends at zero.
    if (std::fabs(s.sigma(end)) <= 1e-5f) {
      steps += 1;
      append_zero = false;
    }
    ts = linspace_f32(start, end, steps);
  }
  std::vector<float> out;
  for (float t : ts) out.push_back(s.sigma(t));
  if (append_zero) out.push_back(0.0f);
  return out;
}

}  // namespace

std::vector<float> normal_sigmas(const DiscreteSchedule& s, int steps) {
  return normal_impl(s, steps, false);
}

std::vector<float> sgm_uniform_sigmas(const DiscreteSchedule& s, int steps) {
  return normal_impl(s, steps, true);
}

std::vector<float> simple_sigmas(const DiscreteSchedule& s, int steps) {
  const auto table = s.sigmas();
  const double ss = static_cast<double>(table.size()) / steps;
  std::vector<float> out;
  for (int x = 0; x < steps; ++x) {
    const auto back = static_cast<size_t>(x * ss);  // int() truncates
    out.push_back(table[table.size() - 1 - back]);
  }
  out.push_back(0.0f);
  return out;
}

std::vector<float> ddim_uniform_sigmas(const DiscreteSchedule& s, int steps) {
  const auto table = s.sigmas();
  std::vector<float> out;
  size_t x = 1;
  // A table that starts at ~0 provides its own final zero.
  if (std::fabs(table[x]) <= 1e-5f) {
    steps += 1;
  } else {
    out.push_back(0.0f);
  }
  const size_t stride = std::max<size_t>(table.size() / static_cast<size_t>(steps), 1);
  for (; x < table.size(); x += stride) out.push_back(table[x]);
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<float> beta_sigmas(const DiscreteSchedule& s, int steps, double alpha, double beta) {
  const auto table = s.sigmas();
  const double total = static_cast<double>(table.size() - 1);
  const double step = 1.0 / steps;  // numpy.linspace(0, 1, steps, endpoint=False)
  std::vector<float> out;
  double last_t = -1;
  for (int i = 0; i < steps; ++i) {
    const double q = 1.0 - (static_cast<double>(i) * step + 0.0);
    const double t = std::nearbyint(boost::math::ibeta_inv(alpha, beta, q) * total);
    if (t != last_t) out.push_back(table[static_cast<size_t>(t)]);
    last_t = t;
  }
  out.push_back(0.0f);
  return out;
}

std::vector<float> linear_quadratic_sigmas(const DiscreteSchedule& s, int steps,
                                           double threshold_noise, int linear_steps) {
  std::vector<double> schedule;
  if (steps == 1) {
    schedule = {1.0, 0.0};
  } else {
    if (linear_steps < 0) linear_steps = steps / 2;
    for (int i = 0; i < linear_steps; ++i) schedule.push_back(i * threshold_noise / linear_steps);
    const double step_diff = linear_steps - threshold_noise * steps;
    const int quadratic_steps = steps - linear_steps;
    const double quadratic_coef =
        step_diff / (linear_steps * static_cast<double>(quadratic_steps) * quadratic_steps);
    const double linear_coef =
        threshold_noise / linear_steps -
        2 * step_diff / (static_cast<double>(quadratic_steps) * quadratic_steps);
    const double constant = quadratic_coef * (static_cast<double>(linear_steps) * linear_steps);
    for (int i = linear_steps; i < steps; ++i)
      schedule.push_back(quadratic_coef * (static_cast<double>(i) * i) + linear_coef * i +
                         constant);
    schedule.push_back(1.0);
    for (double& v : schedule) v = 1.0 - v;
  }
  std::vector<float> out;
  for (double v : schedule) out.push_back(static_cast<float>(v) * s.sigma_max());
  return out;
}

std::vector<float> kl_optimal_sigmas(int n, double sigma_min, double sigma_max) {
  DR_CHECK(n >= 2, "kl_optimal", "need at least 2 steps, got ", n);
  const float atan_min = static_cast<float>(std::atan(sigma_min));
  const float atan_max = static_cast<float>(std::atan(sigma_max));
  std::vector<float> out;
  for (int i = 0; i < n; ++i) {
    const float w = static_cast<float>(i) / static_cast<float>(n - 1);
    out.push_back(std::tan(w * atan_min + (1.0f - w) * atan_max));
  }
  out.push_back(0.0f);
  return out;
}

}  // namespace darkroom::sampling
