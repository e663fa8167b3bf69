// JobQueue: the JobStore (durable state) plus one thread per device worker. The queue's
// mutex guards only what lives in memory (which prompt each worker runs, its interrupt
// and /free flags, stop); the store has its own lock. Lock order: queue mutex, then the
// store's. Sinks are called with no lock held.
#include "queue/job_queue.h"

#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "queue/comfy_messages.h"
#include "queue/job_store.h"
#include "queue/run_job.h"

namespace darkroom::queue {

namespace {

// Keys ComfyUI keeps out of the queue item and history (execution.py's
// SENSITIVE_EXTRA_DATA_KEYS); here they would also land on disk.
constexpr const char* kSensitiveExtraData[] = {"auth_token_comfy_org", "api_key_comfy_org"};

// QueueOptions::model_memory_budget for worker i: explicit, or half of its device's memory
// split between the workers that share the device.
uint64_t model_budget(const QueueOptions& o, size_t i) {
  if (o.model_memory_budget > 0) return o.model_memory_budget;
  const Worker& w = o.workers[i];
  uint64_t total = w.memory_bytes;
  if (w.cuda_device < 0 && total == 0)
    total = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) *
            static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t sharing = 0;
  for (const Worker& other : o.workers) sharing += other.cuda_device == w.cuda_device ? 1 : 0;
  return total / 2 / sharing;
}

struct WorkerSlot {
  int index = 0;
  Worker device;
  std::thread thread;
  std::atomic<bool> interrupt{false};
  // Guarded by State::mutex.
  std::string running;  // the prompt id it runs, "" when idle
  bool unload_models = false;
  bool free_memory = false;
};

}  // namespace

struct JobQueue::State {
  QueueOptions options;
  MessageSinks sinks;
  JobStore store;
  std::unique_ptr<WebhookDispatcher> webhooks;  // after store: stopped before it closes

  std::mutex mutex;
  std::condition_variable wake;  // new work, /free, or stop
  bool stop = false;
  bool started = false;
  std::vector<std::unique_ptr<WorkerSlot>> workers;

  State(QueueOptions o, MessageSinks s)
      : options(std::move(o)), sinks(guarded(std::move(s))), store(options.database_path) {
    store.set_webhook_url(options.webhook.url);
  }

  void notify_webhooks() {
    if (webhooks) webhooks->notify();
  }

  // A sink that throws (a hub bug, an allocation failure) must not take a worker thread,
  // and with it the process, down: the message is dropped and logged.
  static MessageSinks guarded(MessageSinks s) {
    MessageSinks g;
    if (s.json_message)
      g.json_message = [f = std::move(s.json_message)](const std::string& to, const json& m) {
        try {
          f(to, m);
        } catch (const std::exception& e) {
          DR_LOG(Error) << "queue: sending a websocket message failed: " << e.what();
        }
      };
    if (s.binary)
      g.binary = [f = std::move(s.binary)](const std::string& to, const std::vector<uint8_t>& b) {
        try {
          f(to, b);
        } catch (const std::exception& e) {
          DR_LOG(Error) << "queue: sending a preview failed: " << e.what();
        }
      };
    return g;
  }

  void send_status() {
    if (sinks.json_message) sinks.json_message("", status_message(store.remaining()));
  }

  void worker_loop(WorkerSlot& w, std::promise<void>& ready);
};

JobQueue::JobQueue(QueueOptions options, MessageSinks sinks)
    : state_(std::make_unique<State>(std::move(options), std::move(sinks))) {
  DR_CHECK(!state_->options.workers.empty(), "job_queue", "at least one worker is needed");
}

JobQueue::~JobQueue() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    s.stop = true;
    for (auto& w : s.workers)
      if (!w->running.empty()) w->interrupt = true;
  }
  s.wake.notify_all();
  for (auto& w : s.workers)
    if (w->thread.joinable()) w->thread.join();
  s.webhooks.reset();
}

