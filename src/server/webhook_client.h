// The webhook transport (queue/webhook.h): one HTTP/1.1 POST with Boost.Beast. Plain http
// only: an https:// URL is refused when the server starts (a TLS client would need the CA
// store, host name checks and SNI on top of the OpenSSL the server already links; not
// done yet).
#pragma once

#include <chrono>
#include <string>

#include "queue/webhook.h"

namespace darkroom::server {

struct WebhookUrl {
  std::string host;    // a name or an address; IPv6 in brackets in the URL, bare here
  std::string port;    // "80" when the URL has none
  std::string target;  // path and query, "/" when empty
};

// http://host[:port][/path][?query]; throws darkroom::Error naming what is wrong.
WebhookUrl parse_webhook_url(const std::string& url);

// POSTs `body` as application/json; the whole exchange (resolve, connect, send, answer)
// ends after `timeout`. 2xx: delivered; no connection, a timeout, 5xx, 408, 429: retry;
// other answers: refused for good. Never throws.
queue::WebhookResult post_webhook(const std::string& url, const std::string& body,
                                  std::chrono::milliseconds timeout);

}  // namespace darkroom::server
