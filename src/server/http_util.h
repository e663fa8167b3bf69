// Small pieces of HTTP policy shared by the server: content types of static files,
// ComfyUI's Host-vs-Origin check, token comparison.
#pragma once

#include <string>

namespace darkroom::server {

// "index.html" → "text/html; charset=utf-8"; unknown → "application/octet-stream".
std::string content_type_for(const std::string& path);

// ComfyUI's origin_only_middleware: a browser request whose Origin names another host than
// its Host header is refused when the Host is a loopback address, so that a web page
// cannot queue prompts on a local server. Returns true if the request may proceed.
bool origin_allowed(const std::string& host_header, const std::string& origin_header);

// Whether `host` (an IP literal or a name) is a loopback address.
bool is_loopback_host(const std::string& host);

// Comparison whose time does not depend on where the strings differ.
bool equal_constant_time(const std::string& a, const std::string& b);

}  // namespace darkroom::server