void JobQueue::start() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    DR_CHECK(!s.started, "job_queue", "start() called twice");
    s.started = true;
  }
  const Recovery r =
      s.store.recover(s.options.rerun_interrupted, s.options.max_attempts, s.options.max_history);
  for (const auto& id : r.requeued)
    DR_LOG(Warn) << "queue: prompt " << id
                 << " was running when the server stopped; running it again";
  for (const auto& id : r.failed)
    DR_LOG(Warn) << "queue: prompt " << id
                 << " was running when the server stopped; recorded as failed";
  const int pending = static_cast<int>(s.store.pending().size());
  if (pending > 0) {
    DR_LOG(Info) << "queue: " << pending << " prompt(s) pending at start";
  }
  // The outbox as the last run left it (and recovery's failures) goes out first.
  const size_t undelivered = s.store.outbox().size();
  if (!s.options.webhook.url.empty()) {
    s.webhooks = std::make_unique<WebhookDispatcher>(s.store, s.options.webhook);
    s.webhooks->start();
    if (undelivered > 0)
      DR_LOG(Info) << "webhook: " << undelivered << " delivery(ies) left from the last run";
  } else if (undelivered > 0) {
    DR_LOG(Warn) << "webhook: " << undelivered
                 << " delivery(ies) left from the last run wait for --webhook-url";
  }

  // Each worker builds its Executor on its own thread (a CUDA device is bound per
  // thread); start() waits for all of them so a bad device fails here, loudly.
  std::vector<std::promise<void>> ready(s.options.workers.size());
  for (size_t i = 0; i < s.options.workers.size(); ++i) {
    auto w = std::make_unique<WorkerSlot>();
    w->index = static_cast<int>(i);
    w->device = s.options.workers[i];
    s.workers.push_back(std::move(w));
  }
  for (size_t i = 0; i < s.workers.size(); ++i)
    s.workers[i]->thread =
        std::thread([&s, w = s.workers[i].get(), &p = ready[i]] { s.worker_loop(*w, p); });
  std::exception_ptr first_error;
  for (auto& p : ready) {
    try {
      p.get_future().get();
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error) {
    {
      std::lock_guard lock(s.mutex);
      s.stop = true;
    }
    s.wake.notify_all();
    for (auto& w : s.workers)
      if (w->thread.joinable()) w->thread.join();
    s.workers.clear();
    std::rethrow_exception(first_error);
  }
  s.send_status();
}

void JobQueue::State::worker_loop(WorkerSlot& w, std::promise<void>& ready) {
  std::unique_ptr<workflow::Executor> executor;
  try {
    executor = std::make_unique<workflow::Executor>(
        options.paths, w.device.cuda_device, model_budget(options, static_cast<size_t>(w.index)),
        options.preview, options.limits);
  } catch (...) {
    ready.set_exception(std::current_exception());
    return;
  }
  ready.set_value();
  const std::string where = "queue: worker " + std::to_string(w.index) + ": ";

  std::unique_lock lock(mutex);
  while (true) {
    // POST /free is honoured between prompts (ComfyUI: free_memory implies unloading).
    if (w.unload_models || w.free_memory) {
      const bool unload = w.unload_models || w.free_memory, clear = w.free_memory;
      w.unload_models = w.free_memory = false;
      lock.unlock();
      try {
        executor->free_memory(unload, clear);
      } catch (const std::exception& e) {
        DR_LOG(Error) << where << "free failed: " << e.what();
      }
      lock.lock();
      continue;
    }
    if (stop) break;

    std::optional<QueuedJob> job;
    try {
      job = store.claim(w.index);
    } catch (const std::exception& e) {
      DR_LOG(Error) << where << "cannot claim a prompt: " << e.what();
      wake.wait_for(lock, std::chrono::seconds(1));
      continue;
    }
    if (!job) {
      wake.wait(lock);
      continue;
    }
    w.running = job->prompt_id;
    w.interrupt = false;
    lock.unlock();
    send_status();

    RunOutcome out;
    try {
      out = run_job(*executor, *job, sinks, w.interrupt);
    } catch (const std::exception& e) {
      // run_job catches the executor's exceptions; this is a malformed stored item.
      DR_LOG(Error) << where << "prompt " << job->prompt_id << " failed: " << e.what();
      const json error = json::object({{"prompt_id", job->prompt_id},
                                       {"exception_message", e.what()},
                                       {"exception_type", "darkroom.QueueError"},
                                       {"timestamp", now_ms()}});
      out.status = workflow::ExecutionResult::Status::Error;
      out.result = {{"outputs", json::object()},
                    {"status", history_status(false, json::array({{"execution_error", error}}))},
                    {"meta", json::object()}};
    }

    lock.lock();
    // Interrupted by shutdown, not by a user: queued again, to run after the restart.
    const bool requeue = stop && out.status == workflow::ExecutionResult::Status::Interrupted;
    w.running.clear();
    lock.unlock();
    try {
      if (requeue)
        store.release(job->prompt_id);
      else
        store.finish(job->prompt_id, out.result, options.max_history);
    } catch (const std::exception& e) {
      // Left running in the database: the next start re-runs it.
      DR_LOG(Error) << where << "cannot record prompt " << job->prompt_id << ": " << e.what();
    }
    if (!requeue) notify_webhooks();
    send_status();
    // main.py: after task_done, executing with node null tells the client it is over.
    if (!requeue && !job->client_id.empty() && sinks.json_message)
      sinks.json_message(job->client_id, executing_message(nullptr, job->prompt_id));
    lock.lock();
  }
}

