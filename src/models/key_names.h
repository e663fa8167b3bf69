// Dotted checkpoint key names ("down_blocks.1.attentions.0.proj_in.weight") split into
// their parts and joined back; shared by the diffusers → ldm renamers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace darkroom {

inline std::vector<std::string> split_key(std::string_view name) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = name.find('.', start)) != std::string_view::npos; start = dot + 1)
    parts.emplace_back(name.substr(start, dot - start));
  parts.emplace_back(name.substr(start));
  return parts;
}

// Parts [from, end) joined with dots.
inline std::string join_key(const std::vector<std::string>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) {
    if (i > from) out += '.';
    out += parts[i];
  }
  return out;
}

}  // namespace darkroom
