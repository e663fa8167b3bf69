// Noise schedules: the discrete model's sigma table (ComfyUI's ModelSamplingDiscrete),
// sigma <-> timestep conversion, and the schedulers that pick the sampling sigmas
// (comfy/samplers.py's SCHEDULER_HANDLERS, in the same order and with the same names).
//
// Sigma lists are float32 like ComfyUI's tensors, decreasing, and end in 0 unless a
// scheduler says otherwise.
#pragma once

#include <span>
#include <string_view>
#include <vector>

namespace darkroom::sampling {

// ModelSamplingDiscrete: σ_t = sqrt((1 - ᾱ_t) / ᾱ_t) for t = 0 … T-1.
class DiscreteSchedule {
 public:
  // The "linear" schedule of ldm/ComfyUI (scaled linear in diffusers' words):
  // β_t = linspace(√start, √end, T)² in double, ᾱ_t = Π(1 - β). SD1.x and SDXL use
  // the defaults.
  static DiscreteSchedule scaled_linear(double linear_start = 0.00085, double linear_end = 0.012,
                                        int timesteps = 1000);
  // From a table of sigmas in double, increasing with t; stored as float like ComfyUI.
  explicit DiscreteSchedule(std::span<const double> sigmas);
  // ModelSamplingDiscreteDistilled (LCM, comfy_extras/nodes_model_advanced.py): of
  // `full`'s T sigmas, the `original_timesteps` at t = T-1, T-1-k, … with
  // k = T / original_timesteps (skip_steps), increasing. Its timestep() is
  // index·k + k - 1 and sigma() inverts that before interpolating.
  static DiscreteSchedule distilled(const DiscreteSchedule& full, int original_timesteps = 50);

  std::span<const float> sigmas() const { return sigmas_; }
  // log(σ) taken in double, then rounded to float.
  std::span<const float> log_sigmas() const { return log_sigmas_; }
  int num_timesteps() const { return static_cast<int>(sigmas_.size()); }
  int skip_steps() const { return skip_steps_; }  // 1 unless distilled
  float sigma_min() const { return sigmas_.front(); }
  float sigma_max() const { return sigmas_.back(); }

  // The nearest table index in log space, argmin_t |log σ - log σ_t| (first on ties):
  // the integer timestep ComfyUI feeds the UNet for σ (distilled: index·k + k - 1).
  float timestep(float sigma) const;
  // σ at a fractional timestep by linear interpolation of log σ (t clamped to [0, T-1];
  // distilled: the index (t - (k - 1)) / k, clamped to the table).
  float sigma(float timestep) const;
  // ComfyUI's percent_to_sigma: 0 % -> 999999999.9 (before the start), 100 % -> 0.
  float percent_to_sigma(double percent) const;

 private:
  std::vector<float> sigmas_;
  std::vector<float> log_sigmas_;
  int skip_steps_ = 1;
};

// The schedulers. `steps` sampling steps give steps + 1 sigmas (ending in 0), except
// where ComfyUI's code does otherwise (noted at each).
std::vector<float> normal_sigmas(const DiscreteSchedule& s, int steps);
std::vector<float> sgm_uniform_sigmas(const DiscreteSchedule& s, int steps);
// Karras et al. (2022): (σ_max^(1/ρ) + i/(n-1)·(σ_min^(1/ρ) - σ_max^(1/ρ)))^ρ.
std::vector<float> karras_sigmas(int n, double sigma_min, double sigma_max, double rho = 7.0);
// Evenly spaced in log σ.
std::vector<float> exponential_sigmas(int n, double sigma_min, double sigma_max);
// Every (T/steps)-th table sigma from the top.
std::vector<float> simple_sigmas(const DiscreteSchedule& s, int steps);
// Table sigmas at t = 1, 1 + k, 1 + 2k, … with k = T / steps, reversed, then 0.
std::vector<float> ddim_uniform_sigmas(const DiscreteSchedule& s, int steps);
// Timesteps at the quantiles of Beta(α, β) (arXiv 2407.12173); repeated timesteps are
// dropped, so it may return fewer than steps + 1 sigmas.
std::vector<float> beta_sigmas(const DiscreteSchedule& s, int steps, double alpha = 0.6,
                               double beta = 0.6);
// Mochi's linear-then-quadratic schedule, scaled by σ_max.
std::vector<float> linear_quadratic_sigmas(const DiscreteSchedule& s, int steps,
                                           double threshold_noise = 0.025, int linear_steps = -1);
// "Align Your Steps"-style KL-optimal schedule: tan of a linear ramp in atan(σ).
std::vector<float> kl_optimal_sigmas(int n, double sigma_min, double sigma_max);

using SchedulerFn = std::vector<float> (*)(const DiscreteSchedule& s, int steps);
struct SchedulerInfo {
  std::string_view name;
  SchedulerFn fn;
};
// Every scheduler, in ComfyUI's order (the /object_info list is generated from this).
std::span<const SchedulerInfo> schedulers();
// nullptr if unknown.
const SchedulerInfo* find_scheduler(std::string_view name);
// comfy.samplers.calculate_sigmas; throws darkroom::Error for an unknown name.
std::vector<float> calculate_sigmas(const DiscreteSchedule& s, std::string_view scheduler,
                                    int steps);

// torch.linspace in float32 / float64 (its scalar formula: the first half counts up from
// start, the second half down from end).
std::vector<float> linspace_f32(float start, float end, int steps);
std::vector<double> linspace_f64(double start, double end, int steps);

}  // namespace darkroom::sampling