Submitted JobQueue::submit(const json& prompt, const json& extra_data,
                           const std::vector<std::string>& outputs, const std::string& client_id,
                           const std::string& prompt_id, bool front, std::optional<double> number) {
  State& s = *state_;
  DR_CHECK(prompt.is_object(), "job_queue", "a prompt must be a JSON object");
  DR_CHECK(extra_data.is_object() || extra_data.is_null(), "job_queue",
           "extra_data must be a JSON object");
  if (number) DR_CHECK(std::isfinite(*number), "job_queue", "number must be finite");
  json extra = extra_data.is_object() ? extra_data : json::object();
  std::string client = client_id;
  if (client.empty() && extra.contains("client_id") && extra["client_id"].is_string())
    client = extra["client_id"].get<std::string>();
  if (!client.empty()) extra["client_id"] = client;
  for (const char* key : kSensitiveExtraData) extra.erase(key);
  if (!extra.contains("create_time")) extra["create_time"] = now_ms();

  Submitted sub;
  sub.prompt_id = prompt_id.empty() ? new_prompt_id() : prompt_id;
  const json n = s.store.add(sub.prompt_id, prompt, extra, outputs, client, front, number,
                             s.options.max_queued_per_client);
  if (n.is_null()) {
    sub.refused = true;
    return sub;
  }
  sub.number = static_cast<int64_t>(std::llround(n.get<double>()));
  {
    std::lock_guard lock(s.mutex);  // pairs with the workers' wait: no lost wake-up
  }
  s.wake.notify_all();
  s.send_status();
  return sub;
}

json JobQueue::queue() const {
  const auto [running, pending] = state_->store.running_and_pending();
  json r = json::array(), p = json::array();
  for (const auto& j : running) r.push_back(j.item);
  for (const auto& j : pending) p.push_back(j.item);
  return {{"queue_running", r}, {"queue_pending", p}};
}

int JobQueue::remaining() const {
  return state_->store.remaining();
}

int JobQueue::max_queued_per_client() const {
  return state_->options.max_queued_per_client;
}

int JobQueue::queued_by_client(const std::string& client_id) const {
  return state_->store.queued_by_client(client_id);
}

void JobQueue::delete_pending(const std::vector<std::string>& prompt_ids) {
  bool any = false;
  for (const auto& id : prompt_ids) any = state_->store.delete_pending(id) || any;
  if (any) state_->send_status();
}

void JobQueue::clear_pending() {
  if (state_->store.clear_pending() > 0) state_->send_status();
}

bool JobQueue::interrupt(const std::optional<std::string>& prompt_id) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  bool any = false;
  for (auto& w : s.workers) {
    if (w->running.empty() || (prompt_id && w->running != *prompt_id)) continue;
    w->interrupt = true;
    any = true;
  }
  return any;
}

bool JobQueue::cancel(const std::string& prompt_id) {
  if (state_->store.delete_pending(prompt_id)) {
    state_->send_status();
    return true;
  }
  return interrupt(prompt_id);
}

nlohmann::ordered_json JobQueue::history(std::optional<int> max_items, int offset) const {
  return state_->store.history(max_items, offset);
}

json JobQueue::history(const std::string& prompt_id) const {
  json out = json::object();
  if (auto e = state_->store.history_entry(prompt_id)) out[prompt_id] = std::move(*e);
  return out;
}

void JobQueue::delete_history(const std::vector<std::string>& prompt_ids) {
  for (const auto& id : prompt_ids) state_->store.delete_history(id);
}

void JobQueue::clear_history() {
  state_->store.clear_history();
}

void JobQueue::free(bool unload_models, bool free_memory) {
  State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    for (auto& w : s.workers) {
      w->unload_models = w->unload_models || unload_models;
      w->free_memory = w->free_memory || free_memory;
    }
  }
  s.wake.notify_all();
}

}  // namespace darkroom::queue
