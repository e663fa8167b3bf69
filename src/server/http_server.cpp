#include "server/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <type_traits>
#include <vector>

#if DARKROOM_HAVE_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#endif

#include "core/error.h"
#include "core/log.h"
#include "server/http_util.h"
#include "workflow/folder_paths.h"

namespace darkroom::server {
namespace {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct RouteEntry {
  std::string method;
  std::vector<std::string> segments;  // "{name}" for a capture
  Handler handler;
};

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

json error_json(const std::string& type, const std::string& message) {
  return {{"error", {{"type", type}, {"message", message}, {"details", ""}, {"extra_info", {}}}}};
}

std::string random_hex(size_t bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < bytes; ++i) {
    const auto v = static_cast<unsigned>(rng() & 0xff);
    s += digits[v >> 4];
    s += digits[v & 15];
  }
  return s;
}

bool is_health_path(const std::string& p) {
  return p == "/healthz" || p == "/readyz" || p == "/api/healthz" || p == "/api/readyz";
}

}  // namespace

struct HttpServer::Impl {
  ServerOptions opt;
  std::vector<RouteEntry> routes;
  WebSocketHub hub;
  std::function<void(const std::string&)> ws_connect;
  std::function<void(const std::string&, const std::string&)> ws_message;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  uint16_t bound_port = 0;
#if DARKROOM_HAVE_TLS
  std::optional<net::ssl::context> tls;  // set: every connection starts with a TLS handshake
#endif

  mutable std::mutex stats_mutex;
  std::map<int, uint64_t> status_counts;
  std::atomic<uint64_t> body_bytes{0};
  std::atomic<uint64_t> rejected_oversize{0};
  std::atomic<uint64_t> ws_connections{0};

  explicit Impl(ServerOptions o) : opt(std::move(o)) {}

  void count(int status) {
    std::lock_guard<std::mutex> lock(stats_mutex);
    ++status_counts[status];
  }

  // Token from "Authorization: Bearer", the cookie set below, or "?token=".
  enum class AuthBy { None, Header, Cookie, Query, Open };
  AuthBy authorize(const http::request_header<>& req, const std::map<std::string, std::string>& q,
                   const std::string& raw_path) const {
    if (opt.auth_token.empty() || is_health_path(raw_path)) return AuthBy::Open;
    const std::string auth(req[http::field::authorization]);
    if (auth.rfind("Bearer ", 0) == 0 && equal_constant_time(auth.substr(7), opt.auth_token))
      return AuthBy::Header;
    const std::string cookies(req[http::field::cookie]);
    size_t pos = 0;
    while ((pos = cookies.find("darkroom_token=", pos)) != std::string::npos) {
      if (pos == 0 || cookies[pos - 1] == ' ' || cookies[pos - 1] == ';') {
        const size_t start = pos + 15;
        const std::string value = cookies.substr(start, cookies.find(';', start) - start);
        if (equal_constant_time(value, opt.auth_token)) return AuthBy::Cookie;
      }
      pos += 15;
    }
    auto it = q.find("token");
    if (it != q.end() && equal_constant_time(it->second, opt.auth_token)) return AuthBy::Query;
    return AuthBy::None;
  }

