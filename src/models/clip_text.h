// CLIP's text transformer, in three file layouts that load into the same network:
//   Hugging Face CLIPTextModel: SD 1.x single-file checkpoints under
//     "cond_stage_model.transformer.text_model.", SDXL's CLIP-L under
//     "conditioner.embedders.0.transformer.text_model.", diffusers folders'
//     text_encoder/model.safetensors (ClipTextEncoder::load);
//   Hugging Face CLIPTextModelWithProjection: a diffusers SDXL folder's
//     text_encoder_2/model.safetensors (ClipTextEncoder::load_hf_with_projection);
//   OpenCLIP's text tower: SDXL's CLIP-G and SD 2.x's ViT-H in single-file checkpoints
//     (ClipTextEncoder::load_open_clip).
// In Hugging Face's names:
//
//   embeddings.token_embedding [V, C] + embeddings.position_embedding [P, C]
//   encoder.layers.N: x += out_proj(attn(q_proj, k_proj, v_proj of layer_norm1(x)))   causal
//                     x += mlp.fc2(act(mlp.fc1(layer_norm2(x))))
//   final_layer_norm
//
// Activations are token-major [B, T, C]; the heads split the channel dimension, so the
// attention needs no permutes. Every layer norm uses eps 1e-5.
//
// Which output a sampler gets follows ComfyUI (comfy/sd1_clip.py, comfy/clip_model.py):
// CLIPSetLastLayer's -k is clip_skip = k here, and the hidden state is the output of layer
// L - k (1 = the last layer), with final_layer_norm applied (SD 1.x's
// layer_norm_hidden_state); a clip_skip beyond the layer count means the last layer, as
// in ComfyUI. The pooled output is final_layer_norm(last layer) at the first position of
// each row's largest token id (the end token, which CLIP's vocabulary puts last), times
// the text projection when the model has one (SDXL's CLIP-G: ComfyUI's pooled_output).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "io/safetensors.h"
#include "models/layers.h"
#include "models/weights.h"

namespace darkroom {

// OpenAI's CLIP (CLIP-L of SD 1.x, SDXL) uses x·sigmoid(1.702x); OpenCLIP models (CLIP-G
// of SDXL, SD 2's ViT-H) use the erf GELU.
enum class ClipActivation { QuickGelu, Gelu };

struct ClipTextConfig {
  int64_t width = 768;       // C
  int layers = 12;           // L
  int heads = 12;            // C / 64 for every released CLIP
  int64_t mlp_width = 3072;  // 4C
  int64_t positions = 77;    // P: the most tokens a sequence may have
  ClipActivation activation = ClipActivation::QuickGelu;
  float eps = 1e-5f;
  // P > 0: the model has a text projection (OpenCLIP's text_projection [C, P]; Hugging
  // Face CLIPTextModelWithProjection's text_projection.weight [P, C], no bias), and the
  // pooled output is projected: [B, P]. SDXL's CLIP-G: 1280; SD 2's ViT-H: 1024.
  int64_t projection_dim = 0;

  // Width, layer count, MLP width and positions from the tensors under `w`'s prefix (the
  // "...text_model." level). The head count and activation are not in the shapes:
  // heads = 0 means width / 64 (every released CLIP); tiny test models pass theirs.
  static ClipTextConfig detect(const Weights& w, int heads = 0,
                               ClipActivation activation = ClipActivation::QuickGelu);
  // The same from OpenCLIP's text tower (`w` at the "...model." level of an ldm/sgm
  // checkpoint, see ClipTextEncoder::load_open_clip): erf GELU, projection from
  // text_projection.
  static ClipTextConfig detect_open_clip(const Weights& w, int heads = 0);
  // The same from a Hugging Face CLIPTextModelWithProjection file, `w` at the file's root
  // (clip_text_with_projection_weights_from_hf): detect() on "text_model." plus
  // projection_dim from text_projection.weight. diffusers' SDXL text_encoder_2 is GELU.
  static ClipTextConfig detect_hf_with_projection(const Weights& w, int heads = 0,
                                                  ClipActivation activation = ClipActivation::Gelu);
};

struct ClipTextOutput {
  Tensor hidden;  // [B, T, C]: the layer chosen by clip_skip (see the top of this file)
  Tensor pooled;  // [B, C] ([B, P] when the config has a projection), or undefined
};

struct ClipEncodeOptions {
  int clip_skip = 1;  // 1 = last layer, 2 = penultimate, ... (ComfyUI's -1, -2, ...)
  // final_layer_norm on the chosen layer: ComfyUI's layer_norm_hidden_state (true for SD
  // 1.x's CLIP-L; SDXL's CLIP-G uses its penultimate layer without it).
  bool norm_hidden = true;
  // The pooled output needs the last layer; without it the layers after the chosen one
  // are skipped.
  bool pooled = true;
};

// Textual-inversion vectors (text/embeddings.h): the token embedding at flat position
// b·T + t = positions[i] becomes row i of vectors [n, C] (the position embedding is still
// added, as ComfyUI does). The ids at those positions may be any valid id.
struct ClipTokenReplacement {
  std::vector<int64_t> positions;
  Tensor vectors;
};

class ClipTextEncoder {
 public:
  // `w` holds the tensors under the "...text_model." level. Reads the token table's
  // vocabulary size from the file; every other shape is checked against `config`, whose
  // projection_dim must be 0 (a projection lies outside "text_model.": see below).
  static ClipTextEncoder load(const Weights& w, const ClipTextConfig& config);
  // A Hugging Face CLIPTextModelWithProjection, `w` at the file's root: load() on
  // "text_model." and text_projection.weight [P, C] (no bias) from the root.
  static ClipTextEncoder load_hf_with_projection(const Weights& w, const ClipTextConfig& config);
  // OpenCLIP's text tower as ldm/sgm single-file checkpoints store it, `w` at the
  // "...model." level: SD 2.x "cond_stage_model.model.", SDXL base
  // "conditioner.embedders.1.model.", SDXL refiner "conditioner.embedders.0.model."
  // (token_embedding, positional_embedding, transformer.resblocks.N.{ln_1, attn.in_proj_*
  // (q, k, v stacked), attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_final,
  // text_projection). Reads exactly those tensors (shared/reference/sdxl-sgm-tensors.tsv),
  // text_projection only when config.projection_dim > 0; logit_scale is left alone.
  static ClipTextEncoder load_open_clip(const Weights& w, const ClipTextConfig& config);

