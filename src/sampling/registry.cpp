// The sampler table and KSampler's sigma selection.
#include "sampling/registry.h"

#include <string>

#include "core/error.h"
#include "sampling/samplers/samplers.h"

namespace darkroom::sampling {

std::span<const SamplerInfo> samplers() {
  using enum NoiseSource;
  static const SamplerInfo table[] = {
      {"euler", sample_euler, false, None},
      {"euler_ancestral", sample_euler_ancestral, false, TorchCpu},
      {"heun", sample_heun, false, None},
      {"dpm_2", sample_dpm_2, true, None},
      {"dpm_2_ancestral", sample_dpm_2_ancestral, true, TorchCpu},
      {"lms", sample_lms, false, None},
      {"dpmpp_2s_ancestral", sample_dpmpp_2s_ancestral, false, TorchCpu},
      {"dpmpp_sde", sample_dpmpp_sde, false, BrownianTree},
      {"dpmpp_2m", sample_dpmpp_2m, false, None},
      {"dpmpp_2m_sde", sample_dpmpp_2m_sde, false, BrownianTree},
      {"dpmpp_2m_sde_heun", sample_dpmpp_2m_sde_heun, false, BrownianTree},
      {"lcm", sample_lcm, false, TorchCpu},
      // ComfyUI's "ddim" is Euler (its only difference is inpainting noise).
      {"ddim", sample_euler, false, None},
      {"uni_pc", sample_uni_pc, true, None},
      {"uni_pc_bh2", sample_uni_pc_bh2, true, None},
  };
  return table;
}

const SamplerInfo* find_sampler(std::string_view name) {
  for (const SamplerInfo& info : samplers())
    if (info.name == name) return &info;
  return nullptr;
}

const SamplerInfo& get_sampler(std::string_view name) {
  if (const SamplerInfo* info = find_sampler(name)) return *info;
  std::string known;
  for (const SamplerInfo& i : samplers())
    known += (known.empty() ? "" : ", ") + std::string(i.name);
  fail("sampler", "unknown sampler '", name, "' (known: ", known, ")");
}

std::vector<float> ksampler_sigmas(const DiscreteSchedule& schedule, std::string_view scheduler,
                                   std::string_view sampler, int steps, double denoise) {
  const SamplerInfo& info = get_sampler(sampler);
  auto compute = [&](int n) {
    if (!info.discard_penultimate_sigma) return calculate_sigmas(schedule, scheduler, n);
    std::vector<float> s = calculate_sigmas(schedule, scheduler, n + 1);
    if (s.size() >= 2) s.erase(s.end() - 2);
    return s;
  };
  if (denoise > 0.9999) return compute(steps);
  if (denoise <= 0.0) return {};
  const std::vector<float> full = compute(static_cast<int>(steps / denoise));
  const size_t keep = std::min(full.size(), static_cast<size_t>(steps) + 1);
  return std::vector<float>(full.end() - static_cast<std::ptrdiff_t>(keep), full.end());
}

}  // namespace darkroom::sampling
