// Parser of the reference tensor lists (tests/data/reference/*.tsv).
#include <cctype>
#include <cstdlib>

#include "core/error.h"
#include "pipeline/reference_tensors.h"

namespace darkroom::pipeline {

std::vector<std::pair<std::string, Shape>> parse_tensor_list(std::string_view tsv) {
  std::vector<std::pair<std::string, Shape>> out;
  size_t line_no = 0;
  while (!tsv.empty()) {
    const size_t nl = tsv.find('\n');
    std::string_view line = tsv.substr(0, nl);
    tsv = nl == std::string_view::npos ? std::string_view{} : tsv.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    DR_CHECK(tab != std::string_view::npos && tab > 0, "tensor list", "line ", line_no,
             ": expected name<TAB>[shape], got '", line, "'");
    std::string dims(line.substr(tab + 1));
    DR_CHECK(dims.size() >= 2 && dims.front() == '[' && dims.back() == ']', "tensor list", "line ",
             line_no, ": bad shape '", dims, "'");
    std::vector<int64_t> d;
    const char* p = dims.c_str() + 1;
    while (*p != ']') {
      while (*p == ' ' || *p == ',') ++p;
      if (*p == ']') break;
      char* end = nullptr;
      const long long v = std::strtoll(p, &end, 10);
      DR_CHECK(end != p && v >= 0, "tensor list", "line ", line_no, ": bad shape '", dims, "'");
      d.push_back(v);
      p = end;
    }
    out.emplace_back(std::string(line.substr(0, tab)), Shape(std::move(d)));
  }
  return out;
}

}  // namespace darkroom::pipeline
