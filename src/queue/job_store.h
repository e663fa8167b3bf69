// The durable half of the queue: prompts and history in one SQLite file.
//
//   jobs(prompt_id, state pending|running, number, item, client_id, attempts, worker)
//   history(seq, prompt_id UNIQUE, entry)       seq: completion order
//   meta(key, value)                            next_number: ComfyUI's queue counter
//   outbox(id, prompt_id, url, body, attempts, next_attempt_ms, last_error)
//                                               webhook deliveries not yet made (webhook.h)
//
// Every change is one transaction, committed before the call returns. WAL with
// synchronous=FULL: a commit is on disk (the WAL fsync'd) when it returns, so an
// acknowledged prompt survives kill -9 and also an OS crash or power cut; NORMAL would
// survive kill -9 only. The fsync per prompt (about a millisecond) is nothing next to a
// generation. A job leaves `jobs` in the same transaction that writes its history row,
// so after any crash a prompt is either still queued or in history, never both, never
// neither. All methods are thread-safe (one connection behind a mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace darkroom::queue {

using json = nlohmann::json;

class SqliteDb;

struct QueuedJob {
  std::string prompt_id;
  json item;  // ComfyUI's queue item: [number, prompt_id, prompt, extra_data, outputs]
  std::string client_id;
  int attempts = 0;  // how many times it was claimed (a claim counts itself)
  int worker = -1;   // the worker running it (state running)
};

// A webhook delivery waiting in the outbox.
struct OutboxEntry {
  int64_t id = 0;  // outbox order
  std::string prompt_id;
  std::string url;
  std::string body;             // the JSON payload (webhook_payload)
  int attempts = 0;             // failed attempts so far
  int64_t next_attempt_ms = 0;  // not before this (ms since the epoch)
};

struct Recovery {
  std::vector<std::string> requeued;  // were running at the crash; pending again
  std::vector<std::string> failed;    // were running at the crash too often; now in history
};

class JobStore {
 public:
  // Opens or creates the database (its directory must exist).
  explicit JobStore(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Queues a prompt (durable on return) and gives its ComfyUI queue number: the counter
  // (0, 1, 2, ... across restarts) or `number` if given; `front` negates it as ComfyUI
  // does and, where that would not be enough, takes one below the lowest pending
  // number. Throws if `prompt_id` is pending or running already.
  // `max_per_client` > 0: a client (by client_id; "" is one shared anonymous client) with
  // that many prompts pending or running already gets nothing stored and a null result
  // (the count and the insert are one transaction, so concurrent submits cannot overshoot).
  json add(const std::string& prompt_id, const json& prompt, const json& extra_data,
           const std::vector<std::string>& outputs, const std::string& client_id, bool front,
           std::optional<double> number, int max_per_client = 0);
  // Pending + running prompts of one client ("": those without a client_id).
  int queued_by_client(const std::string& client_id) const;

  // The pending job with the lowest (number, prompt_id), now running on `worker`.
  std::optional<QueuedJob> claim(int worker);
  // running → history, atomically: `result` is {"outputs", "status", "meta"}; the entry
  // stored is {"prompt": item, ...result}. Then the oldest entries beyond `max_history`
  // are dropped. A prompt_id already in history is replaced (and becomes the newest).
  void finish(const std::string& prompt_id, const json& result, int max_history);
  // running → pending with its number kept (a worker stopped before finishing it).
  void release(const std::string& prompt_id);

  // After a restart: jobs left running go back to pending (`rerun`), unless they were
  // claimed `max_attempts` times already, or `rerun` is false: those go to history as
  // errors ("darkroom.ServerStopped").
  Recovery recover(bool rerun, int max_attempts, int max_history);

  // Queue order (number, prompt_id).
  std::vector<QueuedJob> pending() const;
  std::vector<QueuedJob> running() const;
  // Both at one instant (GET /queue must not show a job in both or neither).
  std::pair<std::vector<QueuedJob>, std::vector<QueuedJob>> running_and_pending() const;
  int remaining() const;  // pending + running
  bool delete_pending(const std::string& prompt_id);
  int clear_pending();

  // ComfyUI's get_history(): max_items with a negative offset gives the newest max_items.
  // Keys in completion order, oldest first, as ComfyUI's dict keeps them (clients and the
  // frontend's history list read them in that order), hence ordered_json: plain json
  // would sort them by prompt id.
  nlohmann::ordered_json history(std::optional<int> max_items, int offset) const;
  std::optional<json> history_entry(const std::string& prompt_id) const;
  int history_size() const;
  bool delete_history(const std::string& prompt_id);
  void clear_history();

  // Webhooks: with a URL set, every history entry written from now on (finish, recover)
  // also puts its webhook_payload into the outbox, in the same transaction. "": none.
  void set_webhook_url(std::string url);
  // The entry to try next: the lowest (next_attempt_ms, id), due or not.
  std::optional<OutboxEntry> next_delivery() const;
  std::vector<OutboxEntry> outbox() const;  // all, in outbox order
  // Delivered or given up: removed.
  void remove_delivery(int64_t id);
  // A failed attempt: attempts + 1, not tried again before `next_attempt_ms`.
  void delivery_failed(int64_t id, int64_t next_attempt_ms, const std::string& error);

  // Fault injection for tests: runs inside every commit before it is durable.
  void set_commit_hook(std::function<void()> hook);

 private:
  void trim_history(int max_history);
  // history row (+ outbox row with a webhook URL); caller holds mutex_ in a transaction.
  void put_history(const std::string& prompt_id, const json& entry);
  std::vector<QueuedJob> jobs_in_state(int state) const;  // caller holds mutex_

  mutable std::mutex mutex_;
  std::unique_ptr<SqliteDb> db_;
  std::string webhook_url_;  // guarded by mutex_
};

}  // namespace darkroom::queue
