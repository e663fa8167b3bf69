#include "text/clip_pretokenize.h"

#include "text/unicode.h"

namespace darkroom::text {

namespace {

// One character of a literal alternative against text, case-insensitively as `regex`
// does it (simple case folding): ASCII letters in either case, and 's' as U+017F.
bool literal_char_matches(char pattern, char32_t c) {
  if (c == static_cast<char32_t>(pattern)) return true;
  if (pattern >= 'a' && pattern <= 'z' && c == static_cast<char32_t>(pattern - 'a' + 'A')) {
    return true;
  }
  return pattern == 's' && c == 0x017F;
}

// Length of `literal` if `s` starts with it, else 0.
size_t match_literal(std::u32string_view s, std::string_view literal) {
  if (s.size() < literal.size()) return 0;
  for (size_t i = 0; i < literal.size(); ++i) {
    if (!literal_char_matches(literal[i], s[i])) return 0;
  }
  return literal.size();
}

// The literal alternatives, in the pattern's order.
constexpr std::string_view kLiterals[] = {
    "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};

}  // namespace

void clip_pretokenize(std::u32string_view word, std::vector<std::u32string_view>& pieces) {
  size_t i = 0;
  while (i < word.size()) {
    const std::u32string_view rest = word.substr(i);
    size_t len = 0;
    for (std::string_view lit : kLiterals) {
      if ((len = match_literal(rest, lit)) > 0) break;
    }
    if (len == 0) {
      const char32_t c = rest[0];
      if (is_letter(c)) {
        len = 1;
        while (len < rest.size() && is_letter(rest[len])) ++len;
      } else if (is_number(c)) {
        len = 1;
      } else if (!is_python_space(c)) {
        // [^\s\p{L}\p{N}]+ (the words hold no whitespace, but a stray one is skipped
        // below as findall would).
        len = 1;
        while (len < rest.size() && !is_letter(rest[len]) && !is_number(rest[len]) &&
               !is_python_space(rest[len])) {
          ++len;
        }
      }
    }
    if (len == 0) {
      ++i;  // whitespace: no alternative matches here
      continue;
    }
    pieces.push_back(rest.substr(0, len));
    i += len;
  }
}

}  // namespace darkroom::text
