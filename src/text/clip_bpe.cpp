#include "text/clip_bpe.h"

#include <limits>

#include "core/error.h"
#include "text/unicode.h"

namespace darkroom::text {

namespace {

struct ByteTables {
  std::array<char32_t, 256> chars{};
  std::array<uint8_t, 256> order{};
};

// bytes_to_unicode(): '!'..'~', '¡'..'¬' and '®'..'ÿ' map to themselves and come first;
// the remaining bytes, ascending, map to U+0100, U+0101, ...
ByteTables make_byte_tables() {
  ByteTables t;
  std::array<bool, 256> printable{};
  int k = 0;
  for (int b = 0; b < 256; ++b) {
    printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable[b]) {
      t.chars[b] = static_cast<char32_t>(b);
      t.order[k++] = static_cast<uint8_t>(b);
    }
  }
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    if (!printable[b]) {
      t.chars[b] = next++;
      t.order[k++] = static_cast<uint8_t>(b);
    }
  }
  DR_ASSERT(k == 256);
  return t;
}

const ByteTables& byte_tables() {
  static const ByteTables t = make_byte_tables();
  return t;
}

}  // namespace

const std::array<char32_t, 256>& clip_byte_chars() {
  return byte_tables().chars;
}
const std::array<uint8_t, 256>& clip_byte_order() {
  return byte_tables().order;
}

ClipBpe::ClipBpe(const std::vector<BpeMerge>& merges) {
  const auto& chars = clip_byte_chars();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, chars[b]);
    intern(s);
  }
  for (int b = 0; b < 256; ++b) intern(symbols_[b] + "</w>");
  DR_ASSERT(symbols_.size() == 512, "byte characters are distinct");
  DR_CHECK(merges.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
           "clip tokenizer", "too many merges: ", merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [first, second] = merges[rank];
    const int32_t a = intern(first);
    const int32_t b = intern(second);
    const int32_t merged = intern(first + second);
    rules_[pair_key(a, b)] = Rule{static_cast<int32_t>(rank), merged};
  }
}

int32_t ClipBpe::intern(const std::string& s) {
  auto [it, inserted] = symbol_ids_.try_emplace(s, static_cast<int32_t>(symbols_.size()));
  if (inserted) symbols_.push_back(s);
  return it->second;
}

std::vector<int32_t> ClipBpe::apply(std::string_view piece_bytes) const {
  std::vector<int32_t> word;
  if (piece_bytes.empty()) return word;
  word.reserve(piece_bytes.size());
  for (size_t i = 0; i < piece_bytes.size(); ++i) {
    const auto b = static_cast<uint8_t>(piece_bytes[i]);
    word.push_back(i + 1 == piece_bytes.size() ? 256 + b : b);
  }
  std::vector<int32_t> next;
  next.reserve(word.size());
  while (word.size() > 1) {
    // The lowest-ranked adjacent pair (ranks are unique, so it is one pair of symbols).
    const Rule* best = nullptr;
    int32_t first = -1, second = -1;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = rules_.find(pair_key(word[i], word[i + 1]));
      if (it != rules_.end() && (best == nullptr || it->second.rank < best->rank)) {
        best = &it->second;
        first = word[i];
        second = word[i + 1];
      }
    }
    if (best == nullptr) break;
    next.clear();
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        next.push_back(best->result);
        i += 2;
      } else {
        next.push_back(word[i]);
        i += 1;
      }
    }
    word.swap(next);
  }
  return word;
}

}  // namespace darkroom::text
