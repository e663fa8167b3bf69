// ComfyUI's prompt weighting and 77-token chunking (comfy/sd1_clip.py: token_weights,
// escape_important, SDTokenizer.tokenize_with_weights), so that a prompt gives the same
// tokens, weights and chunks as in ComfyUI:
//
//   "(word)" x1.1, "((word))" x1.21 (1.1 * 1.1 in double), "(word:1.3)" exactly 1.3 (the
//   text after the last ':' read by Python's float(); if that fails, the ':' stays text
//   and the weight is x1.1), "\(" and "\)" literal parentheses; '[', '{', '<' are plain
//   text. Unbalanced parentheses are tolerated as ComfyUI tolerates them.
//
//   "embedding:name" (at the start of a weighted segment, or after a space or newline)
//   names a textual-inversion embedding: its vectors take token positions. Finding the
//   vectors is the caller's (EmbeddingLookup); here only names and counts matter.
//
//   Each weighted segment (and each embedding's leftover text) is tokenized whole and is
//   one "word" group. Groups are packed into chunks of max_length (77): start token, up to
//   75 tokens, end token, padding. A group that does not fit in the current chunk moves
//   to the next one whole, unless it has 8 tokens or more: then it is cut at the chunk's
//   end and continues in the next.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "text/clip_tokenizer.h"

namespace darkroom::text {

// ---- weighting (text only) ----

struct WeightedSegment {
  std::string text;
  double weight;
};

// "\)" -> "\0\1" and "\(" -> "\0\2", so that escaped parentheses do not nest.
std::string escape_important(std::string_view text);
std::string unescape_important(std::string_view text);
// Splits at top-level parentheses: "a (b (c)) d" -> ["a ", "(b (c))", " d"].
std::vector<std::string> parse_parentheses(std::string_view text);
// The weighted segments of an escaped prompt, outermost weight `weight`.
std::vector<WeightedSegment> token_weights(std::string_view text, double weight);

// ---- tokens and chunks ----

// The id of a position that holds an embedding vector instead of a token.
inline constexpr int32_t kEmbeddingToken = -1;

struct PromptToken {
  int32_t id;              // token id, or kEmbeddingToken
  double weight;           // 1.0 for start, end and padding
  int32_t word;            // ComfyUI's word id: 0 for start, end and padding, else 1 + group index
  int32_t embedding = -1;  // index into PromptTokens::embeddings when id == kEmbeddingToken
  int32_t embedding_row = 0;  // which vector of that embedding
};

struct PromptTokens {
  std::vector<std::vector<PromptToken>> chunks;  // each max_length long (pad_to_max_length)
  std::vector<std::string> embeddings;           // names, as the lookup found them
};

// The number of vectors of the embedding called `name`, or nullopt if there is none
// (ComfyUI's load_embed returning None). Called with the name as written and, if that
// fails and it has leading or trailing commas, again without them.
using EmbeddingLookup = std::function<std::optional<int32_t>(const std::string& name)>;

struct ChunkOptions {
  int max_length = 77;
  // Padding token; unset: the end token (SD1.x, SDXL's CLIP-L). SDXL's CLIP-G pads with 0.
  std::optional<int32_t> pad_token;
  bool pad_to_max_length = true;
  int min_length = 0;  // pad the last chunk to at least this many positions
};

// ComfyUI's SDTokenizer.tokenize_with_weights(text, return_word_ids=True). Without a
// lookup (ComfyUI with no embedding directory) "embedding:name" is plain text; with one,
// a name that is not found is dropped with a warning, as ComfyUI does. An "embedding:"
// with no name throws darkroom::Error (ComfyUI raises IndexError).
PromptTokens tokenize_with_weights(const ClipTokenizer& tokenizer, std::string_view text,
                                   const EmbeddingLookup& embeddings = nullptr,
                                   const ChunkOptions& options = {});

}  // namespace darkroom::text
