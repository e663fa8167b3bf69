#include "server/http_util.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <map>
#include <optional>

#include "server/http_types.h"

namespace darkroom::server {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A netloc "host:port" / "[v6]:port" split as Python's urlsplit does it.
struct NetLoc {
  std::string hostname;  // lower-case, no brackets
  std::optional<std::string> port;
};

NetLoc split_netloc(const std::string& netloc) {
  NetLoc n;
  std::string s = netloc;
  const size_t at = s.rfind('@');
  if (at != std::string::npos) s = s.substr(at + 1);
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    n.hostname = s.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    if (close != std::string::npos && close + 1 < s.size() && s[close + 1] == ':')
      n.port = s.substr(close + 2);
  } else {
    const size_t colon = s.rfind(':');
    n.hostname = s.substr(0, colon);
    if (colon != std::string::npos) n.port = s.substr(colon + 1);
  }
  if (n.port && n.port->empty()) n.port.reset();
  n.hostname = lower(n.hostname);
  return n;
}

}  // namespace

std::string url_decode(const std::string& s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
      if (h >= 0 && l >= 0) {
        out += static_cast<char>(h * 16 + l);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && s[i] == '+') ? ' ' : s[i];
  }
  return out;
}

std::map<std::string, std::string> parse_query(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    const std::string key = url_decode(part.substr(0, eq), true);
    const std::string value = eq == std::string::npos ? "" : url_decode(part.substr(eq + 1), true);
    out.emplace(key, value);
  }
  return out;
}

std::string content_type_for(const std::string& path) {
  static const std::map<std::string, std::string> types = {
      {".html", "text/html; charset=utf-8"},
      {".js", "application/javascript; charset=utf-8"},
      {".mjs", "application/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".webp", "image/webp"},
      {".gif", "image/gif"},
      {".ico", "image/x-icon"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".ttf", "font/ttf"},
      {".otf", "font/otf"},
      {".txt", "text/plain; charset=utf-8"},
      {".wasm", "application/wasm"},
      {".mp3", "audio/mpeg"},
      {".wav", "audio/wav"},
      {".flac", "audio/flac"},
      {".mp4", "video/mp4"},
      {".webm", "video/webm"},
  };
  const size_t dot = path.rfind('.');
  const size_t slash = path.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
    return "application/octet-stream";
  auto it = types.find(lower(path.substr(dot)));
  return it == types.end() ? "application/octet-stream" : it->second;
}

bool is_loopback_host(const std::string& host) {
  if (host.empty()) return false;
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(host, ec);
  if (!ec) return addr.is_loopback();
  // A name: loopback only if every address it resolves to is (ComfyUI's is_loopback).
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return false;
  bool any = false, all = true;
  for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
    char buf[NI_MAXHOST];
    if (getnameinfo(p->ai_addr, p->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) != 0)
      continue;
    const auto a = boost::asio::ip::make_address(buf, ec);
    if (ec) continue;
    any = true;
    all = all && a.is_loopback();
  }
  freeaddrinfo(res);
  return any && all;
}

bool origin_allowed(const std::string& host_header, const std::string& origin_header) {
  if (host_header.empty() || origin_header.empty()) return true;
  const std::string host = lower(host_header);
  // urlparse(origin).netloc: the part after "scheme://" up to the next '/'.
  std::string origin_netloc;
  const size_t scheme = origin_header.find("://");
  if (scheme != std::string::npos) {
    origin_netloc = origin_header.substr(scheme + 3);
    origin_netloc = origin_netloc.substr(0, origin_netloc.find_first_of("/?#"));
  }
  origin_netloc = lower(origin_netloc);
  const NetLoc h = split_netloc(host);
  const NetLoc o = split_netloc(origin_netloc);
  if (!is_loopback_host(h.hostname)) return true;
  // Without a port on one side, compare host names only (as ComfyUI does).
  std::string host_domain = host, origin_domain = origin_netloc;
  if (!o.port) host_domain = h.hostname;
  if (!h.port) origin_domain = o.hostname;
  if (host_domain.empty() || origin_domain.empty()) return true;
  return host_domain == origin_domain;
}

bool equal_constant_time(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[b.empty() ? 0 : i % b.size()];
  return diff == 0 && !b.empty();
}

}  // namespace darkroom::server
