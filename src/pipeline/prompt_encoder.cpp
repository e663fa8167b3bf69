#include "pipeline/prompt_encoder.h"

#include <cstring>
#include <optional>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"
#include "text/prompt_weights.h"

namespace darkroom::pipeline {

Tensor encode_prompt(const text::ClipTokenizer& tokenizer, const ClipTextEncoder& clip,
                     std::string_view prompt, int clip_skip) {
  PromptEncodeOptions options;
  options.clip_skip = clip_skip;
  return encode_prompt(tokenizer, clip, prompt, options);
}

Tensor encode_prompt(const text::ClipTokenizer& tokenizer, const ClipTextEncoder& clip,
                     std::string_view prompt, const PromptEncodeOptions& encode_options) {
  return encode_prompt_pooled(tokenizer, clip, prompt, encode_options).context;
}

EncodedPrompt encode_prompt_pooled(const text::ClipTokenizer& tokenizer,
                                   const ClipTextEncoder& clip, std::string_view prompt,
                                   const PromptEncodeOptions& encode_options) {
  const int64_t positions = clip.config().positions;
  text::ChunkOptions chunking;
  chunking.max_length = static_cast<int>(positions);
  chunking.pad_token = encode_options.pad_token;
  const text::EmbeddingDirectory* dir = encode_options.embeddings;
  DR_CHECK(!dir || dir->width() == clip.config().width, "prompt", "embeddings of width ",
           dir ? dir->width() : 0, " for a text model of width ", clip.config().width);
  const text::PromptTokens tokens = text::tokenize_with_weights(
      tokenizer, prompt, dir ? dir->lookup() : text::EmbeddingLookup(), chunking);
  // The vectors of the embeddings the prompt names (found, and so cached, by the lookup).
  std::vector<Tensor> vectors;
  for (const std::string& name : tokens.embeddings) {
    std::optional<Tensor> v = dir->find(name);
    DR_ASSERT(v.has_value(), "embedding ", name, " was counted but is gone");
    vectors.push_back(*v);
  }
  const int64_t chunks = static_cast<int64_t>(tokens.chunks.size());
  DR_ASSERT(chunks > 0);

  bool weighted = false;
  for (const auto& chunk : tokens.chunks)
    for (const text::PromptToken& t : chunk) weighted |= t.weight != 1.0;

  // ids [chunks (+1 empty prompt when weighted), P]
  const int64_t rows = chunks + (weighted ? 1 : 0);
  Tensor ids = Tensor::empty({rows, positions}, DType::I32);
  int32_t* p = ids.data<int32_t>();
  ClipTokenReplacement replace;
  std::vector<float> replaced;  // [positions replaced, C]
  for (int64_t c = 0; c < chunks; ++c) {
    const auto& chunk = tokens.chunks[static_cast<size_t>(c)];
    DR_ASSERT(static_cast<int64_t>(chunk.size()) == positions, "chunk of ", chunk.size());
    for (int64_t i = 0; i < positions; ++i) {
      const text::PromptToken& t = chunk[static_cast<size_t>(i)];
      if (t.id == text::kEmbeddingToken) {
        // Any valid id holds the place; the vector replaces its token embedding.
        p[c * positions + i] = 0;
        replace.positions.push_back(c * positions + i);
        const std::vector<float> v = vectors[static_cast<size_t>(t.embedding)]
                                         .narrow0(t.embedding_row, t.embedding_row + 1)
                                         .to_floats();
        replaced.insert(replaced.end(), v.begin(), v.end());
        continue;
      }
      const int32_t id = t.id;
      DR_CHECK(id >= 0 && id < clip.vocab_size(), "prompt", "token id ", id,
               " is outside the text model's vocabulary of ", clip.vocab_size());
      p[c * positions + i] = id;
    }
  }
  if (weighted) {  // ComfyUI's gen_empty_tokens: start, end, then the padding token
    int32_t* e = p + chunks * positions;
    e[0] = tokenizer.start_token();
    e[1] = tokenizer.end_token();
    for (int64_t i = 2; i < positions; ++i)
      e[i] = encode_options.pad_token.value_or(tokenizer.end_token());
  }

  if (!replace.positions.empty())
    replace.vectors = Tensor::from_floats(
        replaced, {static_cast<int64_t>(replace.positions.size()), clip.config().width});
  ClipEncodeOptions options;
  options.clip_skip = encode_options.clip_skip;
  options.norm_hidden = encode_options.norm_hidden;
  options.pooled = encode_options.pooled;
  const ClipTextOutput encoded = clip.encode(ids, options, replace);
  EncodedPrompt out;
  if (encode_options.pooled) {
    const Tensor pooled = ops::to_device(encoded.pooled, kCpu);  // [rows, P]
    out.pooled = Tensor::from_floats(ops::cast(pooled, DType::F32).narrow0(0, 1).to_floats(),
                                     {1, pooled.dim(1)});
  }
  // [rows, P, C], read on the CPU whatever device the text model runs on
  const Tensor hidden = ops::to_device(encoded.hidden, kCpu);
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
  out.context = Tensor::from_floats(z, {1, chunks * positions, width});
  return out;
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