  // ids [B, T] i32 or i64 on the CPU, T ≤ positions.
  ClipTextOutput encode(const Tensor& ids, const ClipEncodeOptions& options) const;
  ClipTextOutput encode(const Tensor& ids, const ClipEncodeOptions& options,
                        const ClipTokenReplacement& replace) const;
  ClipTextOutput encode(const Tensor& ids, int clip_skip) const {
    return encode(ids, ClipEncodeOptions{clip_skip, true, true});
  }

  // Hugging Face's output_hidden_states: [0] the embeddings, [i] the output of layer i
  // (1 ≤ i ≤ L), each [B, T, C] without final_layer_norm. For tests and tools.
  std::vector<Tensor> hidden_states(const Tensor& ids) const;
  // final_layer_norm of x [B, T, C].
  Tensor final_norm(const Tensor& x) const { return final_norm_(x); }

  const ClipTextConfig& config() const { return config_; }
  int64_t vocab_size() const { return token_embedding_.dim(0); }

 private:
  // Every layout fills the same layer. OpenCLIP's fused in_proj [3C, C] is held as three
  // row views of the loaded tensor (no copy): three [C, C] GEMMs rather than one [3C, C]
  // GEMM whose [B, T, 3C] output would need three slice copies, since ops::attention
  // takes contiguous q, k, v.
  struct Layer {
    layers::LayerNorm norm1, norm2;
    layers::Linear q, k, v, out, fc1, fc2;
  };

  // [B, T] → [B, T, C], with some token embeddings replaced.
  Tensor embed(const Tensor& ids, const ClipTokenReplacement* replace = nullptr) const;
  Tensor run_layer(const Layer& l, const Tensor& x, const Tensor& mask) const;
  Tensor causal_mask(int64_t tokens) const;                    // f32 [T, T] on the device
  Tensor pool(const Tensor& normed, const Tensor& ids) const;  // [B, T, C] → [B, C]

  ClipTextConfig config_;
  DeviceId device_;
  Tensor token_embedding_, position_embedding_;
  std::vector<Layer> layers_;
  layers::LayerNorm final_norm_;
  layers::Linear projection_;  // weight [P, C], no bias; undefined when projection_dim = 0
};

// The text model of a Hugging Face CLIPTextModel file (a diffusers folder's
// text_encoder/model.safetensors) as Weights at the "text_model." level: transformers 4.x
// (which wrote SD 1.5's published folders) names the tensors "text_model.*", 5.x drops the
// prefix; either loads.
Weights clip_text_weights_from_hf(const std::shared_ptr<const SafetensorsFile>& file,
                                  DeviceId device, DType dtype);

// A Hugging Face CLIPTextModelWithProjection file (a diffusers SDXL folder's
// text_encoder_2/model.safetensors: "text_model.*" and "text_projection.weight" [P, C],
// the same in transformers 4.x and 5.x) as Weights at the file's root, for
// ClipTextConfig::detect_hf_with_projection and ClipTextEncoder::load_hf_with_projection.
Weights clip_text_with_projection_weights_from_hf(
    const std::shared_ptr<const SafetensorsFile>& file, DeviceId device, DType dtype);

}  // namespace darkroom
