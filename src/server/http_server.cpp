#include "server/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace darkroom::server {
namespace {
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

std::string json_error(const std::string& message) {
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return "{\"error\": {\"type\": \"not_found\", \"message\": \"" + escaped + "\"}}";
}
}  // namespace

HttpServer::HttpServer(ServerOptions options) : options_(std::move(options)) {}

void HttpServer::route(const std::string& path, Handler handler) {
  routes_[path] = std::move(handler);
}

HttpResponse HttpServer::dispatch(const std::string& method, const std::string& target) const {
  std::string path = target.substr(0, target.find('?'));
  if (path.rfind("/api/", 0) == 0) path = path.substr(4);
  auto it = routes_.find(path);
  if (it == routes_.end()) return {404, "application/json", json_error("no route " + path)};
  if (method != "GET" && method != "HEAD")
    return {405, "application/json", json_error(method + " is not allowed on " + path)};
  return it->second(target);
}

void HttpServer::serve_connection(void* raw_socket) const {
  std::unique_ptr<tcp::socket> socket(static_cast<tcp::socket*>(raw_socket));
  beast::flat_buffer buffer;
  beast::error_code ec;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    http::read(*socket, buffer, parser, ec);
    if (ec) break;  // closed, or a malformed request: drop the connection
    const auto& req = parser.get();
    HttpResponse r;
    try {
      r = dispatch(std::string(req.method_string()), std::string(req.target()));
    } catch (const std::exception& e) {
      r = {500, "application/json", json_error(e.what())};
    }
    http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
    res.set(http::field::server, "darkroom");
    res.set(http::field::content_type, r.content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(r.body);
    res.prepare_payload();
    http::write(*socket, res, ec);
    if (ec || !res.keep_alive()) break;
  }
  socket->shutdown(tcp::socket::shutdown_both, ec);
}

void HttpServer::run() {
  boost::asio::io_context io;
  beast::error_code ec;
  const auto address = boost::asio::ip::make_address(options_.listen, ec);
  if (ec) fail("serve", "--listen '", options_.listen, "' is not an IP address");
  tcp::acceptor acceptor(io);
  acceptor.open(address.is_v6() ? tcp::v6() : tcp::v4());
  acceptor.set_option(boost::asio::socket_base::reuse_address(true));
  acceptor.bind({address, options_.port}, ec);
  if (ec)
    fail("serve", "cannot listen on ", options_.listen, ":", options_.port, ": ", ec.message());
  acceptor.listen();
  const auto port = acceptor.local_endpoint().port();
  std::printf("darkroom: listening on http://%s:%u\n", options_.listen.c_str(), port);
  std::fflush(stdout);
  for (;;) {
    auto* socket = new tcp::socket(io);
    acceptor.accept(*socket, ec);
    if (ec) {
      delete socket;
      DR_LOG(Warn) << "accept failed: " << ec.message();
      continue;
    }
    std::thread([this, socket] { serve_connection(socket); }).detach();
  }
}

}  // namespace darkroom::server
