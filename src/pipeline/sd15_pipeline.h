// Stable Diffusion 1.x text-to-image, ComfyUI's default graph in one object:
//
//   CLIPTextEncode ×2 ─ tokenizer → CLIP → weighted context [1, 77k, C]  (prompt_encoder.h)
//   EmptyLatentImage ─ zeros [N, H/8, W/8, 4]
//   KSampler         ─ prepare_noise(seed) (torch.randn-exact), the scheduler's sigmas,
//                      the sampler over D(x, σ) = CFG of the eps UNet run on cond and
//                      uncond as one batch of 2N
//   VAEDecode        ─ z = x / latent_scale → VAE → clamp((img + 1) / 2, 0, 1)
//   SaveImage        ─ ×255 truncated to 8 bits
//
// The models compute in the dtype and on the device they were loaded on (from_checkpoint:
// `device`, default the CPU); latents and sampler state are f32 on the CPU. On CUDA the
// UNet step runs through a UNetRunner (a CUDA graph per image size and batch).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/clip_text.h"
#include "models/unet.h"
#include "models/unet_runner.h"
#include "models/vae.h"
#include "text/clip_tokenizer.h"

namespace darkroom::pipeline {

struct GenerateParams {
  std::string prompt;
  std::string negative;
  int steps = 20;
  float cfg = 7.0f;
  std::string sampler = "euler";
  std::string scheduler = "normal";
  uint64_t seed = 0;
  int width = 512;
  int height = 512;
  int batch = 1;
  double denoise = 1.0;
  int clip_skip = 1;  // CLIPSetLastLayer -clip_skip (1: none)
};

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // height·width·3, row-major
};

// step (1-based) of steps, after each sampler step.
using ProgressFn = std::function<void(int step, int steps)>;

class Sd15Pipeline {
 public:
  Sd15Pipeline(text::ClipTokenizer tokenizer, ClipTextEncoder clip, UNet unet, Vae vae);

  // A single-file SD 1.x checkpoint (detect_family must say Sd15), models in `dtype`,
  // their weights uploaded once to `device`.
  static Sd15Pipeline from_checkpoint(const std::string& path, text::ClipTokenizer tokenizer,
                                      DType dtype, DeviceId device = kCpu);

  // CUDA graphs for the UNet step (on by default; no effect on the CPU).
  void use_cuda_graphs(bool on);

  // The image side's scale over the latent (8 for SD), and the multiple that width and
  // height must be: the same (ComfyUI's EmptyLatentImage steps by 8; the UNet takes
  // latents of any size).
  int vae_scale() const;
  int size_multiple() const;

  // The sampled latent z (VAE space), CPU f32 [batch, H/8, W/8, 4].
  Tensor sample(const GenerateParams& p, const ProgressFn& progress = nullptr) const;
  // KSampler on a given latent instead of EmptyLatentImage's zeros (img2img: `latent` is
  // encode(image), and p.denoise < 1 starts part way down the schedule). latent
  // [N, h, w, 4] in the VAE's space; p.width, p.height and p.batch are taken from it.
  Tensor sample(const GenerateParams& p, const Tensor& latent,
                const ProgressFn& progress = nullptr) const;
  // z → images [N, H, W, 3] in [-1, 1] (f32).
  Tensor decode(const Tensor& z) const;
  // VAEEncode: images [N, H, W, 3] in [-1, 1] → the posterior mean z [N, H/8, W/8, 4]
  // (ComfyUI keeps the mean). Needs a VAE loaded with its encoder.
  Tensor encode(const Tensor& image) const;
  // The whole graph.
  std::vector<RgbImage> generate(const GenerateParams& p,
                                 const ProgressFn& progress = nullptr) const;

  // ComfyUI's VAEDecode clamp and SaveImage quantisation: image [N, H, W, 3] in [-1, 1].
  static std::vector<RgbImage> to_rgb8(const Tensor& image);
  // LoadImage and VAEEncode's input scaling: 8-bit pixels (all of one size) → [N, H, W, 3]
  // f32 in [-1, 1], v/255·2 - 1.
  static Tensor from_rgb8(const std::vector<RgbImage>& images);

  const ClipTextEncoder& clip() const { return *clip_; }
  const UNet& unet() const { return *unet_; }
  const Vae& vae() const { return *vae_; }
  const text::ClipTokenizer& tokenizer() const { return *tokenizer_; }

 private:
  std::shared_ptr<text::ClipTokenizer> tokenizer_;
  std::shared_ptr<ClipTextEncoder> clip_;
  std::shared_ptr<UNet> unet_;
  std::shared_ptr<Vae> vae_;
  std::shared_ptr<UNetRunner> unet_runner_;  // runs *unet_
};

}  // namespace darkroom::pipeline
