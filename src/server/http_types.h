// What a route handler sees and returns: a parsed request (path without ComfyUI's "/api"
// prefix, decoded query, {name} captures, lower-case header names) and a response.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace darkroom::server {

using json = nlohmann::json;

struct Request {
  std::string method;                          // "GET", "POST", "DELETE", ...
  std::string path;                            // raw path, "/api" prefix removed
  std::map<std::string, std::string> query;    // percent- and '+'-decoded
  std::map<std::string, std::string> params;   // {name} segments of the route, decoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  std::string arg(const std::string& name, const std::string& fallback = "") const {
    auto it = query.find(name);
    return it == query.end() ? fallback : it->second;
  }
  bool has_arg(const std::string& name) const { return query.count(name) > 0; }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Response json_body(const json& j, int status = 200) {
    return {status, "application/json", j.dump(), {}};
  }
  static Response text(int status, std::string body) {
    return {status, "text/plain; charset=utf-8", std::move(body), {}};
  }
  static Response empty(int status = 200) { return {status, "text/plain; charset=utf-8", "", {}}; }
};

// "%2F" → "/", and '+' → ' ' when `plus_is_space` (query strings, as aiohttp reads them).
std::string url_decode(const std::string& s, bool plus_is_space);
// "a=1&b=x%20y" → {a: "1", b: "x y"}; the first of repeated keys wins.
std::map<std::string, std::string> parse_query(const std::string& query);

}  // namespace darkroom::server
