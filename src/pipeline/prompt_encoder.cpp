#include "pipeline/prompt_encoder.h"

#include <cstring>
#include <vector>

#include "core/error.h"
#include "text/prompt_weights.h"

namespace darkroom::pipeline {

Tensor encode_prompt(const text::ClipTokenizer& tokenizer, const ClipTextEncoder& clip,
                     std::string_view prompt, int clip_skip) {
  const int64_t positions = clip.config().positions;
  text::ChunkOptions chunking;
  chunking.max_length = static_cast<int>(positions);
  const text::PromptTokens tokens =
      text::tokenize_with_weights(tokenizer, prompt, nullptr, chunking);
  DR_CHECK(tokens.embeddings.empty(), "prompt",
           "textual-inversion embeddings are not supported yet");
  const int64_t chunks = static_cast<int64_t>(tokens.chunks.size());
  DR_ASSERT(chunks > 0);

  bool weighted = false;
  for (const auto& chunk : tokens.chunks)
    for (const text::PromptToken& t : chunk) weighted |= t.weight != 1.0;

  // ids [chunks (+1 empty prompt when weighted), P]
  const int64_t rows = chunks + (weighted ? 1 : 0);
  Tensor ids = Tensor::empty({rows, positions}, DType::I32);
  int32_t* p = ids.data<int32_t>();
  for (int64_t c = 0; c < chunks; ++c) {
    const auto& chunk = tokens.chunks[static_cast<size_t>(c)];
    DR_ASSERT(static_cast<int64_t>(chunk.size()) == positions, "chunk of ", chunk.size());
    for (int64_t i = 0; i < positions; ++i) {
      const int32_t id = chunk[static_cast<size_t>(i)].id;
      DR_CHECK(id >= 0 && id < clip.vocab_size(), "prompt", "token id ", id,
               " is outside the text model's vocabulary of ", clip.vocab_size());
      p[c * positions + i] = id;
    }
  }
  if (weighted) {  // ComfyUI's gen_empty_tokens: start, end, then end as padding (SD 1.x)
    int32_t* e = p + chunks * positions;
    e[0] = tokenizer.start_token();
    for (int64_t i = 1; i < positions; ++i) e[i] = tokenizer.end_token();
  }

  ClipEncodeOptions options;
  options.clip_skip = clip_skip;
  options.pooled = false;
  const Tensor hidden = clip.encode(ids, options).hidden;  // [rows, P, C]
  const int64_t width = hidden.dim(2);
  std::vector<float> z = hidden.to_floats();
  if (weighted) {
    const float* empty = z.data() + chunks * positions * width;
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t i = 0; i < positions; ++i) {
        const double w = tokens.chunks[static_cast<size_t>(c)][static_cast<size_t>(i)].weight;
        if (w == 1.0) continue;
        float* row = z.data() + (c * positions + i) * width;
        const float* e = empty + i * width;
        // torch: (z - z_empty) * weight + z_empty in the hidden state's dtype, the weight a
        // Python float.
        for (int64_t k = 0; k < width; ++k) row[k] = static_cast<float>((row[k] - e[k]) * w + e[k]);
      }
  }
  // The chunks back to back are already [1, chunks·P, C] in memory.
  z.resize(static_cast<size_t>(chunks * positions * width));
  return Tensor::from_floats(z, {1, chunks * positions, width});
}

Tensor repeat_tokens(const Tensor& context, int64_t tokens) {
  const int64_t b = context.dim(0), t = context.dim(1), c = context.dim(2);
  DR_CHECK(tokens % t == 0, "prompt", "cannot repeat ", t, " tokens to ", tokens);
  if (tokens == t) return context;
  Tensor out = Tensor::empty({b, tokens, c}, DType::F32);
  const size_t row = static_cast<size_t>(t * c) * sizeof(float);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t r = 0; r < tokens / t; ++r)
      std::memcpy(out.data<float>() + (i * tokens + r * t) * c, context.data<float>() + i * t * c,
                  row);
  return out;
}

}  // namespace darkroom::pipeline
