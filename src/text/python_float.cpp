#include "text/python_float.h"

#include <charconv>
#include <cmath>
#include <string>

#include "text/unicode.h"

namespace darkroom::text {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_c_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool equals_ignore_case(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// Python's float grammar on ASCII without underscores; the parsed value, or nullopt.
std::optional<double> parse_ascii(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (equals_ignore_case(s, "inf") || equals_ignore_case(s, "infinity")) {
    return negative ? -INFINITY : INFINITY;
  }
  if (equals_ignore_case(s, "nan")) return negative ? -NAN : NAN;
  // digits [. [digits]] | . digits, then an optional exponent.
  size_t i = 0, int_digits = 0, frac_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return std::nullopt;
  const size_t mantissa_end = i;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && is_digit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;

  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) {
    // Too large or too small for a double: Python gives ±inf or ±0. A mantissa that is
    // all zeros cannot overflow; otherwise the decimal exponent's sign decides.
    const bool zero_mantissa =
        s.substr(0, mantissa_end).find_first_of("123456789") == std::string_view::npos;
    const size_t e = s.find_first_of("eE");
    const bool big = !zero_mantissa && e != std::string_view::npos && s[e + 1] != '-';
    value = big ? INFINITY : 0.0;
  } else if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return negative ? -value : value;
}

}  // namespace

std::optional<double> parse_python_float(std::string_view s) {
  // _PyUnicode_TransformDecimalAndSpaceToASCII: characters below 127 stay, non-ASCII
  // whitespace becomes ' ', non-ASCII decimal digits their ASCII digit; anything else
  // (DEL included) ends the string with '?', which no float parses.
  std::string ascii;
  for (char32_t c : utf8_to_u32(s)) {
    if (c < 127) {
      ascii.push_back(static_cast<char>(c));
    } else if (is_python_space(c)) {
      ascii.push_back(' ');
    } else if (int d = decimal_digit_value(c); d >= 0) {
      ascii.push_back(static_cast<char>('0' + d));
    } else {
      return std::nullopt;
    }
  }
  std::string_view v = ascii;
  while (!v.empty() && is_c_space(v.front())) v.remove_prefix(1);
  while (!v.empty() && is_c_space(v.back())) v.remove_suffix(1);
  // _Py_string_to_number_with_underscores: each '_' must sit between two digits.
  std::string plain;
  char prev = '\0';
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (c == '_') {
      if (!is_digit(prev)) return std::nullopt;
    } else {
      if (prev == '_' && !is_digit(c)) return std::nullopt;
      plain.push_back(c);
    }
    prev = c;
  }
  if (prev == '_') return std::nullopt;
  return parse_ascii(plain);
}

}  // namespace darkroom::text
