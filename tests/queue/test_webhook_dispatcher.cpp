// WebhookDispatcher over a real job store with a fake transport (webhook.h): order,
// retries with exponential backoff measured on the clock, a final refusal, the attempt
// bound, and an outbox left by an earlier process. Expected waits come from the rule in
// webhook.h (first_backoff_ms, doubling, capped), not from the code under test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "queue/job_store.h"
#include "queue/webhook.h"

namespace darkroom::queue {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class WebhookDispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/darkroom-webhook-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/queue.sqlite3";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A finished prompt with its outbox entry.
  static void finished(JobStore& s, const std::string& id) {
    s.set_webhook_url("http://127.0.0.1:9/hook");
    s.add(id, json::object(), {{"client_id", "c"}}, {"9"}, "c", false, std::nullopt);
    s.claim(0);
    s.finish(
        id,
        {{"outputs", json::object()},
         {"status", {{"status_str", "success"}, {"completed", true}, {"messages", json::array()}}},
         {"meta", json::object()}},
        100);
  }

  // A transport that answers from `answers` in turn (then: delivered) and logs each call.
  struct Fake {
    std::mutex mutex;
    std::vector<WebhookResult> answers;
    std::vector<std::pair<std::string, Clock::time_point>> calls;  // prompt_id, when

    WebhookOptions options(int64_t first_backoff_ms, int max_attempts) {
      WebhookOptions o;
      o.url = "http://127.0.0.1:9/hook";
      o.first_backoff_ms = first_backoff_ms;
      o.max_attempts = max_attempts;
      o.post = [this](const std::string&, const std::string& body) {
        std::lock_guard lock(mutex);
        calls.emplace_back(json::parse(body)["prompt_id"], Clock::now());
        if (answers.empty()) return WebhookResult{true, false, ""};
        WebhookResult r = answers.front();
        answers.erase(answers.begin());
        return r;
      };
      return o;
    }
    size_t count() {
      std::lock_guard lock(mutex);
      return calls.size();
    }
  };

  static void wait_until(const std::function<bool()>& done) {
    const auto end = Clock::now() + std::chrono::seconds(20);
    while (!done()) {
      ASSERT_LT(Clock::now(), end);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::string dir_, path_;
};

TEST_F(WebhookDispatcherTest, BackoffDoublesFromTheFirstWaitUpToTheCap) {
  WebhookOptions o;
  o.first_backoff_ms = 1000;
  o.max_backoff_ms = 300000;
  const std::vector<int64_t> expected = {1000,  2000,   4000,   8000,   16000, 32000,
                                         64000, 128000, 256000, 300000, 300000};
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(webhook_backoff_ms(o, static_cast<int>(i) + 1), expected[i]) << i;
  EXPECT_EQ(webhook_backoff_ms(o, 1000), 300000);
}

TEST_F(WebhookDispatcherTest, PayloadTakesItsFieldsFromTheHistoryEntry) {
  // An explicit float number, an empty client_id (no client), an interrupted run.
  const json entry = {
      {"prompt", json::array({2.5, "p", json::object(), {{"client_id", ""}}, {"9"}})},
      {"outputs", {{"9", {{"images", json::array()}}}}},
      {"status",
       {{"status_str", "error"},
        {"completed", false},
        {"messages", json::array({json::array({"execution_start", json::object()}),
                                  json::array({"execution_interrupted", json::object()})})}}},
      {"meta", json::object()}};
  const json p = webhook_payload("p", entry, 1234);
  EXPECT_EQ(p, json({{"prompt_id", "p"},
                     {"number", 2.5},
                     {"status", "interrupted"},
                     {"outputs", {{"9", {{"images", json::array()}}}}},
                     {"client_id", nullptr},
                     {"completed_at", 1234}}));
}

TEST_F(WebhookDispatcherTest, DeliversInOrderRetriesWithBackoffAndEmptiesTheOutbox) {
  JobStore s(path_);
  Fake fake;
  const WebhookResult refused_conn{false, true, "Connection refused"};
  fake.answers = {refused_conn, refused_conn};  // the first delivery fails twice
  WebhookDispatcher d(s, fake.options(100, 5));
  d.start();
  finished(s, "a");
  d.notify();
  wait_until([&] { return fake.count() >= 3; });
  finished(s, "b");
  d.notify();
  wait_until([&] { return s.outbox().empty(); });
  std::lock_guard lock(fake.mutex);
  ASSERT_EQ(fake.calls.size(), 4u);
  EXPECT_EQ(fake.calls[0].first, "a");
  EXPECT_EQ(fake.calls[1].first, "a");
  EXPECT_EQ(fake.calls[2].first, "a");
  EXPECT_EQ(fake.calls[3].first, "b");
  auto ms = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  const int64_t gap1 = ms(fake.calls[1].second - fake.calls[0].second);
  const int64_t gap2 = ms(fake.calls[2].second - fake.calls[1].second);
  // Due times are whole milliseconds of the system clock: up to 1 ms early.
  EXPECT_GE(gap1, 100 - 1);  // first_backoff_ms
  EXPECT_LT(gap1, 1000);
  EXPECT_GE(gap2, 200 - 1);  // doubled
  EXPECT_LT(gap2, 1100);
}

TEST_F(WebhookDispatcherTest, AFinalRefusalAndTheAttemptBoundDropTheDelivery) {
  JobStore s(path_);
  Fake fake;
  const WebhookResult retry{false, true, "HTTP 500"};
  fake.answers = {{false, false, "HTTP 404"}, retry, retry, retry, retry};
  WebhookDispatcher d(s, fake.options(10, 3));
  finished(s, "gone");
  finished(s, "bounded");
  d.start();
  wait_until([&] { return s.outbox().empty(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::lock_guard lock(fake.mutex);
  std::vector<std::string> ids;
  for (auto& c : fake.calls) ids.push_back(c.first);
  EXPECT_EQ(ids, (std::vector<std::string>{"gone", "bounded", "bounded", "bounded"}));
}

TEST_F(WebhookDispatcherTest, AnOutboxLeftByAnEarlierProcessIsSentAtStart) {
  {
    JobStore s(path_);
    finished(s, "old");
    auto e = s.next_delivery();
    s.delivery_failed(e->id, 0, "Connection refused");  // failed once, due now
  }
  JobStore s(path_);
  Fake fake;
  WebhookDispatcher d(s, fake.options(10, 5));
  ASSERT_EQ(s.outbox().size(), 1u);
  d.start();  // no notify(): the start looks at the outbox
  wait_until([&] { return s.outbox().empty(); });
  EXPECT_EQ(fake.count(), 1u);
}

}  // namespace
}  // namespace darkroom::queue
