// What a diffusion network predicts, and the wrappers that turn its output into the
// denoised estimate D(x, σ) the samplers need (ComfyUI's model_sampling EPS,
// V_PREDICTION, X0 and IMG_TO_IMG classes, with σ_data = 1, and the LCM class of
// comfy_extras/nodes_model_advanced.py).
//
//   UNet input:  c_in·x with c_in = 1 / sqrt(σ² + 1), at timestep t(σ)
//                (img_to_img: x itself, unscaled)
//   eps:         D = x - σ·out
//   v:           D = x / (σ² + 1) - out·σ / sqrt(σ² + 1)
//   x0:          D = out
//   img_to_img:  D = out
//   lcm:         D = c_out·(x - σ·out) + c_skip·x, LCM's boundary conditions at the
//                scaled timestep s = 10·t(σ) with σ_data = 0.5:
//                c_skip = 0.25 / (s² + 0.25), c_out = s / sqrt(s² + 0.25)
#pragma once

#include <functional>

#include "core/tensor.h"
#include "sampling/sampler.h"
#include "sampling/schedule.h"

namespace darkroom::sampling {

enum class Prediction { Eps, V, X0, Lcm, ImgToImg };

// c_in·x: what the network sees for latent x at σ.
Tensor calculate_input(float sigma, const Tensor& x);
// The same for a prediction type: ImgToImg feeds x unscaled, the others c_in·x.
Tensor calculate_input(Prediction prediction, float sigma, const Tensor& x);
// D(x, σ) from the network's output for input x (the unscaled latent). `timestep` is the
// t(σ) the network ran at; only Lcm reads it (and requires it to be >= 0).
Tensor calculate_denoised(Prediction prediction, float sigma, const Tensor& model_output,
                          const Tensor& model_input, float timestep = -1.0f);
// The starting latent for sampling from σ: latent + σ·noise, or with
// max_denoise latent + sqrt(1 + σ²)·noise (the variance-preserving start ComfyUI uses
// when σ is the schedule's maximum).
Tensor noise_scaling(float sigma, const Tensor& noise, const Tensor& latent, bool max_denoise);
// ComfyUI's Sampler.max_denoise: σ_0 is (within 1e-5 relative) at or above σ_max.
bool is_max_denoise(const DiscreteSchedule& schedule, float first_sigma);

// The network as the sampling code calls it: (c_in·x [N, ...], timestep) -> output.
using NetworkFn = std::function<Tensor(const Tensor& scaled_x, float timestep)>;
// D(x, σ) = calculate_denoised(network(c_in·x, t(σ))).
Denoiser make_denoiser(Prediction prediction, NetworkFn network, const DiscreteSchedule& schedule);

}  // namespace darkroom::sampling
