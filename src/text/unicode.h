// Unicode helpers for the CLIP tokenizer: UTF-8 <-> code points, and the character classes,
// normalisation and case mapping that Python (unicodedata, str.lower, str.isspace, float)
// and the `regex` module apply, taken from ICU rather than hand tables.
//
// Unicode versions: ICU 72 (Debian 12) knows Unicode 15, Python 3.11 Unicode 14; they
// differ only on characters first assigned in Unicode 15.
#pragma once

#include <string>
#include <string_view>

namespace darkroom::text {

// Decodes UTF-8. Each byte that does not start a well-formed sequence (bad lead byte,
// truncated, overlong, surrogate, > U+10FFFF) becomes one U+FFFD, which the CLIP cleanup
// then drops.
std::u32string utf8_to_u32(std::string_view s);
std::string to_utf8(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);

// General category L* (regex's \p{L}).
bool is_letter(char32_t c);
// General category N* (regex's \p{N}).
bool is_number(char32_t c);
// General category C* (Cc, Cf, Cs, Co, Cn): what transformers' _is_control tests.
bool is_other(char32_t c);
// General category Zs.
bool is_space_separator(char32_t c);
// Python's str.isspace(): bidirectional class WS, B or S, or category Zs.
bool is_python_space(char32_t c);
// The value of a decimal digit (category Nd), else -1: Python's Py_UNICODE_TODECIMAL.
int decimal_digit_value(char32_t c);

// Canonical composition (unicodedata.normalize("NFC", s)).
std::u32string nfc(std::u32string_view s);
// Full lower-case mapping with the root locale's context rules (final sigma, İ -> i̇), as
// Python's str.lower() does.
std::u32string to_lower(std::u32string_view s);

}  // namespace darkroom::text
