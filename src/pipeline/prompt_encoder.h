// Prompt text → cross-attention context, as ComfyUI's CLIPTextEncode does it for SD 1.x
// (comfy/sd1_clip.py): the prompt is weighted and cut into 77-token chunks
// (text/prompt_weights.h), every chunk goes through CLIP in one batch, and a token of
// weight w ≠ 1 becomes z_empty + (z - z_empty)·w, where z_empty is CLIP's output for the
// empty prompt at the same position (ClipTokenWeightEncoder.encode_token_weights). The
// chunks are concatenated along the tokens: [1, 77·chunks, C].
#pragma once

#include <optional>
#include <string_view>

#include "core/tensor.h"
#include "models/clip_text.h"
#include "text/clip_tokenizer.h"
#include "text/embeddings.h"

namespace darkroom::pipeline {

// CPU f32 [1, 77·chunks, C].
Tensor encode_prompt(const text::ClipTokenizer& tokenizer, const ClipTextEncoder& clip,
                     std::string_view prompt, int clip_skip = 1);

struct PromptEncodeOptions {
  int clip_skip = 1;  // CLIPSetLastLayer -clip_skip
  // The padding token of the chunks and of the empty prompt (ComfyUI's gen_empty_tokens:
  // start, end, pad...); unset: the end token (SD 1.x, SDXL's CLIP-L); OpenCLIP pads with 0.
  std::optional<int32_t> pad_token;
  // final_layer_norm on the chosen layer (ComfyUI's layer_norm_hidden_state: SD 1.x and
  // 2.x yes, SDXL's two encoders no).
  bool norm_hidden = true;
  // Also compute the pooled output (of the first chunk, unweighted, as ComfyUI's
  // first_pooled): final_layer_norm of the last layer at the end token, projected when
  // the model has a projection.
  bool pooled = false;
  // Where "embedding:name" finds its vectors (ComfyUI's embeddings folders). Null: as
  // ComfyUI without an embedding directory, "embedding:name" stays plain text. With one,
  // each vector takes one token position in place of a token embedding (the position
  // embedding still added) and the segment's weight applies to it like to any token; a
  // name that is not found is left out.
  const text::EmbeddingDirectory* embeddings = nullptr;
};

Tensor encode_prompt(const text::ClipTokenizer& tokenizer, const ClipTextEncoder& clip,
                     std::string_view prompt, const PromptEncodeOptions& options);

struct EncodedPrompt {
  Tensor context;  // CPU f32 [1, 77·chunks, C]
  Tensor pooled;   // CPU f32 [1, P] when options.pooled, else undefined
};
EncodedPrompt encode_prompt_pooled(const text::ClipTokenizer& tokenizer,
                                   const ClipTextEncoder& clip, std::string_view prompt,
                                   const PromptEncodeOptions& options);

// Repeats `context` [B, T, C] along the tokens to `tokens` (a multiple of T): how ComfyUI
// batches a cond and an uncond of different lengths (CONDCrossAttn.concat, to the lcm).
Tensor repeat_tokens(const Tensor& context, int64_t tokens);

}  // namespace darkroom::pipeline
