// Every sampler, one function each (ComfyUI's names). All share the SamplerFn signature
// of sampling/sampler.h: (denoise, x [N, ...], sigmas, options) -> final x.
// The registry (sampling/registry.h) is the one list of names.
#pragma once

#include "sampling/sampler.h"

namespace darkroom::sampling {

Tensor sample_euler(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                    const SamplerOptions& options);
Tensor sample_euler_ancestral(const Denoiser& denoise, const Tensor& x,
                              std::span<const float> sigmas, const SamplerOptions& options);
Tensor sample_heun(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                   const SamplerOptions& options);
Tensor sample_dpm_2(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                    const SamplerOptions& options);
Tensor sample_dpm_2_ancestral(const Denoiser& denoise, const Tensor& x,
                              std::span<const float> sigmas, const SamplerOptions& options);
Tensor sample_lms(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                  const SamplerOptions& options);
Tensor sample_dpmpp_2s_ancestral(const Denoiser& denoise, const Tensor& x,
                                 std::span<const float> sigmas, const SamplerOptions& options);
Tensor sample_dpmpp_sde(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                        const SamplerOptions& options);
Tensor sample_dpmpp_2m(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                       const SamplerOptions& options);
Tensor sample_dpmpp_2m_sde(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                           const SamplerOptions& options);
Tensor sample_dpmpp_2m_sde_heun(const Denoiser& denoise, const Tensor& x,
                                std::span<const float> sigmas, const SamplerOptions& options);
Tensor sample_lcm(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                  const SamplerOptions& options);
Tensor sample_uni_pc(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                     const SamplerOptions& options);
Tensor sample_uni_pc_bh2(const Denoiser& denoise, const Tensor& x, std::span<const float> sigmas,
                         const SamplerOptions& options);

}  // namespace darkroom::sampling
