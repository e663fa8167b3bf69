// Byte-level BPE as CLIP uses it (OpenAI's simple_tokenizer.py, transformers'
// CLIPTokenizer.bpe):
//
//   - each UTF-8 byte of a piece is a symbol, written as a printable character
//     (bytes_to_unicode: the printable Latin-1 bytes stand for themselves, the other 68
//     bytes for U+0100 ...); the last symbol carries the end-of-word mark "</w>";
//   - repeatedly, the adjacent pair with the lowest merge rank is merged everywhere in the
//     word (left to right, without overlap), until no pair has a rank or one symbol is left.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace darkroom::text {

// bytes_to_unicode(): the character that stands for each byte.
const std::array<char32_t, 256>& clip_byte_chars();
// The bytes in the order bytes_to_unicode() lists them (the printable ones first), which
// is the order of the first 256 (and the next 256, "</w>") entries of CLIP's vocabulary.
const std::array<uint8_t, 256>& clip_byte_order();

// A merge rule: two symbols, in the byte-character spelling of merges.txt.
using BpeMerge = std::pair<std::string, std::string>;

class ClipBpe {
 public:
  // `merges` in rank order (rank = index). As in Python's dict(zip(merges, ranks)), a pair
  // listed twice keeps its later rank.
  explicit ClipBpe(const std::vector<BpeMerge>& merges);

  // The symbols that BPE leaves of a piece (its raw UTF-8 bytes), as symbol ids.
  std::vector<int32_t> apply(std::string_view piece_bytes) const;

  // Every symbol BPE can produce: the 256 byte characters (id = byte), the same with
  // "</w>" (id = 256 + byte), then each merge's result.
  int32_t num_symbols() const { return static_cast<int32_t>(symbols_.size()); }
  const std::string& symbol(int32_t id) const { return symbols_[id]; }

 private:
  int32_t intern(const std::string& s);
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  struct Rule {
    int32_t rank;
    int32_t result;  // symbol id of the merged pair
  };
  std::vector<std::string> symbols_;
  std::unordered_map<std::string, int32_t> symbol_ids_;
  std::unordered_map<uint64_t, Rule> rules_;
};

}  // namespace darkroom::text