  // The policy every request passes before its route: OPTIONS, origin check, auth.
  // Returns a response to send instead of routing, if any.
  std::optional<Response> gate(const http::request_header<>& req,
                               const std::map<std::string, std::string>& q,
                               const std::string& raw_path, bool* set_cookie) const {
    if (!opt.cors_origin && !origin_allowed(std::string(req[http::field::host]),
                                            std::string(req[http::field::origin]))) {
      DR_LOG(Warn) << "request with non matching host and origin " << req[http::field::host]
                   << " != " << req[http::field::origin] << ", returning 403";
      return Response::empty(403);
    }
    if (req.method() == http::verb::options) return Response::empty(200);
    const AuthBy by = authorize(req, q, raw_path);
    if (by == AuthBy::None) {
      Response r = Response::json_body(
          error_json("unauthorized",
                     "this server needs a token: 'Authorization: Bearer TOKEN' (or ?token=)"),
          401);
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
    // A browser that opened "/?token=..." keeps the token as a cookie for its API calls.
    *set_cookie = by == AuthBy::Query;
    return std::nullopt;
  }

  Response serve_static(const std::string& raw_path) const {
    if (opt.web_root.empty())
      return Response::json_body(error_json("not_found", "no route " + raw_path), 404);
    std::string rel = url_decode(raw_path, false);
    while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
    if (rel.empty()) rel = "index.html";
    auto path = workflow::resolve_inside(opt.web_root, rel);
    std::ifstream in;
    if (path) in.open(*path, std::ios::binary);
    std::error_code ec;
    if (!path || !in || std::filesystem::is_directory(*path, ec))
      return Response::json_body(error_json("not_found", "no route " + raw_path), 404);
    std::ostringstream os;
    os << in.rdbuf();
    Response r{200, content_type_for(*path), os.str(), {}};
    // ComfyUI: index.html is never cached; .js/.css are revalidated.
    if (rel == "index.html") {
      r.headers.emplace_back("Cache-Control", "no-cache");
      r.headers.emplace_back("Pragma", "no-cache");
      r.headers.emplace_back("Expires", "0");
    } else if (rel.size() > 3 && (rel.ends_with(".js") || rel.ends_with(".css"))) {
      r.headers.emplace_back("Cache-Control", "no-cache");
    }
    return r;
  }

  Response route_request(const http::request<http::string_body>& req, const std::string& raw_path,
                         std::map<std::string, std::string> query) const {
    std::string path = raw_path;
    const bool api = path == "/api" || path.rfind("/api/", 0) == 0;
    if (api) path = path.substr(4);
    if (path.empty()) path = "/";
    std::string method(req.method_string());
    if (method == "HEAD") method = "GET";
    const std::vector<std::string> segs = split_path(path);
    bool path_matched = false;
    for (const RouteEntry& r : routes) {
      if (r.segments.size() != segs.size()) continue;
      std::map<std::string, std::string> params;
      bool ok = true;
      for (size_t i = 0; i < segs.size() && ok; ++i) {
        const std::string& s = r.segments[i];
        if (s.size() > 2 && s.front() == '{' && s.back() == '}') {
          if (segs[i].empty()) ok = false;
          params[s.substr(1, s.size() - 2)] = url_decode(segs[i], false);
        } else {
          ok = s == segs[i];
        }
      }
      if (!ok) continue;
      path_matched = true;
      if (r.method != method) continue;
      Request q;
      q.method = method;
      q.path = path;
      q.query = std::move(query);
      q.params = std::move(params);
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        q.headers[name] = std::string(f.value());
      }
      q.body = req.body();
      try {
        return r.handler(q);
      } catch (const Error& e) {
        return Response::json_body(error_json("bad_request", e.what()), 400);
      } catch (const json::exception& e) {
        return Response::json_body(error_json("bad_request", e.what()), 400);
      } catch (const std::exception& e) {
        DR_LOG(Error) << method << " " << raw_path << ": " << e.what();
        return Response::json_body(error_json("internal_error", e.what()), 500);
      }
    }
    if (path_matched)
      return Response::json_body(
          error_json("method_not_allowed", method + " is not allowed on " + path), 405);
    if (!api && method == "GET") return serve_static(raw_path);
    return Response::json_body(error_json("not_found", "no route " + raw_path), 404);
  }

  http::response<http::string_body> respond(const http::request<http::string_body>& req) {
    const std::string target(req.target());
    const size_t qpos = target.find('?');
    const std::string raw_path = target.substr(0, qpos);
    auto query = parse_query(qpos == std::string::npos ? "" : target.substr(qpos + 1));
    bool set_cookie = false;
    std::optional<Response> early;
    if (raw_path.empty() || raw_path[0] != '/')
      early = Response::json_body(error_json("bad_request", "bad request target"), 400);
    else
      early = gate(req, query, raw_path, &set_cookie);
    Response r = early ? std::move(*early) : route_request(req, raw_path, std::move(query));
    return finish(std::move(r), req.version(), req.keep_alive(), req.method() == http::verb::head,
                  set_cookie);
  }

