#include "queue/webhook.h"

#include <algorithm>

#include "core/log.h"
#include "queue/comfy_messages.h"
#include "queue/job_store.h"

namespace darkroom::queue {

json webhook_payload(const std::string& prompt_id, const json& entry, int64_t completed_at_ms) {
  const json& item = entry.at("prompt");  // [number, prompt_id, prompt, extra_data, outputs]
  const json& status = entry.at("status");
  std::string outcome = status.value("status_str", "") == "success" ? "success" : "error";
  for (const json& m : status.value("messages", json::array()))
    if (m.is_array() && !m.empty() && m[0] == "execution_interrupted") outcome = "interrupted";
  const json& extra = item.size() > 3 ? item[3] : json::object();
  json client = nullptr;
  if (extra.is_object() && extra.contains("client_id") && extra["client_id"].is_string() &&
      !extra["client_id"].get<std::string>().empty())
    client = extra["client_id"];
  return {{"prompt_id", prompt_id}, {"number", item.at(0)},
          {"status", outcome},      {"outputs", entry.value("outputs", json::object())},
          {"client_id", client},    {"completed_at", completed_at_ms}};
}

int64_t webhook_backoff_ms(const WebhookOptions& options, int attempts) {
  int64_t wait = std::max<int64_t>(options.first_backoff_ms, 0);
  for (int i = 1; i < attempts && wait < options.max_backoff_ms; ++i) wait *= 2;
  return std::min(wait, options.max_backoff_ms);
}

WebhookDispatcher::WebhookDispatcher(JobStore& store, WebhookOptions options)
    : store_(store), options_(std::move(options)) {}

WebhookDispatcher::~WebhookDispatcher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WebhookDispatcher::start() {
  thread_ = std::thread([this] { loop(); });
}

void WebhookDispatcher::notify() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  wake_.notify_all();
}

void WebhookDispatcher::loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    poked_ = false;
    lock.unlock();
    std::chrono::milliseconds idle{0};
    try {
      idle = deliver_due();
    } catch (const std::exception& e) {
      // The store failed (disk full?): try again in a while rather than end the thread.
      DR_LOG(Error) << "webhook: " << e.what();
      idle = std::chrono::milliseconds(1000);
    }
    lock.lock();
    if (idle.count() > 0) wake_.wait_for(lock, idle, [this] { return stop_ || poked_; });
  }
}

std::chrono::milliseconds WebhookDispatcher::deliver_due() {
  // Nothing queued: sleep until notify() (an hour is only a safety net).
  const std::optional<OutboxEntry> e = store_.next_delivery();
  if (!e) return std::chrono::hours(1);
  const int64_t now = now_ms();
  if (e->next_attempt_ms > now) return std::chrono::milliseconds(e->next_attempt_ms - now);

  const WebhookResult r =
      options_.post ? options_.post(e->url, e->body) : WebhookResult{false, false, "no transport"};
  if (r.delivered) {
    store_.remove_delivery(e->id);
    DR_LOG(Debug) << "webhook: prompt " << e->prompt_id << " delivered to " << e->url;
    return std::chrono::milliseconds(0);
  }
  const int attempts = e->attempts + 1;
  if (!r.retry || attempts >= options_.max_attempts) {
    store_.remove_delivery(e->id);
    DR_LOG(Error) << "webhook: giving up on prompt " << e->prompt_id << " to " << e->url
                  << " after " << attempts << " attempt(s): " << r.error;
    return std::chrono::milliseconds(0);
  }
  const int64_t wait = webhook_backoff_ms(options_, attempts);
  store_.delivery_failed(e->id, now_ms() + wait, r.error);
  DR_LOG(Warn) << "webhook: prompt " << e->prompt_id << " to " << e->url << " failed (" << r.error
               << "); attempt " << attempts + 1 << " in " << wait << " ms";
  return std::chrono::milliseconds(0);
}

}  // namespace darkroom::queue
