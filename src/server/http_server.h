// The HTTP + WebSocket front of `darkroom serve` on Boost.Beast: an async server run by a
// small pool of I/O threads, HTTP/1.1 keep-alive, body limits, ComfyUI's origin check or
// CORS header, optional Bearer-token auth, the /ws upgrade into the WebSocketHub, and the
// frontend's static files for every GET that no route claims.
//
// With tls_keyfile and tls_certfile set (builds with DARKROOM_HAVE_TLS), every connection
// is TLS first: HTTPS and WSS on the one port, plain HTTP answered with nothing.
//
// Handlers run on the I/O threads and must stay short: they read state, write small files
// or hand work to the queue. They never wait on a model.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "server/http_types.h"
#include "server/ws_hub.h"

namespace darkroom::server {

struct ServerOptions {
  std::string listen = "127.0.0.1";
  uint16_t port = 8188;  // 0: any free port (printed at start)
  int threads = 4;
  uint64_t max_body_bytes = 100ull << 20;  // --max-upload-size (ComfyUI: 100 MB)
  std::string auth_token;                  // "": no auth
  std::optional<std::string> cors_origin;  // --enable-cors-header; else the origin check
  std::string web_root;                    // the frontend's static files; "": none
  std::string tls_keyfile;                 // PEM private key; both set: HTTPS + WSS
  std::string tls_certfile;                // PEM certificate (chain)
};

using Handler = std::function<Response(const Request&)>;

class HttpServer {
 public:
  // Loads the TLS key and certificate when the options name them; a missing, unreadable or
  // mismatched file fails here, with OpenSSL's reason.
  explicit HttpServer(ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // `pattern` is a path like "/userdata/{file}/move/{dest}": each {name} matches one raw
  // segment (so "%2F" inside a name stays in it) and arrives decoded in Request::params.
  // Every route also answers under the "/api" prefix.
  void route(const std::string& method, const std::string& pattern, Handler handler);
  // Runs on every new websocket client (after it joined the hub) / on each text message.
  void on_ws_connect(std::function<void(const std::string& client_id)> fn);
  void on_ws_message(std::function<void(const std::string& client_id, const std::string& text)> fn);

  WebSocketHub& hub();
  const ServerOptions& options() const;
  // Request counters by status code and other transport figures, Prometheus text format.
  std::string metrics_text() const;

  // Binds and returns the port (useful with port 0).
  uint16_t bind();
  // Prints "darkroom: listening on http://HOST:PORT" (https:// with TLS) and serves until
  // SIGINT/SIGTERM.
  void run();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace darkroom::server
