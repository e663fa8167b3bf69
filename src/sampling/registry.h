// The one list of samplers: name -> function and the facts the caller needs about each.
// Sampler lists (/object_info's sampler_name, CLI help) are generated from it.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "sampling/sampler.h"
#include "sampling/schedule.h"

namespace darkroom::sampling {

// Where a sampler's randomness comes from when SamplerOptions::noise_sampler is empty.
enum class NoiseSource {
  None,         // deterministic
  TorchCpu,     // ComfyUI's default_noise_sampler on the CPU: torch.randn, seed + 1
  BrownianTree  // ComfyUI's BrownianTreeNoiseSampler (torchsde), seeded with the seed
};

struct SamplerInfo {
  std::string_view name;
  SamplerFn fn;
  // ComfyUI computes steps + 1 sigmas and drops the second-to-last for these.
  bool discard_penultimate_sigma;
  NoiseSource noise;
};

// Every sampler, in ComfyUI's order.
std::span<const SamplerInfo> samplers();
// nullptr if unknown.
const SamplerInfo* find_sampler(std::string_view name);
// find_sampler that throws darkroom::Error naming the known samplers.
const SamplerInfo& get_sampler(std::string_view name);

// KSampler's sigmas (comfy.samplers.KSampler.set_steps/calculate_sigmas): the
// scheduler's sigmas for `steps`, with the sampler's penultimate-sigma rule, and for
// denoise < 1 the last steps + 1 sigmas of a schedule for int(steps / denoise) steps
// (empty for denoise <= 0).
std::vector<float> ksampler_sigmas(const DiscreteSchedule& schedule, std::string_view scheduler,
                                   std::string_view sampler, int steps, double denoise = 1.0);

}  // namespace darkroom::sampling
