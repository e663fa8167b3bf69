// JobQueue with real workers and the real Executor on a workflow that needs no model
// (LoadImage → SaveImage on a committed PNG), a real SQLite file in a temp directory, and
// sinks that record what the websocket hub would send. Expected messages and history
// shapes are ComfyUI's (execution.py / main.py); see tests/server/ for the same through
// the real server process with a model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "queue/job_queue.h"

namespace darkroom::queue {
namespace {

namespace fs = std::filesystem;

struct Recorded {
  std::string client;
  json message;
};

class Recorder {
 public:
  MessageSinks sinks() {
    MessageSinks s;
    s.json_message = [this](const std::string& client, const json& m) {
      std::lock_guard lock(mutex_);
      messages_.push_back({client, m});
    };
    s.binary = [this](const std::string&, const std::vector<uint8_t>&) {
      std::lock_guard lock(mutex_);
      ++binary_;
    };
    return s;
  }
  std::vector<Recorded> messages() {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  // The messages about `prompt_id` (not status broadcasts).
  std::vector<Recorded> of(const std::string& prompt_id) {
    std::vector<Recorded> out;
    for (auto& r : messages())
      if (r.message["data"].contains("prompt_id") && r.message["data"]["prompt_id"] == prompt_id)
        out.push_back(r);
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<Recorded> messages_;
  int binary_ = 0;
};

class JobQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/darkroom-jobqueue-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    options_.paths = workflow::FolderPaths::under(dir_);
    options_.database_path = dir_ + "/queue.sqlite3";
    options_.preview.method = "none";
    fs::copy_file(std::string(DARKROOM_TEST_DATA) + "/images/grey.png",
                  options_.paths.input_directory + "/grey.png");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static json prompt(const std::string& prefix) {
    return {{"1", {{"class_type", "LoadImage"}, {"inputs", {{"image", "grey.png"}}}}},
            {"2",
             {{"class_type", "SaveImage"},
              {"inputs", {{"images", json::array({"1", 0})}, {"filename_prefix", prefix}}}}}};
  }
  Submitted submit(JobQueue& q, const std::string& prefix, const std::string& client = "c",
                   bool front = false) {
    const json p = prompt(prefix);
    const workflow::Validation v = workflow::validate_prompt(p, options_.paths);
    EXPECT_TRUE(v.ok) << v.error.dump() << v.node_errors.dump();
    return q.submit(p, json::object(), v.outputs, client, "", front, std::nullopt);
  }
  static void wait_idle(const JobQueue& q) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (q.remaining() > 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), end) << q.queue().dump();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  // Waits for ComfyUI's end-of-prompt message (executing, node null).
  static void wait_done(Recorder& rec, const std::string& prompt_id) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (true) {
      for (auto& r : rec.of(prompt_id))
        if (r.message["type"] == "executing" && r.message["data"]["node"].is_null()) return;
      ASSERT_LT(std::chrono::steady_clock::now(), end);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  static std::vector<std::string> types(const std::vector<Recorded>& rs) {
    std::vector<std::string> t;
    for (auto& r : rs) t.push_back(r.message["type"]);
    return t;
  }

  std::string dir_;
  QueueOptions options_;
};

TEST_F(JobQueueTest, TwoWorkersRunEveryPromptOnceWithComfyUIMessages) {
  Recorder rec;
  options_.workers = {Worker{-1}, Worker{-1}};
  JobQueue q(options_, rec.sinks());
  std::vector<Submitted> subs;
  for (int i = 0; i < 6; ++i) subs.push_back(submit(q, "q" + std::to_string(i)));
  EXPECT_EQ(q.remaining(), 6);
  EXPECT_EQ(q.queue()["queue_pending"].size(), 6u);
  q.start();
  for (auto& s : subs) wait_done(rec, s.prompt_id);
  EXPECT_EQ(q.remaining(), 0);
  const json h = q.history(std::nullopt, -1);
  ASSERT_EQ(h.size(), 6u);
  std::set<std::string> files;
  int fresh_runs = 0;
  for (int i = 0; i < 6; ++i) {
    const Submitted& s = subs[i];
    EXPECT_EQ(s.number, i);
    const json& e = h.at(s.prompt_id);
    EXPECT_EQ(e["status"]["status_str"], "success");
    EXPECT_EQ(e["prompt"][0], i);
    EXPECT_EQ(e["prompt"][3]["client_id"], "c");
    EXPECT_EQ(e["prompt"][4], json::array({"2"}));
    const json& img = e["outputs"]["2"]["images"][0];
    EXPECT_EQ(img["filename"], "q" + std::to_string(i) + "_00001_.png");
    EXPECT_TRUE(
        fs::exists(options_.paths.output_directory + "/" + img["filename"].get<std::string>()));
    files.insert(img["filename"]);
    // Each prompt's messages, to its client, in ComfyUI's order. A worker's node cache
    // keeps LoadImage (same inputs) after its first prompt, and then only SaveImage runs.
    const auto mine = rec.of(s.prompt_id);
    for (auto& r : mine) EXPECT_EQ(r.client, "c");
    ASSERT_GE(mine.size(), 2u);
    const json cached = mine[1].message["data"]["nodes"];
    ASSERT_TRUE(cached == json::array() || cached == json::array({"1"})) << cached;
    fresh_runs += cached.empty() ? 1 : 0;
    std::vector<std::string> expected = {"execution_start", "execution_cached"};
    if (cached.empty()) expected.push_back("executing");  // node 1
    for (const char* t : {"executing", "executed", "execution_success", "executing"})
      expected.push_back(t);
    EXPECT_EQ(types(mine), expected);
    EXPECT_EQ(mine[expected.size() - 4].message["data"]["node"], "2");
    EXPECT_EQ(mine[expected.size() - 3].message["data"]["output"], e["outputs"]["2"]);
    EXPECT_TRUE(mine.back().message["data"]["node"].is_null());
  }
  // One uncached run per worker that took prompts (each worker has its own Executor).
  EXPECT_GE(fresh_runs, 1);
  EXPECT_LE(fresh_runs, 2);
  EXPECT_EQ(files.size(), 6u);
  // Status broadcasts went to everyone, the last one with nothing left.
  int last_remaining = -1;
  for (auto& r : rec.messages())
    if (r.message["type"] == "status") {
      EXPECT_EQ(r.client, "");
      last_remaining = r.message["data"]["status"]["exec_info"]["queue_remaining"];
    }
  EXPECT_EQ(last_remaining, 0);
}

TEST_F(JobQueueTest, CancelBeforeStartAndPendingSurviveARestartInOrder) {
  Recorder rec;
  std::vector<Submitted> subs;
  {
    JobQueue q(options_, rec.sinks());
    for (int i = 0; i < 4; ++i) subs.push_back(submit(q, "r" + std::to_string(i)));
    subs.push_back(submit(q, "front", "c", /*front=*/true));
    EXPECT_TRUE(q.cancel(subs[1].prompt_id));
    EXPECT_FALSE(q.cancel(subs[1].prompt_id));
    EXPECT_FALSE(q.interrupt(std::nullopt));  // nothing runs
    // Never started: destroyed with everything pending.
  }
  Recorder rec2;
  JobQueue q(options_, rec2.sinks());
  const json pending = q.queue()["queue_pending"];
  std::vector<std::string> order;
  for (const auto& item : pending) order.push_back(item[1]);
  EXPECT_EQ(order, (std::vector<std::string>{subs[4].prompt_id, subs[0].prompt_id,
                                             subs[2].prompt_id, subs[3].prompt_id}));
  q.start();
  wait_idle(q);
  for (size_t i : {0u, 2u, 3u, 4u}) wait_done(rec2, subs[i].prompt_id);
  const json h = q.history(std::nullopt, -1);
  EXPECT_EQ(h.size(), 4u);
  EXPECT_FALSE(h.contains(subs[1].prompt_id));
  // One worker runs them in queue order: the front one first. execution_start timestamps
  // are recorded in the history.
  auto started = [&](size_t i) {
    return h.at(subs[i].prompt_id)["status"]["messages"][0][1]["timestamp"].get<int64_t>();
  };
  EXPECT_LE(started(4), started(0));
  EXPECT_LE(started(0), started(2));
  EXPECT_LE(started(2), started(3));
  // New prompts continue the numbering.
  EXPECT_EQ(submit(q, "later").number, 5);
}

TEST_F(JobQueueTest, FreeMemoryBetweenPromptsDropsTheNodeCache) {
  Recorder rec;
  JobQueue q(options_, rec.sinks());
  q.start();
  auto cached_of = [&](const Submitted& s) {
    wait_done(rec, s.prompt_id);
    for (auto& r : rec.of(s.prompt_id))
      if (r.message["type"] == "execution_cached") return r.message["data"]["nodes"];
    return json();
  };
  EXPECT_EQ(cached_of(submit(q, "f")), json::array());
  // The same prompt again: ComfyUI's cache has both nodes.
  EXPECT_EQ(cached_of(submit(q, "f")), json::array({"1", "2"}));
  q.free(false, true);  // /free {"free_memory": true}: the cache goes
  EXPECT_EQ(cached_of(submit(q, "f")), json::array());
}

TEST_F(JobQueueTest, APromptWithoutClientSendsOnlyBroadcasts) {
  Recorder rec;
  JobQueue q(options_, rec.sinks());
  q.start();
  const Submitted s = submit(q, "anon", "");
  wait_idle(q);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(rec.of(s.prompt_id).empty());
  const json e = q.history(s.prompt_id).at(s.prompt_id);
  EXPECT_EQ(e["status"]["status_str"], "success");
  EXPECT_FALSE(e["prompt"][3].contains("client_id"));
  EXPECT_EQ(e["status"]["messages"].size(), 3u);  // still recorded for the history
}

// Webhooks through the queue: a fake transport that fails the first attempt of every
// delivery; each finished prompt is posted once it succeeds, from the dispatcher's thread
// (not a worker's: a worker blocked in post() would stop the queue), and the outbox ends
// empty. The per-client limit refuses a third prompt of one client while two are queued.
TEST_F(JobQueueTest, WebhooksRetryOffTheWorkerThreadAndTheClientLimitRefuses) {
  std::mutex mutex;
  std::vector<json> delivered;
  std::set<std::string> tried;
  std::set<std::thread::id> post_threads;
  options_.webhook.url = "http://127.0.0.1:9/hook";
  options_.webhook.first_backoff_ms = 20;
  options_.webhook.post = [&](const std::string& url, const std::string& body) {
    EXPECT_EQ(url, "http://127.0.0.1:9/hook");
    std::lock_guard lock(mutex);
    post_threads.insert(std::this_thread::get_id());
    const json j = json::parse(body);
    if (tried.insert(j["prompt_id"].get<std::string>()).second)
      return WebhookResult{false, true, "HTTP 503"};
    delivered.push_back(j);
    return WebhookResult{true, false, ""};
  };
  options_.max_queued_per_client = 2;
  Recorder rec;
  std::vector<std::string> ids;
  {
    JobQueue q(options_, rec.sinks());
    // Not started yet: nothing runs, so the two stay queued.
    ids.push_back(submit(q, "w0", "alice").prompt_id);
    ids.push_back(submit(q, "w1", "alice").prompt_id);
    const Submitted refused = submit(q, "w2", "alice");
    EXPECT_TRUE(refused.refused);
    EXPECT_EQ(q.queued_by_client("alice"), 2);
    EXPECT_EQ(q.remaining(), 2);
    ids.push_back(submit(q, "w3", "bob").prompt_id);
    EXPECT_FALSE(ids.back().empty());
    q.start();
    wait_idle(q);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (true) {
      {
        std::lock_guard lock(mutex);
        if (delivered.size() >= 3) break;
      }
      ASSERT_LT(std::chrono::steady_clock::now(), end);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(q.queued_by_client("alice"), 0);
    EXPECT_FALSE(submit(q, "w4", "alice").refused);
    wait_idle(q);
  }
  std::lock_guard lock(mutex);
  ASSERT_GE(delivered.size(), 3u);
  std::map<std::string, json> by_id;  // retries may interleave: compare by prompt id
  for (const json& j : delivered) {
    EXPECT_EQ(by_id.count(j["prompt_id"]), 0u) << "delivered twice: " << j.dump();
    by_id[j["prompt_id"]] = j;
  }
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(by_id.count(ids[i]), 1u) << ids[i];
    const json& j = by_id[ids[i]];
    EXPECT_EQ(j["status"], "success");
    EXPECT_EQ(j["client_id"], i < 2 ? "alice" : "bob");
    EXPECT_EQ(j["outputs"]["2"]["images"].size(), 1u);
  }
  EXPECT_EQ(post_threads.size(), 1u);  // one dispatcher thread for every delivery
}

}  // namespace
}  // namespace darkroom::queue
