// The model values that flow between ComfyUI nodes (MODEL, CLIP, VAE): shared, immutable
// handles on loaded networks plus the small settings that nodes such as CLIPSetLastLayer
// and ModelSamplingDiscrete change. A node that changes a setting returns a copy of the
// handle (the network itself is shared), as ComfyUI's ModelPatcher.clone() does.
#pragma once

#include <memory>
#include <string>

#include "models/clip_text.h"
#include "models/unet.h"
#include "models/vae.h"
#include "sampling/prediction.h"
#include "sampling/schedule.h"
#include "text/clip_tokenizer.h"

namespace darkroom {
class UNetRunner;
}

namespace darkroom::pipeline {

// ModelSamplingDiscrete's choices: what the network predicts and its sigma table.
struct ModelSampling {
  sampling::Prediction prediction = sampling::Prediction::Eps;
  // "lcm": the distilled model's 50 original timesteps and LCM's boundary conditions.
  bool lcm = false;
  bool zsnr = false;  // rescaled to zero terminal SNR (sigma_max very large)
  std::shared_ptr<const sampling::DiscreteSchedule> schedule;
};

// MODEL: the denoising network, how it samples, and its latent format.
struct ModelHandle {
  std::shared_ptr<const UNet> unet;
  // Runs `unet` with CUDA graphs per shape when it lives on a CUDA device (it keeps `unet`
  // alive); null on the CPU, where the sampler calls unet->forward.
  std::shared_ptr<UNetRunner> runner;
  ModelSampling sampling;
  // latent_format: the model works on z·scale_factor (SD 1.x: 0.18215).
  float latent_scale = 0.18215f;
  std::string latent_format = "sd15";  // for latent previews (latent → RGB factors)
  std::string source;                  // the file it came from, for messages
};

// CLIP: tokenizer + text encoder, and CLIPSetLastLayer's choice.
struct ClipHandle {
  std::shared_ptr<const text::ClipTokenizer> tokenizer;
  std::shared_ptr<const ClipTextEncoder> encoder;
  int clip_skip = 1;  // 1 = last layer; CLIPSetLastLayer stop_at_clip_layer = -clip_skip
};

// VAE: the autoencoder (decoder always; encoder when the file has it).
struct VaeHandle {
  std::shared_ptr<const Vae> vae;
  // Pixel size of one latent pixel (8 for SD; 2 for the tiny test VAE).
  int scale() const { return 1 << (vae->config().levels() - 1); }
};

}  // namespace darkroom::pipeline
