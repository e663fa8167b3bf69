// The job store's per-client limit and webhook outbox (job_store.h, webhook.h), on a real
// database file. Expected payloads are built in the test from the history entry the store
// returns and the rules in webhook.h (status from status_str / execution_interrupted,
// client_id from extra_data, number from the queue item). The crash test forks a child
// that is SIGKILLed inside finish()'s commit: history and outbox land together or not.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "queue/comfy_messages.h"
#include "queue/job_store.h"
#include "queue/webhook.h"

namespace darkroom::queue {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUrl = "http://127.0.0.1:9/hook";

class JobStoreOutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/darkroom-outbox-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/queue.sqlite3";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // add() with a limit; the client goes into extra_data as JobQueue::submit puts it.
  static json add(JobStore& s, const std::string& id, const std::string& client, int limit) {
    json extra = json::object();
    if (!client.empty()) extra["client_id"] = client;
    return s.add(id, {{"3", {{"class_type", "KSampler"}}}}, extra, {"9"}, client, false,
                 std::nullopt, limit);
  }
  static json result(const std::string& status_str, const char* last_message) {
    json messages = json::array({json::array({"execution_start", {{"prompt_id", "x"}}})});
    messages.push_back(json::array({last_message, {{"prompt_id", "x"}}}));
    return {{"outputs", {{"9", {{"images", {{{"filename", "x_00001_.png"}}}}}}}},
            {"status",
             {{"status_str", status_str},
              {"completed", status_str == "success"},
              {"messages", messages}}},
            {"meta", json::object()}};
  }

  std::string dir_, path_;
};

TEST_F(JobStoreOutboxTest, ClientLimitCountsPendingAndRunningPerClientAndSurvivesReopen) {
  {
    JobStore s(path_);
    EXPECT_EQ(add(s, "a1", "alice", 2), json(0));
    EXPECT_EQ(add(s, "a2", "alice", 2), json(1));
    EXPECT_TRUE(add(s, "a3", "alice", 2).is_null());  // refused
    EXPECT_EQ(s.pending().size(), 2u);                // and not stored
    EXPECT_EQ(add(s, "b1", "bob", 2), json(2));       // the counter skipped nothing
    EXPECT_EQ(add(s, "n1", "", 1), json(3));          // anonymous: one shared client
    EXPECT_TRUE(add(s, "n2", "", 1).is_null());
    EXPECT_EQ(add(s, "a4", "alice", 0), json(4));  // 0: no limit
    EXPECT_EQ(s.queued_by_client("alice"), 3);
    EXPECT_EQ(s.queued_by_client(""), 1);
    // A running prompt counts; a finished one does not.
    ASSERT_EQ(s.claim(0)->prompt_id, "a1");
    EXPECT_TRUE(add(s, "a5", "alice", 3).is_null());
    s.finish("a1", result("success", "execution_success"), 100);
    EXPECT_EQ(s.queued_by_client("alice"), 2);
    ASSERT_EQ(s.claim(0)->prompt_id, "a2");  // left running: a crash
  }
  JobStore s(path_);
  EXPECT_EQ(s.queued_by_client("alice"), 2);
  EXPECT_TRUE(add(s, "a6", "alice", 2).is_null());
  EXPECT_EQ(s.recover(true, 3, 100).requeued, std::vector<std::string>{"a2"});
  EXPECT_TRUE(add(s, "a6", "alice", 2).is_null());
  EXPECT_TRUE(s.delete_pending("a4"));
  EXPECT_EQ(add(s, "a6", "alice", 2), json(5));
}

