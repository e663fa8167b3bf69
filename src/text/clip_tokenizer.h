// CLIP's text tokenizer: prompt text -> token ids, the same ids as Hugging Face
// transformers' CLIPTokenizer (the Python one of transformers 4.x, without ftfy, which is
// what ComfyUI and diffusers run):
//
//   text ──split at "<|startoftext|>" / "<|endoftext|>" (as added tokens, exact spelling)──>
//   segments ──clip_clean_words (clip_text_clean.h)──> lower-case words
//   ──clip_pretokenize (clip_pretokenize.h)──> pieces ──byte-level BPE (clip_bpe.h)──> ids
//
// A token the vocabulary lacks becomes the unknown token, <|endoftext|>. Results of BPE are
// cached per piece; encode() is safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/clip_bpe.h"
#include "text/clip_vocab.h"

namespace darkroom::text {

class ClipTokenizer {
 public:
  // vocab.json + merges.txt of a Hugging Face tokenizer folder.
  static ClipTokenizer from_hf_folder(const std::filesystem::path& dir);
  // OpenAI's bpe_simple_vocab_16e6.txt.gz.
  static ClipTokenizer from_openai_bpe(const std::filesystem::path& gz_file);
  // The model's tokenizer folder if it holds vocab.json and merges.txt (pass an empty path
  // when the model has none), else `bpe_file`. Neither there: darkroom::Error
  // "[clip tokenizer] no vocabulary: ...".
  static ClipTokenizer load(const std::filesystem::path& model_tokenizer_dir,
                            const std::filesystem::path& bpe_file);

  // The vocabulary must hold <|startoftext|> and <|endoftext|>.
  explicit ClipTokenizer(ClipVocab vocab);
  ~ClipTokenizer();
  ClipTokenizer(ClipTokenizer&&) noexcept;
  ClipTokenizer& operator=(ClipTokenizer&&) noexcept;

  // The ids of `text`, without the start and end tokens.
  std::vector<int32_t> encode(std::string_view text) const;
  // <|startoftext|>, encode(text), <|endoftext|>: transformers' tokenizer(text)["input_ids"].
  std::vector<int32_t> encode_with_special(std::string_view text) const;

  int32_t start_token() const { return start_; }
  int32_t end_token() const { return end_; }
  // Ids of tokens the vocabulary lacks (CLIPTokenizer's unk_token, <|endoftext|>).
  int32_t unknown_token() const { return end_; }
  std::optional<int32_t> token_id(std::string_view token) const;
  // The token (byte-character spelling, "</w>" marking a word's end) of an id; empty if
  // no token has it.
  std::string_view token_text(int32_t id) const;
  size_t vocab_size() const { return vocab_.size(); }

 private:
  void encode_segment(std::string_view text, std::vector<int32_t>& out) const;
  void encode_piece(std::u32string_view piece, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<int32_t, std::string> tokens_;  // id -> token
  std::unique_ptr<ClipBpe> bpe_;
  std::vector<int32_t> symbol_ids_;  // BPE symbol -> vocabulary id (unknown if absent)
  int32_t start_ = 0;
  int32_t end_ = 0;
  struct Cache;
  std::unique_ptr<Cache> cache_;
};

}  // namespace darkroom::text
