// The weighting half of prompt_weights.h: ComfyUI's parse_parentheses, token_weights and
// the escaping of "\(" / "\)". Parentheses, '\\' and ':' are ASCII and never part of a
// multi-byte UTF-8 sequence, so working on bytes finds the same positions Python finds
// on characters.
#include "text/prompt_weights.h"

#include "text/python_float.h"

namespace darkroom::text {

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

constexpr std::string_view kEscapedClose("\0\1", 2);
constexpr std::string_view kEscapedOpen("\0\2", 2);

}  // namespace

std::string escape_important(std::string_view text) {
  std::string s(text);
  replace_all(s, "\\)", kEscapedClose);
  replace_all(s, "\\(", kEscapedOpen);
  return s;
}

std::string unescape_important(std::string_view text) {
  std::string s(text);
  replace_all(s, kEscapedClose, ")");
  replace_all(s, kEscapedOpen, "(");
  return s;
}

std::vector<std::string> parse_parentheses(std::string_view text) {
  // The nesting level may go negative on a stray ')'; the item then runs on, as in
  // ComfyUI, until the level returns to zero.
  std::vector<std::string> result;
  std::string current;
  int nesting = 0;
  for (char c : text) {
    if (c == '(') {
      if (nesting == 0) {
        if (!current.empty()) result.push_back(current);
        current = "(";
      } else {
        current += c;
      }
      ++nesting;
    } else if (c == ')') {
      --nesting;
      if (nesting == 0) {
        result.push_back(current + ")");
        current.clear();
      } else {
        current += c;
      }
    } else {
      current += c;
    }
  }
  if (!current.empty()) result.push_back(current);
  return result;
}

std::vector<WeightedSegment> token_weights(std::string_view text, double weight) {
  std::vector<WeightedSegment> out;
  for (const std::string& item : parse_parentheses(text)) {
    if (item.size() >= 2 && item.front() == '(' && item.back() == ')') {
      std::string inner = item.substr(1, item.size() - 2);
      double w = weight * 1.1;
      const size_t colon = inner.rfind(':');
      if (colon != std::string::npos && colon > 0) {
        if (auto v = parse_python_float(std::string_view(inner).substr(colon + 1))) {
          w = *v;
          inner.resize(colon);
        }
      }
      auto nested = token_weights(inner, w);
      out.insert(out.end(), std::make_move_iterator(nested.begin()),
                 std::make_move_iterator(nested.end()));
    } else {
      out.push_back({item, weight});
    }
  }
  return out;
}

}  // namespace darkroom::text
