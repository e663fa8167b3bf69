#include "text/clip_text_clean.h"

#include "text/unicode.h"

namespace darkroom::text {

namespace {

// transformers' BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks and
// their extensions and compatibility blocks (not Hangul, kana or CJK punctuation).
bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_tab_newline(char32_t c) {
  return c == U'\t' || c == U'\n' || c == U'\r';
}

// Python's str.split() with no argument: the non-empty runs between whitespace.
void split_python_whitespace(std::u32string_view s, std::vector<std::u32string>& out) {
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_python_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_python_space(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
}

}  // namespace

std::vector<std::u32string> clip_clean_words(std::u32string_view text) {
  // Steps 1 and 2 in one pass.
  std::u32string cleaned;
  cleaned.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || (is_other(c) && !is_tab_newline(c))) continue;
    if (c == U' ' || is_tab_newline(c) || is_space_separator(c)) {
      cleaned.push_back(U' ');
    } else if (is_cjk_ideograph(c)) {
      cleaned.push_back(U' ');
      cleaned.push_back(c);
      cleaned.push_back(U' ');
    } else {
      cleaned.push_back(c);
    }
  }
  std::vector<std::u32string> words;
  split_python_whitespace(nfc(cleaned), words);
  // BasicTokenizer lower-cases word by word and splits the joined result at whitespace
  // once more; lower-casing never makes whitespace, but the second split is kept so that
  // this stays a transcription of what it does.
  std::vector<std::u32string> out;
  out.reserve(words.size());
  for (const auto& w : words) split_python_whitespace(to_lower(w), out);
  return out;
}

}  // namespace darkroom::text
