#include "pipeline/clip_encode.h"

#include <cstring>
#include <vector>

#include "core/error.h"
#include "pipeline/prompt_encoder.h"

namespace darkroom::pipeline {
namespace {

constexpr int32_t kOpenClipPad = 0;  // OpenCLIP's tokenizer pads with 0 (pad_with_end=False)

// The options for one encoder: its padding and whether the chosen layer is normed.
PromptEncodeOptions options_for(const ClipHandle& clip, const ClipTextEncoder& enc,
                                bool open_clip) {
  PromptEncodeOptions o;
  o.clip_skip = clip.clip_skip;
  if (open_clip && clip.open_clip_dropped_layers > 0) {
    // ComfyUI's layer -k of the complete tower is the loaded one's -(k - dropped); -1 (and
    // a k past the count, ComfyUI's "last") is a layer the files do not hold.
    const int dropped = clip.open_clip_dropped_layers, held = enc.config().layers;
    DR_CHECK(o.clip_skip > dropped && o.clip_skip <= held + dropped, "CLIPTextEncode",
             "CLIPSetLastLayer ", -o.clip_skip,
             " needs a text encoder layer this model lacks: its ", family_name(clip.family),
             " text encoder (a diffusers folder's) holds ", held, " of the ", held + dropped,
             " layers, without the last (stop_at_clip_layer -", dropped + 1, " to -",
             held + dropped, " work)");
    o.clip_skip -= dropped;
  }
  if (open_clip) o.pad_token = kOpenClipPad;
  // layer_norm_hidden_state: SD 1.x and SD 2.x yes; SDXL's encoders (base and refiner) no,
  // except that a layer beyond the count is ComfyUI's "last", which is normed.
  const bool sdxl = clip.family == ModelFamily::Sdxl || clip.family == ModelFamily::SdxlRefiner;
  o.norm_hidden = !sdxl || clip.clip_skip > enc.config().layers;
  // SDXL's UNet takes bigG's pooled output.
  o.pooled = sdxl && open_clip;
  o.embeddings = (open_clip ? clip.open_clip_embeddings : clip.embeddings).get();
  return o;
}

// [1, T, C] followed by `extra` copies of `chunk` [1, 77, C] along the tokens.
Tensor pad_chunks(const Tensor& context, const Tensor& chunk, int64_t extra) {
  if (extra == 0) return context;
  const int64_t t = context.dim(1), c = context.dim(2), ct = chunk.dim(1);
  Tensor out = Tensor::empty({1, t + extra * ct, c}, DType::F32);
  std::memcpy(out.data<float>(), context.data<float>(), context.nbytes());
  for (int64_t i = 0; i < extra; ++i)
    std::memcpy(out.data<float>() + (t + i * ct) * c, chunk.data<float>(), chunk.nbytes());
  return out;
}

// [1, T, A] ‖ [1, T, B] on the channels → [1, T, A + B].
Tensor cat_channels(const Tensor& a, const Tensor& b) {
  const int64_t t = a.dim(1), ca = a.dim(2), cb = b.dim(2);
  DR_ASSERT(b.dim(1) == t, "token counts ", t, " and ", b.dim(1));
  Tensor out = Tensor::empty({1, t, ca + cb}, DType::F32);
  for (int64_t i = 0; i < t; ++i) {
    std::memcpy(out.data<float>() + i * (ca + cb), a.data<float>() + i * ca,
                static_cast<size_t>(ca) * sizeof(float));
    std::memcpy(out.data<float>() + i * (ca + cb) + ca, b.data<float>() + i * cb,
                static_cast<size_t>(cb) * sizeof(float));
  }
  return out;
}

void check(const ClipHandle& clip, const char* node) {
  DR_CHECK(clip.tokenizer && (clip.encoder || clip.open_clip), node,
           "ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node "
           "your checkpoint does not contain a valid clip or text encoder model.");
}

}  // namespace

ClipHandle with_embedding_folders(ClipHandle clip, const std::vector<std::string>& folders) {
  // ComfyUI's embedding_key per text model (sd1_clip.py, sd2_clip.py, sdxl_clip.py).
  if (clip.encoder)
    clip.embeddings = std::make_shared<const text::EmbeddingDirectory>(
        folders, clip.encoder->config().width, "clip_l");
  if (clip.open_clip)
    clip.open_clip_embeddings = std::make_shared<const text::EmbeddingDirectory>(
        folders, clip.open_clip->config().width,
        clip.family == ModelFamily::Sd2 ? "clip_h" : "clip_g");
  return clip;
}

CondEntry encode_text(const ClipHandle& clip, std::string_view text) {
  if (clip.family == ModelFamily::Sdxl) return encode_text(clip, text, text);
  check(clip, "CLIPTextEncode");
  const bool open_clip = clip.family != ModelFamily::Sd15;
  DR_CHECK(open_clip ? clip.open_clip != nullptr : clip.encoder != nullptr, "CLIPTextEncode",
           "the ", family_name(clip.family), " CLIP has no text encoder loaded");
  const ClipTextEncoder& enc = open_clip ? *clip.open_clip : *clip.encoder;
  const EncodedPrompt e =
      encode_prompt_pooled(*clip.tokenizer, enc, text, options_for(clip, enc, open_clip));
  CondEntry out;
  out.context = e.context;
  out.pooled = e.pooled;
  return out;
}

CondEntry encode_text(const ClipHandle& clip, std::string_view text_g, std::string_view text_l) {
  check(clip, "CLIPTextEncodeSDXL");
  DR_CHECK(clip.family == ModelFamily::Sdxl && clip.encoder && clip.open_clip, "CLIPTextEncodeSDXL",
           "needs SDXL's two text encoders (CLIP-L and bigG); this CLIP is ",
           family_name(clip.family), "'s");
  const ClipTextEncoder& l = *clip.encoder;
  const ClipTextEncoder& g = *clip.open_clip;
  const PromptEncodeOptions lo = options_for(clip, l, false), go = options_for(clip, g, true);
  const EncodedPrompt eg = encode_prompt_pooled(*clip.tokenizer, g, text_g, go);
  Tensor zl = encode_prompt_pooled(*clip.tokenizer, l, text_l, lo).context;
  Tensor zg = eg.context;
  // CLIPTextEncodeSDXL: the shorter token list gets whole empty-prompt chunks (weight 1, so
  // each is the encoder's output for "" at every position).
  if (zl.dim(1) < zg.dim(1)) {
    PromptEncodeOptions o = lo;
    o.pooled = false;
    zl = pad_chunks(zl, encode_prompt_pooled(*clip.tokenizer, l, "", o).context,
                    (zg.dim(1) - zl.dim(1)) / l.config().positions);
  } else if (zg.dim(1) < zl.dim(1)) {
    PromptEncodeOptions o = go;
    o.pooled = false;
    zg = pad_chunks(zg, encode_prompt_pooled(*clip.tokenizer, g, "", o).context,
                    (zl.dim(1) - zg.dim(1)) / g.config().positions);
  }
  CondEntry out;
  out.context = cat_channels(zl, zg);  // [1, 77k, 768 + 1280]
  out.pooled = eg.pooled;
  return out;
}

}  // namespace darkroom::pipeline
