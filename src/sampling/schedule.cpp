// DiscreteSchedule (ModelSamplingDiscrete), the scheduler table and torch's linspace.
#include "sampling/schedule.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace darkroom::sampling {

DiscreteSchedule DiscreteSchedule::scaled_linear(double linear_start, double linear_end,
                                                 int timesteps) {
  DR_CHECK(timesteps >= 2, "schedule", "need at least 2 timesteps, got ", timesteps);
  DR_CHECK(linear_start > 0 && linear_end > 0, "schedule", "betas must be positive");
  const std::vector<double> root =
      linspace_f64(std::sqrt(linear_start), std::sqrt(linear_end), timesteps);
  std::vector<double> sigmas(root.size());
  double alphas_cumprod = 1.0;
  for (size_t t = 0; t < root.size(); ++t) {
    const double beta = root[t] * root[t];
    alphas_cumprod *= 1.0 - beta;
    sigmas[t] = std::sqrt((1.0 - alphas_cumprod) / alphas_cumprod);
  }
  return DiscreteSchedule(sigmas);
}

DiscreteSchedule::DiscreteSchedule(std::span<const double> sigmas) {
  DR_CHECK(sigmas.size() >= 2, "schedule", "need at least 2 sigmas");
  for (double s : sigmas) {
    DR_CHECK(s > 0 && std::isfinite(s), "schedule", "sigmas must be positive and finite");
    sigmas_.push_back(static_cast<float>(s));
    log_sigmas_.push_back(static_cast<float>(std::log(s)));
  }
}

DiscreteSchedule DiscreteSchedule::distilled(const DiscreteSchedule& full, int original_timesteps) {
  const int total = full.num_timesteps();
  DR_CHECK(original_timesteps >= 2 && original_timesteps <= total, "schedule",
           "original_timesteps must be in [2, ", total, "], got ", original_timesteps);
  DR_CHECK(full.skip_steps_ == 1, "schedule", "the schedule is already distilled");
  const int skip = total / original_timesteps;
  // The float32 table values, as ComfyUI copies them out of its float sigmas.
  std::vector<double> valid(static_cast<size_t>(original_timesteps));
  for (int x = 0; x < original_timesteps; ++x)
    valid[static_cast<size_t>(original_timesteps - 1 - x)] =
        full.sigmas_[static_cast<size_t>(total - 1 - x * skip)];
  DiscreteSchedule out(valid);
  out.skip_steps_ = skip;
  return out;
}

float DiscreteSchedule::timestep(float sigma) const {
  const float log_sigma = std::log(sigma);
  size_t best = 0;
  float best_dist = std::fabs(log_sigma - log_sigmas_[0]);
  for (size_t t = 1; t < log_sigmas_.size(); ++t) {
    const float dist = std::fabs(log_sigma - log_sigmas_[t]);
    if (dist < best_dist) {
      best = t;
      best_dist = dist;
    }
  }
  return static_cast<float>(best * skip_steps_ + (skip_steps_ - 1));
}

float DiscreteSchedule::sigma(float timestep) const {
  const float k = static_cast<float>(skip_steps_);
  const float index = skip_steps_ == 1 ? timestep : (timestep - (k - 1.0f)) / k;
  const float t = std::clamp(index, 0.0f, static_cast<float>(sigmas_.size() - 1));
  const auto low = static_cast<size_t>(std::floor(t));
  const auto high = static_cast<size_t>(std::ceil(t));
  const float w = t - std::floor(t);
  const float log_sigma = (1.0f - w) * log_sigmas_[low] + w * log_sigmas_[high];
  return std::exp(log_sigma);
}

float DiscreteSchedule::percent_to_sigma(double percent) const {
  if (percent <= 0.0) return 999999999.9f;
  if (percent >= 1.0) return 0.0f;
  return sigma(static_cast<float>((1.0 - percent) * 999.0));
}

std::span<const SchedulerInfo> schedulers() {
  static const SchedulerInfo table[] = {
      {"simple", simple_sigmas},
      {"sgm_uniform", sgm_uniform_sigmas},
      {"karras", [](const DiscreteSchedule& s,
                    int n) { return karras_sigmas(n, s.sigma_min(), s.sigma_max()); }},
      {"exponential", [](const DiscreteSchedule& s,
                         int n) { return exponential_sigmas(n, s.sigma_min(), s.sigma_max()); }},
      {"ddim_uniform", ddim_uniform_sigmas},
      {"beta", [](const DiscreteSchedule& s, int n) { return beta_sigmas(s, n); }},
      {"normal", normal_sigmas},
      {"linear_quadratic",
       [](const DiscreteSchedule& s, int n) { return linear_quadratic_sigmas(s, n); }},
      {"kl_optimal", [](const DiscreteSchedule& s,
                        int n) { return kl_optimal_sigmas(n, s.sigma_min(), s.sigma_max()); }},
  };
  return table;
}

const SchedulerInfo* find_scheduler(std::string_view name) {
  for (const SchedulerInfo& info : schedulers())
    if (info.name == name) return &info;
  return nullptr;
}

std::vector<float> calculate_sigmas(const DiscreteSchedule& s, std::string_view scheduler,
                                    int steps) {
  const SchedulerInfo* info = find_scheduler(scheduler);
  if (!info) {
    std::string known;
    for (const SchedulerInfo& i : schedulers())
      known += (known.empty() ? "" : ", ") + std::string(i.name);
    fail("scheduler", "unknown scheduler '", scheduler, "' (known: ", known, ")");
  }
  DR_CHECK(steps >= 1, "scheduler", "steps must be at least 1, got ", steps);
  return info->fn(s, steps);
}

std::vector<float> linspace_f32(float start, float end, int steps) {
  std::vector<float> out(static_cast<size_t>(std::max(steps, 0)));
  if (steps == 1) out[0] = start;
  if (steps <= 1) return out;
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int halfway = steps / 2;
  for (int i = 0; i < steps; ++i)
    out[i] = i < halfway ? start + step * static_cast<float>(i)
                         : end - step * static_cast<float>(steps - i - 1);
  return out;
}

std::vector<double> linspace_f64(double start, double end, int steps) {
  std::vector<double> out(static_cast<size_t>(std::max(steps, 0)));
  if (steps == 1) out[0] = start;
  if (steps <= 1) return out;
  const double step = (end - start) / static_cast<double>(steps - 1);
  const int halfway = steps / 2;
  for (int i = 0; i < steps; ++i)
    out[i] = i < halfway ? start + step * i : end - step * (steps - i - 1);
  return out;
}

}  // namespace darkroom::sampling