  http::response<http::string_body> finish(Response r, unsigned version, bool keep_alive, bool head,
                                           bool set_cookie) {
    count(r.status);
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::server, "darkroom");
    res.set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res.set(k, v);
    if (opt.cors_origin) {
      res.set("Access-Control-Allow-Origin", *opt.cors_origin);
      res.set("Access-Control-Allow-Methods", "POST, GET, DELETE, PUT, OPTIONS");
      res.set("Access-Control-Allow-Headers", "Content-Type, Authorization");
      res.set("Access-Control-Allow-Credentials", "true");
    }
    if (set_cookie)
      res.set(http::field::set_cookie,
              "darkroom_token=" + opt.auth_token + "; Path=/; HttpOnly; SameSite=Strict");
    res.keep_alive(keep_alive);
    res.body() = std::move(r.body);
    res.prepare_payload();
    if (head) res.body().clear();
    return res;
  }
};

namespace {

// The two transports the sessions below are written once for: plain TCP, and TLS over it
// (--tls-keyfile/--tls-certfile). Both are Beast streams whose lowest layer is a
// tcp_stream, which holds the timeouts and the socket.
using PlainStream = beast::tcp_stream;
#if DARKROOM_HAVE_TLS
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
template <class Stream>
constexpr bool kIsTls = std::is_same_v<Stream, TlsStream>;
#else
template <class Stream>
constexpr bool kIsTls = false;
#endif

template <class Stream>
class WsSession : public WsClient, public std::enable_shared_from_this<WsSession<Stream>> {
  using std::enable_shared_from_this<WsSession<Stream>>::shared_from_this;

 public:
  // `stream`: the HTTP session's connection, TLS handshake already done when there is one.
  WsSession(Stream&& stream, HttpServer::Impl& srv, std::string id)
      : ws_(std::move(stream)), srv_(srv), id_(std::move(id)) {}

  void run(http::request<http::string_body> req) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "darkroom"); }));
    ws_.read_message_max(1 << 20);
    ws_.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
  }

  bool post(std::shared_ptr<const WsFrame> frame) override {
    const size_t queued = queued_.load();
    if (frame->binary && queued >= srv_.hub.binary_limit()) return false;
    if (queued >= srv_.hub.json_limit()) {
      abort();
      return false;
    }
    queued_.fetch_add(1);
    net::post(ws_.get_executor(), [self = shared_from_this(), frame] {
      self->queue_.push_back(frame);
      if (self->queue_.size() == 1) self->do_write();
    });
    return true;
  }

  void close() override {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      if (self->closing_) return;
      self->closing_ = true;
      self->ws_.async_close(websocket::close_code::normal, [self](beast::error_code) {});
    });
  }

 private:
  // A client that stopped reading: drop the connection at once (a close handshake would
  // wait behind the frames it does not read).
  void abort() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      if (self->aborted_) return;
      self->aborted_ = true;
      DR_LOG(Warn) << "websocket client " << self->id_ << " is not reading; disconnecting it";
      self->srv_.hub.remove(self->id_, self.get());
      beast::error_code ec;
      beast::get_lowest_layer(self->ws_).socket().close(ec);
    });
  }

  void on_accept(beast::error_code ec) {
    if (ec) return;
    srv_.ws_connections.fetch_add(1);
    srv_.hub.add(id_, shared_from_this());
    if (srv_.ws_connect) srv_.ws_connect(id_);
    do_read();
  }

  void do_read() {
    ws_.async_read(rbuf_, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      srv_.hub.remove(id_, this);
      return;
    }
    if (ws_.got_text() && srv_.ws_message) {
      try {
        srv_.ws_message(id_, beast::buffers_to_string(rbuf_.data()));
      } catch (const std::exception& e) {
        DR_LOG(Warn) << "websocket message from " << id_ << ": " << e.what();
      }
    }
    rbuf_.consume(rbuf_.size());
    do_read();
  }

  void do_write() {
    const auto& f = queue_.front();
    ws_.binary(f->binary);
    ws_.async_write(net::buffer(f->data),
                    beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    queue_.pop_front();
    queued_.fetch_sub(1);
    if (ec) {
      srv_.hub.remove(id_, this);
      queued_.fetch_sub(queue_.size());
      queue_.clear();
      return;
    }
    if (!queue_.empty()) do_write();
  }

  websocket::stream<Stream> ws_;
  HttpServer::Impl& srv_;
  std::string id_;
  beast::flat_buffer rbuf_;
  std::deque<std::shared_ptr<const WsFrame>> queue_;  // touched on the strand only
  std::atomic<size_t> queued_{0};
  bool closing_ = false;
  bool aborted_ = false;
};

