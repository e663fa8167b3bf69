#include "server/webhook_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/error.h"

namespace darkroom::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

WebhookUrl parse_webhook_url(const std::string& url) {
  const std::string scheme = "http://";
  DR_CHECK(url.rfind("https://", 0) != 0, "webhook", "'", url,
           "': https is not supported yet; use an http:// URL");
  DR_CHECK(url.rfind(scheme, 0) == 0, "webhook", "'", url, "' is not an http:// URL");
  const std::string rest = url.substr(scheme.size());
  const size_t slash = rest.find_first_of("/?");
  const std::string authority = rest.substr(0, slash);
  WebhookUrl u;
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (u.target[0] == '?') u.target = "/" + u.target;
  DR_CHECK(authority.find('@') == std::string::npos, "webhook", "'", url,
           "': user names in the URL are not supported");
  std::string port;
  if (!authority.empty() && authority[0] == '[') {  // [v6 address]:port
    const size_t close = authority.find(']');
    DR_CHECK(close != std::string::npos, "webhook", "'", url, "': unclosed '[' in the host");
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      DR_CHECK(authority[close + 1] == ':', "webhook", "'", url, "': bad host");
      port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  DR_CHECK(!u.host.empty(), "webhook", "'", url, "' has no host");
  if (port.empty()) port = "80";
  int n = -1;
  try {
    size_t used = 0;
    n = std::stoi(port, &used);
    if (used != port.size()) n = -1;
  } catch (...) {
  }
  DR_CHECK(n > 0 && n < 65536, "webhook", "'", url, "': '", port, "' is not a port");
  u.port = std::to_string(n);
  return u;
}

queue::WebhookResult post_webhook(const std::string& url, const std::string& body,
                                  std::chrono::milliseconds timeout) {
  queue::WebhookResult r;
  WebhookUrl u;
  try {
    u = parse_webhook_url(url);
  } catch (const std::exception& e) {
    r.error = e.what();  // a stored URL that no longer parses: no point retrying
    return r;
  }
  // One io_context per attempt, run for at most `timeout`: whatever has not finished by
  // then is abandoned with it (a slow receiver counts as a failed attempt).
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{http::verb::post, u.target, 11};
  req.set(http::field::host, u.host + ":" + u.port);
  req.set(http::field::user_agent, "darkroom-webhook");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::connection, "close");
  req.body() = body;
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);  // the answer's body is not used; a huge one is cut off
  beast::error_code failure;
  bool done = false;

  auto fail_with = [&](beast::error_code ec) {
    failure = ec;
    done = true;
  };
  resolver.async_resolve(
      u.host, u.port, [&](beast::error_code ec, tcp::resolver::results_type hosts) {
        if (ec) return fail_with(ec);
        stream.async_connect(hosts, [&](beast::error_code ec, const tcp::endpoint&) {
          if (ec) return fail_with(ec);
          http::async_write(stream, req, [&](beast::error_code ec, size_t) {
            if (ec) return fail_with(ec);
            http::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) {
              if (ec) return fail_with(ec);
              done = true;
            });
          });
        });
      });
  ioc.run_for(timeout);
  if (!done) {
    r.retry = true;
    r.error = "no answer within " + std::to_string(timeout.count()) + " ms";
    return r;
  }
  if (failure) {
    r.retry = true;  // refused, unreachable, reset: the receiver may come back
    r.error = failure.message();
    return r;
  }
  const int status = static_cast<int>(parser.get().result_int());
  r.delivered = status >= 200 && status < 300;
  r.retry = status >= 500 || status == 408 || status == 429;
  if (!r.delivered) r.error = "HTTP " + std::to_string(status);
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return r;
}

}  // namespace darkroom::server