TEST_F(JobStoreOutboxTest, EveryHistoryEntryPutsItsPayloadInTheOutboxWhenAUrlIsSet) {
  {
    JobStore s(path_);
    add(s, "quiet", "alice", 0);
    s.claim(0);
    s.finish("quiet", result("success", "execution_success"), 100);
    EXPECT_TRUE(s.outbox().empty());  // no URL: no webhooks
  }
  JobStore s(path_);
  s.set_webhook_url(kUrl);
  const char* cases[][3] = {{"ok", "success", "execution_success"},
                            {"bad", "error", "execution_error"},
                            {"stop", "error", "execution_interrupted"}};
  for (auto& c : cases) add(s, c[0], "alice", 0);
  add(s, "anon", "", 0);
  add(s, "crash", "bob", 0);
  const int64_t before = now_ms();
  for (auto& c : cases) {
    ASSERT_EQ(s.claim(0)->prompt_id, c[0]);
    s.finish(c[0], result(c[1], c[2]), 100);
  }
  ASSERT_EQ(s.claim(0)->prompt_id, "anon");
  s.finish("anon", result("success", "execution_success"), 100);
  ASSERT_EQ(s.claim(0)->prompt_id, "crash");
  // A prompt failed by recovery ended too: it gets its webhook.
  EXPECT_EQ(s.recover(false, 3, 100).failed, std::vector<std::string>{"crash"});
  const int64_t after = now_ms();

  const auto out = s.outbox();
  ASSERT_EQ(out.size(), 5u);
  const std::vector<std::string> ids = {"ok", "bad", "stop", "anon", "crash"};
  const std::vector<std::string> status = {"success", "error", "interrupted", "success", "error"};
  const std::vector<json> client = {"alice", "alice", "alice", nullptr, "bob"};
  for (size_t i = 0; i < out.size(); ++i) {
    SCOPED_TRACE(ids[i]);
    const json entry = s.history_entry(ids[i]).value();
    const json body = json::parse(out[i].body);
    EXPECT_EQ(out[i].prompt_id, ids[i]);
    EXPECT_EQ(out[i].url, kUrl);
    EXPECT_EQ(out[i].attempts, 0);
    EXPECT_EQ(body.size(), 6u);
    EXPECT_EQ(body["prompt_id"], ids[i]);
    EXPECT_EQ(body["number"], entry["prompt"][0]);
    EXPECT_EQ(body["number"], json(i + 1));  // "quiet" was 0
    EXPECT_EQ(body["status"], status[i]);
    EXPECT_EQ(body["outputs"], entry["outputs"]);
    EXPECT_EQ(body["client_id"], client[i]);
    EXPECT_GE(body["completed_at"].get<int64_t>(), before);
    EXPECT_LE(body["completed_at"].get<int64_t>(), after);
  }
}

TEST_F(JobStoreOutboxTest, FailedDeliveriesWaitTheirTurnAndRemovedOnesAreGone) {
  JobStore s(path_);
  s.set_webhook_url(kUrl);
  for (const char* id : {"a", "b", "c"}) {
    add(s, id, "", 0);
    s.claim(0);
    s.finish(id, result("success", "execution_success"), 100);
  }
  auto next = s.next_delivery();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->prompt_id, "a");
  s.delivery_failed(next->id, now_ms() + 60000, "HTTP 500");
  EXPECT_EQ(s.next_delivery()->prompt_id, "b");  // a waits behind the ones due now
  s.remove_delivery(s.next_delivery()->id);
  s.remove_delivery(s.next_delivery()->id);
  next = s.next_delivery();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->prompt_id, "a");
  EXPECT_EQ(next->attempts, 1);
  EXPECT_GT(next->next_attempt_ms, now_ms() + 50000);
  s.remove_delivery(next->id);
  EXPECT_FALSE(s.next_delivery());
}

TEST_F(JobStoreOutboxTest, KillInsideFinishsCommitLosesHistoryAndOutboxTogether) {
  {
    JobStore s(path_);
    add(s, "a", "alice", 0);
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    JobStore s(path_);
    s.set_webhook_url(kUrl);
    s.claim(0);
    s.set_commit_hook([fd = fds[1]] {
      const char c = 'h';
      if (write(fd, &c, 1) != 1) _exit(2);
      pause();  // killed here: history and outbox rows written, not committed
    });
    s.finish("a", result("success", "execution_success"), 100);
    _exit(0);
  }
  close(fds[1]);
  char c = 0;
  ASSERT_EQ(read(fds[0], &c, 1), 1);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  close(fds[0]);
  {
    JobStore s(path_);
    EXPECT_FALSE(s.history_entry("a"));
    EXPECT_TRUE(s.outbox().empty());
    s.set_webhook_url(kUrl);
    EXPECT_EQ(s.recover(true, 3, 100).requeued, std::vector<std::string>{"a"});
    s.claim(0);
    s.finish("a", result("success", "execution_success"), 100);
  }
  JobStore s(path_);  // both committed, and still there after a reopen
  EXPECT_TRUE(s.history_entry("a"));
  ASSERT_EQ(s.outbox().size(), 1u);
  EXPECT_EQ(json::parse(s.outbox()[0].body)["prompt_id"], "a");
}

}  // namespace
}  // namespace darkroom::queue