template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
  using std::enable_shared_from_this<HttpSession<Stream>>::shared_from_this;

 public:
  // `args`: what Stream is made from (the accepted socket; with TLS also the context).
  template <class... Args>
  explicit HttpSession(HttpServer::Impl& srv, Args&&... args)
      : stream_(std::forward<Args>(args)...), srv_(srv) {}

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&HttpSession::start, shared_from_this()));
  }

 private:
  void start() {
#if DARKROOM_HAVE_TLS  // net::ssl is not there to name without OpenSSL
    if constexpr (kIsTls<Stream>) {
      // A client that speaks plain HTTP (or nothing) to a TLS port fails the handshake
      // and is dropped without an answer: there is no TLS channel to send one on.
      tcp_layer().expires_after(std::chrono::seconds(30));
      stream_.async_handshake(
          net::ssl::stream_base::server,
          beast::bind_front_handler(&HttpSession::on_handshake, shared_from_this()));
      return;
    }
#endif
    do_read();
  }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      DR_LOG(Debug) << "TLS handshake failed: " << ec.message();
      return close_socket();
    }
    do_read();
  }

  beast::tcp_stream& tcp_layer() {
    return beast::get_lowest_layer(stream_);
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(64 * 1024);
    parser_->body_limit(srv_.opt.max_body_bytes);
    tcp_layer().expires_after(std::chrono::seconds(120));  // idle keep-alive connections end
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&HttpSession::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return do_close();
    if (ec == http::error::header_limit) return reject(431, "request header too large");
    // Beast compares Content-Length with the body limit while it parses the header.
    if (ec == http::error::body_limit) return reject_oversize();
    if (ec) {
      if (ec != net::error::operation_aborted && ec != beast::error::timeout &&
          ec != net::error::connection_reset && ec != net::error::eof)
        return reject(400, "malformed request: " + ec.message());
      return do_close();
    }
    auto& req = parser_->get();
    if (websocket::is_upgrade(req)) return upgrade();
    const auto len = parser_->content_length();
    if (len && *len > srv_.opt.max_body_bytes) return reject_oversize();
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                     req.version());
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](beast::error_code e, std::size_t) {
                          if (e) return self->do_close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    tcp_layer().expires_after(std::chrono::seconds(300));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t bytes) {
    if (ec == http::error::body_limit) return reject_oversize();
    if (ec) {
      if (ec != beast::error::timeout && ec != net::error::eof &&
          ec != http::error::end_of_stream && ec != net::error::connection_reset)
        return reject(400, "malformed request: " + ec.message());
      return do_close();
    }
    srv_.body_bytes.fetch_add(bytes);
    http::request<http::string_body> req = parser_->release();
    send(srv_.respond(req));
  }

  void upgrade() {
    http::request<http::string_body> req = parser_->release();
    const std::string target(req.target());
    const size_t qpos = target.find('?');
    const std::string raw_path = target.substr(0, qpos);
    auto query = parse_query(qpos == std::string::npos ? "" : target.substr(qpos + 1));
    bool set_cookie = false;
    std::optional<Response> early;
    if (raw_path != "/ws" && raw_path != "/api/ws")
      early = Response::json_body(error_json("not_found", "no websocket at " + raw_path), 404);
    else
      early = srv_.gate(req, query, raw_path, &set_cookie);
    if (early) {
      auto res = srv_.finish(std::move(*early), req.version(), false, false, false);
      return send(std::move(res));
    }
    std::string id = query.count("clientId") ? query["clientId"] : "";
    if (id.empty()) id = random_hex(16);
    tcp_layer().expires_never();
    // The websocket takes over the whole stream (with TLS: the session's TLS state).
    std::make_shared<WsSession<Stream>>(std::move(stream_), srv_, id)->run(std::move(req));
  }

  void send(http::response<http::string_body> res) {
    auto sp = std::make_shared<http::response<http::string_body>>(std::move(res));
    const bool close = sp->need_eof();
    http::async_write(stream_, *sp,
                      [self = shared_from_this(), sp, close](beast::error_code ec, std::size_t) {
                        if (ec) return self->do_close();
                        if (close) return self->do_close();
                        self->do_read();
                      });
  }

  void reject(int status, const std::string& message) {
    auto res = srv_.finish(Response::json_body(error_json("bad_request", message), status), 11,
                           false, false, false);
    send(std::move(res));
  }

  // 413, then read and discard what the client still sends for a while, so that it sees
  // the answer instead of a connection reset.
  void reject_oversize() {
    srv_.rejected_oversize.fetch_add(1);
    auto res = srv_.finish(
        Response::json_body(error_json("payload_too_large",
                                       "request body is larger than --max-upload-size (" +
                                           std::to_string(srv_.opt.max_body_bytes >> 20) + " MB)"),
                            413),
        11, false, false, false);
    auto sp = std::make_shared<http::response<http::string_body>>(std::move(res));
    http::async_write(stream_, *sp,
                      [self = shared_from_this(), sp](beast::error_code ec, std::size_t) {
                        if (ec) return self->do_close();
                        beast::error_code e;
                        self->tcp_layer().socket().shutdown(tcp::socket::shutdown_send, e);
                        self->tcp_layer().expires_after(std::chrono::seconds(10));
                        self->drain();
                      });
  }

  void drain() {
    drain_buf_.resize(64 * 1024);
    stream_.async_read_some(net::buffer(drain_buf_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->do_close();
                              self->drain();
                            });
  }

  void do_close() {
    if constexpr (kIsTls<Stream>) {
      // TLS says goodbye with close_notify first; a peer that is gone fails it fast, one
      // that stalls meets the timeout.
      if (!shutting_down_) {
        shutting_down_ = true;
        tcp_layer().expires_after(std::chrono::seconds(5));
        stream_.async_shutdown(
            [self = shared_from_this()](beast::error_code) { self->close_socket(); });
        return;
      }
    }
    close_socket();
  }

  void close_socket() {
    beast::error_code ec;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp_layer().socket().close(ec);
  }

  Stream stream_;
  bool shutting_down_ = false;  // TLS: close_notify sent
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::vector<char> drain_buf_;
  HttpServer::Impl& srv_;
};

