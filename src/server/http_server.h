// The HTTP front of `darkroom serve` on Boost.Beast. This first cut serves the
// health and system routes; the ComfyUI API (issue 5) grows on the same router.
// HTTP threads never run a model: handlers only read state or post work.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace darkroom::server {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

struct ServerOptions {
  std::string listen = "127.0.0.1";
  uint16_t port = 8188;  // 0: any free port (printed at start)
  int threads = 4;
};

using Handler = std::function<HttpResponse(const std::string& target)>;

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  // Routes match the path exactly, with or without ComfyUI's "/api" prefix.
  void route(const std::string& path, Handler handler);
  // Binds, prints "darkroom: listening on http://HOST:PORT", and serves until the
  // process is stopped.
  [[noreturn]] void run();

 private:
  HttpResponse dispatch(const std::string& method, const std::string& target) const;
  void serve_connection(void* socket) const;

  ServerOptions options_;
  std::map<std::string, Handler> routes_;
};

}  // namespace darkroom::server
