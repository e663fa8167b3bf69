// Webhooks on completion: after each prompt ends, one POST of
//
//   {"prompt_id", "number", "status": "success"|"error"|"interrupted",
//    "outputs": {...as in /history...}, "client_id": "..." | null (none or ""),
//    "completed_at": ms since the epoch}
//
// to the operator's URL (darkroom serve --webhook-url). The payload is written to the job
// store's outbox in the transaction that writes the history entry (JobStore::finish /
// recover), so a completion is never recorded without its delivery; WebhookDispatcher
// sends the outbox from its own thread (never a worker's), retries with exponential
// backoff, and deletes an entry once it is delivered (or given up). Delivery is therefore
// at least once: a kill between the receiver's 2xx and the delete sends it again after
// the restart; receivers deduplicate by prompt_id.
//
// The transport is injected (WebhookOptions::post): the server gives it Boost.Beast's
// HTTP client (server/webhook_client.h); tests give it a fake.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace darkroom::queue {

using json = nlohmann::json;

class JobStore;

// One delivery attempt's outcome. `retry`: worth trying again later (no connection, a
// timeout, 5xx, 408, 429); otherwise a non-2xx answer is final (the receiver refused it).
struct WebhookResult {
  bool delivered = false;  // a 2xx answer
  bool retry = false;
  std::string error;  // what went wrong, for the log
};

struct WebhookOptions {
  std::string url;  // "": no webhooks (nothing goes to the outbox)
  // Attempts per delivery before it is dropped (logged as an error); the history entry
  // stays. Waits between attempts: first_backoff_ms, doubling, at most max_backoff_ms.
  int max_attempts = 10;
  int64_t first_backoff_ms = 1000;
  int64_t max_backoff_ms = 300000;
  // POSTs `body` (JSON) to `url`; must not throw and must time out on its own.
  std::function<WebhookResult(const std::string& url, const std::string& body)> post;
};

// The payload for a history entry ({"prompt": [number, id, prompt, extra_data, outputs],
// "outputs", "status"}). Status: "interrupted" when the status messages hold an
// execution_interrupted, else "success" / "error" from status_str.
json webhook_payload(const std::string& prompt_id, const json& entry, int64_t completed_at_ms);

// The wait before attempt `attempts + 1` after `attempts` failed ones (attempts >= 1).
int64_t webhook_backoff_ms(const WebhookOptions& options, int attempts);

// The thread that empties the outbox. start() after the store has recovered; notify()
// after a commit that may have added an entry; the destructor stops it (an attempt in
// flight finishes first: post() has its own timeout).
class WebhookDispatcher {
 public:
  WebhookDispatcher(JobStore& store, WebhookOptions options);
  ~WebhookDispatcher();
  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  void start();
  void notify();

 private:
  void loop();
  // One attempt at the earliest due entry; returns how long to sleep when none is due.
  std::chrono::milliseconds deliver_due();

  JobStore& store_;
  WebhookOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool poked_ = false;  // notify() since the last look at the outbox
  std::thread thread_;
};

}  // namespace darkroom::queue
