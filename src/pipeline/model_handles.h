// The model values that flow between ComfyUI nodes (MODEL, CLIP, VAE): shared, immutable
// handles on loaded networks plus the small settings that nodes such as CLIPSetLastLayer
// and ModelSamplingDiscrete change. A node that changes a setting returns a copy of the
// handle (the network itself is shared), as ComfyUI's ModelPatcher.clone() does.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/clip_text.h"
#include "models/unet.h"
#include "models/vae.h"
#include "pipeline/deferred.h"
#include "pipeline/model_family.h"
#include "sampling/prediction.h"
#include "sampling/schedule.h"
#include "text/clip_tokenizer.h"
#include "text/embeddings.h"

namespace darkroom {
class UNetRunner;
class LoraFile;
}  // namespace darkroom

namespace darkroom::pipeline {

// How a loaded network can be built again with some of its tensors replaced (LoRA,
// lora_apply.h): the weights it was built from, which remember() every tensor they
// handed out, so a rebuild shares all the tensors it does not replace; the prefix a
// single-file checkpoint gives these names (what LoRA keys are matched against; for a
// diffusers folder the ldm/sgm equivalent); and the build step with its configuration.
template <class Net>
struct NetworkSource {
  Weights weights;
  std::string checkpoint_prefix;
  std::function<std::shared_ptr<const Net>(const Weights&)> build;
  // Empty when the weights' names (after their prefix) are the single-file ones. Else (a
  // diffusers folder's OpenCLIP tower in transformers' names) the single-file names LoRAs
  // see, after checkpoint_prefix: each → the weights' names whose tensors are its row
  // blocks in order (attn.in_proj_weight ← q_proj, k_proj, v_proj); no others are seen.
  std::map<std::string, std::vector<std::string>> renamed;
};

// One LoRA of a stack and the strength it is applied with.
struct LoraUse {
  std::shared_ptr<const LoraFile> file;
  float strength = 1.0f;
};

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
  // Which vector input y the UNet takes (SDXL: pooled + sizes, refiner: + aesthetic
  // score; see adm.h) and the family's defaults.
  ModelFamily family = ModelFamily::Sd15;
  std::shared_ptr<const UNet> unet;
  // Runs `unet` with CUDA graphs per shape when it lives on a CUDA device (it keeps `unet`
  // alive); null on the CPU, where the sampler calls unet->forward.
  std::shared_ptr<UNetRunner> runner;
  ModelSampling sampling;
  // latent_format: the model works on z·scale_factor (SD 1.x, 2.x: 0.18215; SDXL 0.13025).
  float latent_scale = 0.18215f;
  std::string latent_format = "sd15";  // for latent previews: "sd15" or "sdxl"
  std::string source;                  // the file it came from, for messages
  // What `unet` was built from (null: it cannot take LoRAs), and the LoRAs merged into
  // it, in the order applied (empty: the checkpoint's own UNet).
  std::shared_ptr<const NetworkSource<UNet>> unet_source;
  std::vector<LoraUse> loras;
  uint64_t lora_bytes = 0;  // the patched copies' size (what `loras` added in memory)
  // Set by LoraLoader: `loras` are not merged yet (`unet` and `runner` are still the
  // base's, for its configuration only), and this makes (or finds in the model cache) the
  // merged model when a node first needs it: resolved() below, which
  // NodeInputs::model() calls; only nodes that change settings or stack more LoRAs take
  // the handle unresolved.
  std::shared_ptr<const Deferred<ModelHandle>> deferred;
  // The LoRA-patched copies `unet` was built with (lora_apply.h with_loras): full names of
  // unet_source->weights → tensor (its dtype, CPU); every other tensor is the source's own.
  // Null when no LoRA is merged (and until resolved()). A difference ControlNet adds these,
  // as ComfyUI adds the patched model's weights (DiffControlNetLoader). On the CPU they are
  // the very tensors `unet` holds; on CUDA they are host copies (lora_bytes more host RAM).
  std::shared_ptr<const std::map<std::string, Tensor>> lora_weights;
};

// CLIP: tokenizer + text encoders, and CLIPSetLastLayer's choice. Which encoders a family
// has (model_family.h): SD 1.x `encoder` (CLIP-L); SDXL `encoder` and `open_clip` (bigG);
// the refiner `open_clip` (bigG); SD 2.x `open_clip` (ViT-H). One tokenizer serves all
// (OpenCLIP's vocabulary is CLIP's; only the padding differs).
struct ClipHandle {
  ModelFamily family = ModelFamily::Sd15;
  std::shared_ptr<const text::ClipTokenizer> tokenizer;
  std::shared_ptr<const ClipTextEncoder> encoder;    // CLIP-L, or null
  std::shared_ptr<const ClipTextEncoder> open_clip;  // OpenCLIP, or null
  // 1 = last layer; CLIPSetLastLayer stop_at_clip_layer = -clip_skip, applied to every
  // encoder. The loader sets the family's default (SD 1.x 1; SD 2.x and SDXL 2, the
  // penultimate layer ComfyUI uses without the node).
  int clip_skip = 1;
  // Layers the OpenCLIP tower lacks at its end: 1 for an SD 2.x diffusers folder, whose
  // text_encoder is ViT-H without its last layer (diffusers' conversion drops resblocks.23).
  // clip_skip still counts ComfyUI's layers (the complete tower's): 2, the default, is the
  // folder's last layer; 1 would need the missing one (clip_encode.cpp refuses it).
  int open_clip_dropped_layers = 0;
  // "embedding:name" (ComfyUI's embeddings folders), one directory per encoder: CLIP-L's
  // vectors under the key "clip_l", bigG's "clip_g", ViT-H's "clip_h" (files with one
  // tensor serve any); null: the name stays plain text. See with_embedding_folders().
  std::shared_ptr<const text::EmbeddingDirectory> embeddings, open_clip_embeddings;
  // What `encoder` / `open_clip` were built from (null: no LoRA on that encoder), and the
  // LoRAs merged into them.
  std::shared_ptr<const NetworkSource<ClipTextEncoder>> encoder_source, open_clip_source;
  std::vector<LoraUse> loras;
  uint64_t lora_bytes = 0;  // the patched copies' size
  // As ModelHandle::deferred: the LoRA'd `encoder` / `open_clip` (the base's until
  // resolved()).
  std::shared_ptr<const Deferred<ClipHandle>> deferred;
  // The most layers any of the encoders has (CLIPSetLastLayer's range).
  int layers() const {
    int n = 0;
    if (encoder) n = encoder->config().layers;
    if (open_clip) n = std::max(n, open_clip->config().layers + open_clip_dropped_layers);
    return n;
  }
};

// VAE: the autoencoder (decoder always; encoder when the file has it).
struct VaeHandle {
  std::shared_ptr<const Vae> vae;
  // Pixel size of one latent pixel (8 for SD; 2 for the tiny test VAE).
  int scale() const { return 1 << (vae->config().levels() - 1); }
};

// The handle ready to run: `m` itself, or `m` with its deferred LoRA'd networks made (its
// own settings kept: sampling, clip_skip, embeddings).
ModelHandle resolved(const ModelHandle& m);
ClipHandle resolved(const ClipHandle& c);

}  // namespace darkroom::pipeline
