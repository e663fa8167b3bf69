// The KL autoencoder of Stable Diffusion (ldm's AutoencoderKL), loaded under its
// single-file checkpoint names ("first_stage_model." is the caller's prefix; a diffusers
// vae/ folder is renamed to these by vae_weights_from_diffusers):
//
//   encoder: conv_in → down.i.block.j (ResnetBlocks), down.i.downsample (all but the last
//            level) → mid.{block_1, attn_1, block_2} → norm_out, SiLU, conv_out [2z]
//   quant_conv (1×1, 2z → 2z) → mean, logvar
//   post_quant_conv (1×1, z → z)
//   decoder: conv_in → mid → up.i.block.j (num_res_blocks + 1 per level, walked from the
//            last level to up.0), up.i.upsample (all but up.0) → norm_out, SiLU, conv_out
//
// Latent space. decode() takes and encode() returns the VAE's own latent z: what ComfyUI
// passes between its VAE nodes and samplers as LATENT, and what diffusers' vae.decode()
// takes (diffusers' pipelines multiply by scaling_factor after encoding and divide before
// decoding). The UNet works on z · latent_scale (SD 1.x: 0.18215); applying that is the
// sampler side's job (ComfyUI's latent_format.process_in / process_out).
//
// Images are NHWC [N, H, W, 3] in [-1, 1] (not clamped), H and W 8× the latent's for SD.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "models/vae_blocks.h"
#include "models/weights.h"

namespace darkroom {

struct VaeConfig {
  int in_channels = 3;                      // image channels into the encoder
  int out_channels = 3;                     // image channels out of the decoder
  int z_channels = 4;                       // latent channels
  int ch = 128;                             // width of the full-resolution level
  std::vector<int> ch_mult = {1, 2, 4, 4};  // level widths / ch; levels - 1 = log2(scale)
  int num_res_blocks = 2;  // ResnetBlocks per encoder level (decoder levels: one more)
  int groups = 32;         // GroupNorm groups (not visible in the shapes)
  bool has_encoder = true;
  bool has_quant_conv = true;  // absent in some later VAEs (e.g. Flux's)
  bool has_post_quant_conv = true;
  float latent_scale = 0.18215f;  // SD 1.x; for the sampler side, see the top of the file

  // From the tensors under `w`'s prefix (the "first_stage_model." level). The decoder
  // must be there; the encoder and the quant convs are optional.
  static VaeConfig detect(const Weights& w, int groups = 32);

  int levels() const { return static_cast<int>(ch_mult.size()); }
  int64_t width(int level) const { return int64_t{ch} * ch_mult[static_cast<size_t>(level)]; }
};

// The posterior N(mean, exp(logvar)) of an image's latent; ComfyUI's VAEEncode keeps the
// mean.
struct VaePosterior {
  Tensor mean;    // [N, h, w, z]
  Tensor logvar;  // [N, h, w, z], clamped to [-30, 20] as ldm's DiagonalGaussianDistribution
};

class Vae {
 public:
  // `w` is the VAE's weights under its own prefix. with_encoder = false loads only what
  // decoding needs.
  static Vae load(const Weights& w, const VaeConfig& config, bool with_encoder = true);

  // z [N, h, w, z_channels] → image [N, h·2^(levels-1), w·2^(levels-1), out_channels].
  // Inputs are cast to the weights' dtype and device; the output has z's dtype.
  Tensor decode(const Tensor& z) const;
  // image [N, H, W, in_channels] in [-1, 1] → posterior of [N, H/2^(levels-1), ..., z].
  VaePosterior encode(const Tensor& image) const;

  const VaeConfig& config() const { return config_; }

 private:
  struct Level {
    std::vector<vae::ResnetBlock> blocks;
    std::optional<vae::Downsample> down;
    std::optional<vae::Upsample> up;
  };
  struct Encoder {
    layers::Conv2d conv_in;
    std::vector<Level> down;
    std::optional<vae::MidBlock> mid;
    layers::GroupNorm norm_out;
    layers::Conv2d conv_out;
    std::optional<layers::Linear> quant_conv;
  };
  struct Decoder {
    std::optional<layers::Linear> post_quant_conv;
    layers::Conv2d conv_in;
    std::optional<vae::MidBlock> mid;
    std::vector<Level> up;  // up[0] is the full-resolution level, run last
    layers::GroupNorm norm_out;
    layers::Conv2d conv_out;
  };

  static Encoder load_encoder(const Weights& w, VaeConfig& c);  // sets c.in_channels
  static Decoder load_decoder(const Weights& w, const VaeConfig& c);

  VaeConfig config_;
  DType dtype_ = DType::F32;
  DeviceId device_;
  std::optional<Encoder> encoder_;
  Decoder decoder_;
};

}  // namespace darkroom
