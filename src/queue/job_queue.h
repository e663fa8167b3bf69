// The durable prompt queue behind POST /prompt, GET/POST /queue, /history, /interrupt and
// /free, with one worker thread per device running workflow::Executor.
//
// Embedded default: a SQLite job store (WAL) at <user dir>/darkroom-queue.sqlite3. A prompt
// is committed before submit() returns, so it survives kill -9; on start, pending prompts
// are queued again in their order and the prompt that was running when the process died
// is re-run (ComfyUI's queue numbers are kept). History persists too.
//
// Payloads use ComfyUI's shapes (server.py / execution.py): queue items are
// [number, prompt_id, prompt, extra_data, outputs_to_execute]; history entries are
// {"prompt": item, "outputs": {...}, "status": {"status_str", "completed", "messages"},
// "meta": {...}}.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "queue/webhook.h"
#include "workflow/executor.h"

namespace darkroom::queue {

using json = nlohmann::json;

// Where websocket traffic goes (the server's hub). client_id "" means every client.
struct MessageSinks {
  // {"type": "executing", "data": {...}} — ComfyUI's JSON messages.
  std::function<void(const std::string& client_id, const json& message)> json_message;
  // A binary frame, already framed as ComfyUI does (big-endian u32 event type 1 =
  // PREVIEW_IMAGE, u32 image type 1 = JPEG / 2 = PNG, then the image bytes).
  std::function<void(const std::string& client_id, const std::vector<uint8_t>& frame)> binary;
};

struct Worker {
  int cuda_device = -1;  // -1: the CPU
  // The device's memory in bytes, for the automatic model budget (the CPU's is read from
  // the system); 0: unknown.
  uint64_t memory_bytes = 0;
};

struct QueueOptions {
  std::string database_path;  // the SQLite file
  workflow::FolderPaths paths;
  std::vector<Worker> workers{Worker{}};  // one thread each
  // Bytes of loaded models each worker keeps across prompts. 0: automatic, half of its
  // device's memory shared by the workers on that device (CPU: physical RAM; CUDA:
  // Worker::memory_bytes, and when that is unknown only the last model loaded is kept).
  uint64_t model_memory_budget = 0;
  workflow::PreviewOptions preview;
  workflow::ResourceLimits limits;  // caps on pixels and steps (workflow/resource_limits.h)
  int max_history = 10000;          // oldest entries dropped beyond this
  bool rerun_interrupted = true;    // after a crash: re-run (true) or mark failed
  // A prompt that was running at this many crashes is marked failed instead of re-run,
  // so a prompt that kills the process cannot keep the server in a crash loop.
  int max_attempts = 3;
  // Prompts one client may have pending or running at once; 0: no limit. Clients are told
  // apart by client_id (POST /prompt's, also with auth tokens: one token may serve many
  // clients); prompts without one share the anonymous client "".
  int max_queued_per_client = 0;
  WebhookOptions webhook;  // url "": none
};

struct Submitted {
  std::string prompt_id;
  int64_t number = 0;
  // The client had max_queued_per_client prompts queued already: nothing was stored.
  bool refused = false;
};

class JobQueue {
 public:
  JobQueue(QueueOptions options, MessageSinks sinks);
  ~JobQueue();  // stops the workers after their current node
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Starts the workers (after recovering what the database holds).
  void start();

  // A validated prompt (workflow::validate_prompt said ok). Durable when this returns.
  // `prompt_id` empty: a new UUID. `front`: ahead of everything pending (ComfyUI's
  // negative numbers). `number`: POST /prompt's explicit "number", if any. Refused (not
  // stored) when the client is at QueueOptions::max_queued_per_client.
  Submitted submit(const json& prompt, const json& extra_data,
                   const std::vector<std::string>& outputs, const std::string& client_id,
                   const std::string& prompt_id, bool front, std::optional<double> number);

  // GET /queue: {"queue_running": [...], "queue_pending": [...]}.
  json queue() const;
  // exec_info.queue_remaining (pending + running).
  int remaining() const;
  // The per-client limit and what one client has pending + running now.
  int max_queued_per_client() const;
  int queued_by_client(const std::string& client_id) const;
  // POST /queue {"delete": [ids]} / {"clear": true}. Running prompts are not touched.
  void delete_pending(const std::vector<std::string>& prompt_ids);
  void clear_pending();
  // POST /interrupt: the running prompt (or only if it is `prompt_id`). Returns whether one
  // was interrupted. Without `prompt_id` every worker's running prompt is interrupted;
  // with it, only the worker running that prompt.
  bool interrupt(const std::optional<std::string>& prompt_id);
  // Cancels a prompt wherever it is (pending: removed; running: interrupted).
  bool cancel(const std::string& prompt_id);

  // GET /history?max_items=&offset=, GET /history/{id}: {"<id>": entry, ...}, the
  // first in completion order (JobStore::history).
  nlohmann::ordered_json history(std::optional<int> max_items, int offset) const;
  json history(const std::string& prompt_id) const;
  // POST /history {"delete": [ids]} / {"clear": true}.
  void delete_history(const std::vector<std::string>& prompt_ids);
  void clear_history();

  // POST /free {"unload_models": bool, "free_memory": bool}: done by each worker between
  // prompts.
  void free(bool unload_models, bool free_memory);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace darkroom::queue