void do_accept(HttpServer::Impl& srv) {
  srv.acceptor.async_accept(net::make_strand(srv.ioc), [&srv](beast::error_code ec, tcp::socket s) {
    if (!ec) {
#if DARKROOM_HAVE_TLS
      if (srv.tls)
        std::make_shared<HttpSession<TlsStream>>(srv, std::move(s), *srv.tls)->run();
      else
#endif
        std::make_shared<HttpSession<PlainStream>>(srv, std::move(s))->run();
    } else if (ec != net::error::operation_aborted) {
      DR_LOG(Warn) << "accept failed: " << ec.message();
    }
    if (srv.acceptor.is_open()) do_accept(srv);
  });
}

}  // namespace

HttpServer::HttpServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  const ServerOptions& o = impl_->opt;
  if (o.tls_keyfile.empty() && o.tls_certfile.empty()) return;
  DR_CHECK(!o.tls_keyfile.empty() && !o.tls_certfile.empty(), "serve",
           "--tls-keyfile and --tls-certfile must be given together");
#if DARKROOM_HAVE_TLS
  using Ctx = net::ssl::context;
  Ctx& ctx = impl_->tls.emplace(Ctx::tls_server);
  ctx.set_options(Ctx::default_workarounds | Ctx::no_sslv2 | Ctx::no_sslv3 | Ctx::no_tlsv1 |
                  Ctx::no_tlsv1_1 | Ctx::single_dh_use);
  // An encrypted key would make OpenSSL ask for its passphrase on the terminal; with an
  // empty answer it fails with its reason instead.
  ctx.set_password_callback([](std::size_t, Ctx::password_purpose) { return std::string(); });
  beast::error_code ec;
  ctx.use_certificate_chain_file(o.tls_certfile, ec);
  if (ec)
    fail("serve", "--tls-certfile '", o.tls_certfile,
         "' is not a usable PEM certificate (OpenSSL: ", ec.message(), ")");
  ctx.use_private_key_file(o.tls_keyfile, Ctx::pem, ec);
  if (ec)
    fail("serve", "--tls-keyfile '", o.tls_keyfile,
         "' is not a usable PEM private key for this certificate (OpenSSL: ", ec.message(), ")");
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    char reason[256] = "unknown reason";
    if (const unsigned long e = ERR_get_error(); e != 0)
      ERR_error_string_n(e, reason, sizeof reason);
    fail("serve", "--tls-keyfile '", o.tls_keyfile, "' does not match --tls-certfile '",
         o.tls_certfile, "' (OpenSSL: ", reason, ")");
  }
