// Reading CLIP's vocabulary and BPE merges from either of the two places they ship in:
//
//   - a Hugging Face tokenizer folder (vocab.json + merges.txt; a diffusers model's
//     tokenizer/ folder, ComfyUI's comfy/sd1_tokenizer/), read as transformers'
//     CLIPTokenizer reads it: merges.txt stripped, its first line (the "#version" header)
//     skipped, at most 48894 merges;
//   - OpenAI's bpe_simple_vocab_16e6.txt.gz (merges only), with the vocabulary built as
//     CLIP's SimpleTokenizer builds it: the 256 byte characters, the same with "</w>",
//     one entry per merge, then <|startoftext|> and <|endoftext|>: 49408 entries.
//
// Errors are darkroom::Error "[clip tokenizer] <path>: ...".
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include "text/clip_bpe.h"

namespace darkroom::text {

// CLIP's merges count: 49152 - 256 - 2 (the slice both tokenizers take).
inline constexpr size_t kClipNumMerges = 48894;

struct ClipVocab {
  std::unordered_map<std::string, int32_t> ids;  // token (byte-character spelling) -> id
  std::vector<BpeMerge> merges;                  // in rank order
};

ClipVocab read_hf_tokenizer_folder(const std::filesystem::path& dir);
ClipVocab read_openai_bpe(const std::filesystem::path& gz_file);

// The two parsers on text in memory (the file readers above call these).
std::unordered_map<std::string, int32_t> parse_vocab_json(const std::string& text,
                                                          const std::string& where);
// merges.txt as transformers reads it.
std::vector<BpeMerge> parse_hf_merges(std::string_view text);
// OpenAI's merges file (decompressed) and the vocabulary SimpleTokenizer builds from it.
ClipVocab parse_openai_bpe(std::string_view text, const std::string& where);

}  // namespace darkroom::text
