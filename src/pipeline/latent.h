// LATENT: ComfyUI's {"samples": ..., "noise_mask": ..., "batch_index": [...]} dict.
//
// `samples` holds the VAE's own latent z (what VAEEncode returns and VAEDecode takes),
// not the model-space latent z·scale_factor that the sampler works in; the KSampler
// converts (latent_format.process_in / process_out) as ComfyUI does.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/tensor.h"

namespace darkroom::pipeline {

struct Latent {
  Tensor samples;  // CPU f32 [N, h, w, C] (NHWC; C = 4 for SD 1.x / SDXL)
  // SetLatentNoiseMask: where to denoise (1) and where to keep the input (0). CPU f32
  // [M, H', W'] at any resolution (usually the image's); the sampler resizes it to the
  // latent (bilinear) and repeats it over the batch.
  std::optional<Tensor> noise_mask;
  // Which noise each latent of the batch gets (prepare_noise's batch_index); set by
  // LatentFromBatch and friends, absent for a fresh batch.
  std::optional<std::vector<int64_t>> batch_index;
};

}  // namespace darkroom::pipeline
