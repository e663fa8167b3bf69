#include "server/multipart.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace darkroom::server {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// The value of `key=` in a header like `form-data; name="image"; filename="a.png"`.
std::optional<std::string> header_param(const std::string& header, const std::string& key) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t semi = pos;
    bool quoted = false;
    while (semi < header.size() && (quoted || header[semi] != ';')) {
      if (header[semi] == '"') quoted = !quoted;
      if (quoted && header[semi] == '\\') ++semi;
      ++semi;
    }
    const std::string item = trim(header.substr(pos, semi - pos));
    pos = semi + 1;
    const size_t eq = item.find('=');
    if (eq == std::string::npos || lower(trim(item.substr(0, eq))) != key) continue;
    std::string v = trim(item.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      std::string out;
      for (size_t i = 1; i + 1 < v.size(); ++i) {
        if (v[i] == '\\' && i + 2 < v.size()) ++i;
        out += v[i];
      }
      return out;
    }
    return v;
  }
  return std::nullopt;
}

}  // namespace

std::map<std::string, FormPart> parse_multipart(const std::string& content_type,
                                                const std::string& body) {
  DR_CHECK(lower(content_type).rfind("multipart/form-data", 0) == 0, "upload",
           "expected a multipart/form-data body, got Content-Type '", content_type, "'");
  const auto boundary = header_param(content_type, "boundary");
  DR_CHECK(boundary && !boundary->empty() && boundary->size() <= 200, "upload",
           "multipart Content-Type has no usable boundary");
  const std::string delim = "--" + *boundary;
  std::map<std::string, FormPart> parts;
  size_t pos = body.find(delim);
  DR_CHECK(pos != std::string::npos, "upload", "multipart body has no boundary line");
  for (;;) {
    pos += delim.size();
    if (body.compare(pos, 2, "--") == 0) break;  // the closing delimiter
    DR_CHECK(body.compare(pos, 2, "\r\n") == 0, "upload", "malformed multipart boundary line");
    pos += 2;
    const size_t header_end = body.find("\r\n\r\n", pos);
    DR_CHECK(header_end != std::string::npos, "upload", "multipart part without headers end");
    FormPart part;
    size_t line_start = pos;
    while (line_start < header_end) {
      size_t line_end = body.find("\r\n", line_start);
      if (line_end == std::string::npos || line_end > header_end) line_end = header_end;
      const std::string line = body.substr(line_start, line_end - line_start);
      line_start = line_end + 2;
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      const std::string name = lower(trim(line.substr(0, colon)));
      const std::string value = trim(line.substr(colon + 1));
      if (name == "content-disposition") {
        part.name = header_param(value, "name").value_or("");
        part.filename = header_param(value, "filename");
      } else if (name == "content-type") {
        part.content_type = value;
      }
    }
    const size_t data_start = header_end + 4;
    const size_t next = body.find("\r\n" + delim, data_start);
    DR_CHECK(next != std::string::npos, "upload", "multipart body ends inside a part");
    part.data = body.substr(data_start, next - data_start);
    if (!part.name.empty()) parts.emplace(part.name, std::move(part));
    pos = next + 2;
  }
  return parts;
}

}  // namespace darkroom::server
