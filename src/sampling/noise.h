// Initial latent noise and the default noise of the stochastic samplers, as ComfyUI
// makes them on the CPU.
//
// Layout: torch draws a latent's noise in NCHW order; darkroom latents are NHWC. The
// functions that return latents draw NCHW exactly as torch does and transpose the result
// to NHWC, so element (n, h, w, c) holds the value torch puts at (n, c, h, w).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "sampling/sampler.h"
#include "sampling/torch_rng.h"

namespace darkroom::sampling {

// x [N, C, H, W] -> [N, H, W, C] (CPU f32).
Tensor nchw_to_nhwc(const Tensor& x);
// x [N, H, W, C] -> [N, C, H, W] (CPU f32).
Tensor nhwc_to_nchw(const Tensor& x);

// comfy.sample.prepare_noise for a latent of NCHW dims `nchw` = {N, C, H, W}: one
// generator seeded with `seed`. Without `batch_index`: one torch.randn of the whole
// shape. With it: one randn([1, C, H, W]) per index 0..max(batch_index), keeping those
// listed (in the listed order, repeats allowed) and discarding the others, so latent i of
// a batch gets the noise that a batch of one with batch_index [i] gets.
// Returns NCHW, [len(batch_index) or N, C, H, W].
Tensor prepare_noise_nchw(std::span<const int64_t> nchw, uint64_t seed,
                          std::span<const int64_t> batch_index = {},
                          BoxMuller box_muller = BoxMuller::Avx2);
// The same noise as an NHWC latent: [N', H, W, C].
Tensor prepare_noise(std::span<const int64_t> nchw, uint64_t seed,
                     std::span<const int64_t> batch_index = {},
                     BoxMuller box_muller = BoxMuller::Avx2);

// ComfyUI's default_noise_sampler for a latent on the CPU: a generator seeded with
// seed + 1, and every call returns a fresh torch.randn of the latent's (NCHW) shape.
// `x_shape` is the shape of the sampled tensor: a 4-D shape is taken as NHWC (drawn as
// NCHW and transposed); any other rank is drawn as is. ComfyUI on a CUDA device seeds a
// CUDA (Philox) generator instead, which this does not reproduce.
NoiseSampler torch_noise_sampler(const Shape& x_shape, uint64_t seed,
                                 BoxMuller box_muller = BoxMuller::Avx2);

}  // namespace darkroom::sampling
