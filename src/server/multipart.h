// multipart/form-data bodies (RFC 7578) as ComfyUI's upload routes receive them.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace darkroom::server {

struct FormPart {
  std::string name;
  std::optional<std::string> filename;  // set for file parts
  std::string content_type;
  std::string data;
};

// Parses `body` given the request's Content-Type header. Throws darkroom::Error (→ 400)
// when the header has no boundary or the body is not well formed. The first part of a
// repeated name wins.
std::map<std::string, FormPart> parse_multipart(const std::string& content_type,
                                                const std::string& body);

}  // namespace darkroom::server