#else
  fail("serve", "this build has no TLS (OpenSSL not found at build time)");
#endif
}
HttpServer::~HttpServer() = default;

void HttpServer::route(const std::string& method, const std::string& pattern, Handler handler) {
  DR_ASSERT(!pattern.empty() && pattern[0] == '/', "route pattern must start with '/'");
  impl_->routes.push_back({method, split_path(pattern), std::move(handler)});
}

void HttpServer::on_ws_connect(std::function<void(const std::string&)> fn) {
  impl_->ws_connect = std::move(fn);
}
void HttpServer::on_ws_message(std::function<void(const std::string&, const std::string&)> fn) {
  impl_->ws_message = std::move(fn);
}
WebSocketHub& HttpServer::hub() {
  return impl_->hub;
}
const ServerOptions& HttpServer::options() const {
  return impl_->opt;
}

std::string HttpServer::metrics_text() const {
  std::ostringstream os;
  os << "# HELP darkroom_http_requests_total HTTP responses sent, by status code.\n"
        "# TYPE darkroom_http_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(impl_->stats_mutex);
    for (const auto& [code, n] : impl_->status_counts)
      os << "darkroom_http_requests_total{code=\"" << code << "\"} " << n << "\n";
  }
  // One Prometheus sample with its HELP and TYPE lines.
  auto metric = [&os](const char* name, const char* type, const char* help, uint64_t value) {
    os << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
       << name << " " << value << "\n";
  };
  metric("darkroom_http_request_body_bytes_total", "counter", "Bytes of request bodies read.",
         impl_->body_bytes.load());
  metric("darkroom_http_oversize_rejected_total", "counter",
         "Requests refused for their body size.", impl_->rejected_oversize.load());
  metric("darkroom_ws_clients", "gauge", "Websocket clients connected now.",
         impl_->hub.client_count());
  metric("darkroom_ws_connections_total", "counter", "Websocket connections accepted.",
         impl_->ws_connections.load());
  metric("darkroom_ws_frames_sent_total", "counter", "Websocket frames queued for sending.",
         impl_->hub.sent_frames());
  metric("darkroom_ws_frames_dropped_total", "counter",
         "Frames dropped for clients that fell behind.", impl_->hub.dropped_frames());
  return os.str();
}

uint16_t HttpServer::bind() {
  Impl& s = *impl_;
  beast::error_code ec;
  const auto address = net::ip::make_address(s.opt.listen, ec);
  if (ec) fail("serve", "--listen '", s.opt.listen, "' is not an IP address");
  s.acceptor.open(address.is_v6() ? tcp::v6() : tcp::v4());
  s.acceptor.set_option(net::socket_base::reuse_address(true));
  s.acceptor.bind({address, s.opt.port}, ec);
  if (ec) fail("serve", "cannot listen on ", s.opt.listen, ":", s.opt.port, ": ", ec.message());
  s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("serve", "cannot listen on ", s.opt.listen, ":", s.opt.port, ": ", ec.message());
  s.bound_port = s.acceptor.local_endpoint().port();
  return s.bound_port;
}

void HttpServer::run() {
  Impl& s = *impl_;
  if (!s.acceptor.is_open()) bind();
  const bool v6 = s.opt.listen.find(':') != std::string::npos;
  const char* scheme = "http";
#if DARKROOM_HAVE_TLS
  if (s.tls) scheme = "https";
#endif
  std::printf("darkroom: listening on %s://%s%s%s:%u\n", scheme, v6 ? "[" : "",
              s.opt.listen.c_str(), v6 ? "]" : "", s.bound_port);
  std::fflush(stdout);
  do_accept(s);
  net::signal_set signals(s.ioc, SIGINT, SIGTERM);
  signals.async_wait([&s](beast::error_code, int) {
    DR_LOG(Info) << "stopping";
    s.ioc.stop();
  });
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, s.opt.threads); ++i) threads.emplace_back([&s] { s.ioc.run(); });
  s.ioc.run();
  for (auto& t : threads) t.join();
}

}  // namespace darkroom::server
