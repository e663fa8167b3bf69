// The SQLite job store on a real database file in a temp directory. Expected orders and
// numbers come from ComfyUI's documented PromptQueue behaviour (a heap of (number,
// prompt_id, ...) tuples; number = the server's counter, or -counter with "front") rebuilt
// in the test with a plain sort. Crash tests fork a child that uses the store and is
// killed with SIGKILL (mid-commit where it matters); the parent reopens the file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "queue/job_store.h"
#include "queue/sqlite_db.h"

namespace darkroom::queue {
namespace {

namespace fs = std::filesystem;

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/darkroom-jobstore-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/queue.sqlite3";
  }
  void TearDown() override { fs::remove_all(dir_); }

  static json prompt_with_seed(int seed) {
    return {{"3", {{"class_type", "KSampler"}, {"inputs", {{"seed", seed}}}}}};
  }
  static json add(JobStore& s, const std::string& id, bool front = false,
                  std::optional<double> number = std::nullopt) {
    return s.add(id, prompt_with_seed(static_cast<int>(id.size())), {{"client_id", "c"}}, {"9"},
                 "c", front, number);
  }
  static std::vector<std::string> ids(const std::vector<QueuedJob>& jobs) {
    std::vector<std::string> out;
    for (const auto& j : jobs) out.push_back(j.prompt_id);
    return out;
  }
  static json success(int node_value) {
    return {
        {"outputs", {{"9", {{"images", {{{"filename", "x.png"}, {"value", node_value}}}}}}}},
        {"status", {{"status_str", "success"}, {"completed", true}, {"messages", json::array()}}},
        {"meta", json::object()}};
  }

  std::string dir_, path_;
};

TEST_F(JobStoreTest, PendingOrderFollowsComfyUINumbersAndFront) {
  JobStore s(path_);
  // A random mix of plain and front submissions, checked against ComfyUI's rule.
  std::mt19937 rng(7);
  struct Ref {
    double number;
    std::string id;
  };
  std::vector<Ref> ref;
  for (int i = 0; i < 40; ++i) {
    const bool front = i > 0 && rng() % 4 == 0;  // the counter starts at 0: -0 is not "front"
    const std::string id = "p" + std::to_string(1000 + (rng() % 9000)) + "-" + std::to_string(i);
    const json n = add(s, id, front);
    const double expected = front ? -double(i) : double(i);
    ASSERT_TRUE(n.is_number_integer()) << n;
    EXPECT_EQ(n.get<double>(), expected) << id;
    ref.push_back({expected, id});
  }
  std::sort(ref.begin(), ref.end(), [](const Ref& a, const Ref& b) {
    return std::tie(a.number, a.id) < std::tie(b.number, b.id);
  });
  std::vector<std::string> expected;
  for (const auto& r : ref) expected.push_back(r.id);
  EXPECT_EQ(ids(s.pending()), expected);
  // Claims come out in the same order.
  for (size_t i = 0; i < 5; ++i) {
    auto j = s.claim(0);
    ASSERT_TRUE(j);
    EXPECT_EQ(j->prompt_id, expected[i]);
    EXPECT_EQ(j->attempts, 1);
  }
  EXPECT_EQ(s.remaining(), 40);
  EXPECT_EQ(s.running().size(), 5u);
  EXPECT_EQ(s.pending().size(), 35u);
}

TEST_F(JobStoreTest, FrontGoesAheadOfEverythingPendingAndExplicitNumbersAreFloats) {
  JobStore s(path_);
  EXPECT_EQ(add(s, "a", false, -5.0), json(-5.0));  // explicit: kept, as a float
  EXPECT_EQ(add(s, "b"), json(1));                  // the counter moved on anyway
  // ComfyUI's -counter (-2) would land behind "a": one below the lowest pending instead.
  EXPECT_EQ(add(s, "c", true), json(-6));
  EXPECT_EQ(add(s, "d", false, 0.5), json(0.5));
  EXPECT_EQ(ids(s.pending()), (std::vector<std::string>{"c", "a", "d", "b"}));
  const QueuedJob first = s.pending().front();
  EXPECT_EQ(first.item,
            json::array({-6, "c", prompt_with_seed(1), {{"client_id", "c"}}, json::array({"9"})}));
  EXPECT_EQ(first.client_id, "c");
}

TEST_F(JobStoreTest, DuplicateQueuedPromptIdIsRefused) {
  JobStore s(path_);
  add(s, "x");
  EXPECT_THROW(add(s, "x"), Error);
  ASSERT_TRUE(s.claim(0));
  EXPECT_THROW(add(s, "x"), Error);  // running
  s.finish("x", success(1), 100);
  add(s, "x");  // in history only: may be queued again (ComfyUI overwrites the entry)
  EXPECT_EQ(s.remaining(), 1);
}

TEST_F(JobStoreTest, DeleteAndClearTouchOnlyPending) {
  JobStore s(path_);
  for (const char* id : {"a", "b", "c", "d"}) add(s, id);
  ASSERT_EQ(s.claim(0)->prompt_id, "a");
  EXPECT_FALSE(s.delete_pending("a"));  // running
  EXPECT_TRUE(s.delete_pending("c"));
  EXPECT_FALSE(s.delete_pending("c"));
  EXPECT_FALSE(s.delete_pending("nope"));
  EXPECT_EQ(ids(s.pending()), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(s.clear_pending(), 2);
  EXPECT_TRUE(s.pending().empty());
  EXPECT_EQ(ids(s.running()), (std::vector<std::string>{"a"}));
  EXPECT_EQ(s.remaining(), 1);
}

TEST_F(JobStoreTest, HistoryRoundTripsThroughAReopen) {
  const json prompt = prompt_with_seed(42);
  const json extra = {{"client_id", "cl"}, {"extra_pnginfo", {{"workflow", {{"nodes", 3}}}}}};
  const json result = success(7);
  {
    JobStore s(path_);
    s.add("h1", prompt, extra, {"9", "12"}, "cl", false, std::nullopt);
    auto j = s.claim(3);
    ASSERT_TRUE(j);
    EXPECT_EQ(j->worker, 3);
    s.finish("h1", result, 100);
    EXPECT_EQ(s.remaining(), 0);
  }
  JobStore s(path_);
  auto e = s.history_entry("h1");
  ASSERT_TRUE(e);
  json expected = result;
  expected["prompt"] = json::array({0, "h1", prompt, extra, json::array({"9", "12"})});
  EXPECT_EQ(*e, expected);
  EXPECT_EQ(s.history(std::nullopt, -1), json({{"h1", expected}}));
  EXPECT_FALSE(s.history_entry("other"));
  // The counter carries over the restart: the next prompt is number 1.
  EXPECT_EQ(add(s, "h2"), json(1));
}

TEST_F(JobStoreTest, HistoryPagingAndTrimmingFollowComfyUI) {
  JobStore s(path_);
  const int max_history = 4;
  for (int i = 0; i < 6; ++i) {
    const std::string id = "e" + std::to_string(i);
    add(s, id);
    ASSERT_EQ(s.claim(0)->prompt_id, id);
    s.finish(id, success(i), max_history);
  }
  // The oldest two were dropped.
  EXPECT_EQ(s.history_size(), 4);
  auto keys = [](const json& h) {
    std::vector<std::string> k;
    for (const auto& [key, _] : h.items()) k.push_back(key);
    std::sort(k.begin(), k.end());
    return k;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(keys(s.history(std::nullopt, -1)), (V{"e2", "e3", "e4", "e5"}));
  // get_history(max_items=2): the newest two; offset=1, max_items=2: the 2nd and 3rd oldest.
  EXPECT_EQ(keys(s.history(2, -1)), (V{"e4", "e5"}));
  EXPECT_EQ(keys(s.history(2, 1)), (V{"e3", "e4"}));
  EXPECT_EQ(keys(s.history(std::nullopt, 3)), (V{"e5"}));
  EXPECT_EQ(s.history(std::nullopt, -1)["e3"]["outputs"]["9"]["images"][0]["value"], 3);
  EXPECT_TRUE(s.delete_history("e3"));
  EXPECT_FALSE(s.delete_history("e3"));
  EXPECT_EQ(keys(s.history(std::nullopt, -1)), (V{"e2", "e4", "e5"}));
  s.clear_history();
  EXPECT_EQ(s.history_size(), 0);
}

TEST_F(JobStoreTest, HistoryKeysFollowCompletionOrderNotPromptIdOrder) {
  // ComfyUI's history is a dict: its keys come in the order prompts finished. These ids
  // sort differently ("a" < "b" < "c") from the order they finish in.
  JobStore s(path_);
  const std::vector<std::string> order = {"c-first", "a-second", "b-third"};
  for (size_t i = 0; i < order.size(); ++i) {
    add(s, order[i]);
    ASSERT_EQ(s.claim(0)->prompt_id, order[i]);
    s.finish(order[i], success(static_cast<int>(i)), 100);
  }
  auto keys = [](const nlohmann::ordered_json& h) {
    std::vector<std::string> k;
    for (auto it = h.begin(); it != h.end(); ++it) k.push_back(it.key());
    return k;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(keys(s.history(std::nullopt, -1)), order);
  // The newest two, oldest of them first; and offset 1 from the oldest.
  EXPECT_EQ(keys(s.history(2, -1)), (V{"a-second", "b-third"}));
  EXPECT_EQ(keys(s.history(1, 1)), (V{"a-second"}));
  // The serialised text keeps the order too (what GET /history sends).
  const std::string text = s.history(std::nullopt, -1).dump();
  EXPECT_LT(text.find("\"c-first\""), text.find("\"a-second\""));
  EXPECT_LT(text.find("\"a-second\""), text.find("\"b-third\""));
}

TEST_F(JobStoreTest, RecoveryRerunsTheRunningPromptFirstThenFailsItAfterMaxAttempts) {
  {
    JobStore s(path_);
    for (const char* id : {"a", "b", "c"}) add(s, id);
    ASSERT_EQ(s.claim(0)->prompt_id, "a");
    // Dropped without finish(): what a crash leaves behind.
  }
  {
    JobStore s(path_);
    const Recovery r = s.recover(true, 2, 100);
    EXPECT_EQ(r.requeued, std::vector<std::string>{"a"});
    EXPECT_TRUE(r.failed.empty());
    EXPECT_EQ(ids(s.pending()), (std::vector<std::string>{"a", "b", "c"}));
    auto j = s.claim(0);
    EXPECT_EQ(j->prompt_id, "a");
    EXPECT_EQ(j->attempts, 2);  // second crash while running "a" follows
  }
  JobStore s(path_);
  const Recovery r = s.recover(true, 2, 100);
  EXPECT_TRUE(r.requeued.empty());
  EXPECT_EQ(r.failed, std::vector<std::string>{"a"});
  EXPECT_EQ(ids(s.pending()), (std::vector<std::string>{"b", "c"}));
  auto e = s.history_entry("a");
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["status"]["status_str"], "error");
  EXPECT_EQ((*e)["status"]["completed"], false);
  EXPECT_EQ((*e)["status"]["messages"][0][0], "execution_error");
  EXPECT_EQ((*e)["status"]["messages"][0][1]["exception_type"], "darkroom.ServerStopped");
  EXPECT_EQ((*e)["prompt"][1], "a");
}

TEST_F(JobStoreTest, RecoveryWithoutRerunMarksTheRunningPromptFailed) {
  {
    JobStore s(path_);
    add(s, "a");
    add(s, "b");
    s.claim(0);
  }
  JobStore s(path_);
  const Recovery r = s.recover(false, 3, 100);
  EXPECT_EQ(r.failed, std::vector<std::string>{"a"});
  EXPECT_EQ(ids(s.pending()), std::vector<std::string>{"b"});
  EXPECT_EQ(s.history_entry("a").value()["status"]["status_str"], "error");
}

// --- crashes in a forked child -----------------------------------------------------------

// Runs `child` in a forked process that writes one byte per milestone to a pipe; the
// parent reads `wait_for` bytes (or until EOF) and then SIGKILLs the child. Returns the
// bytes read.
template <class Fn>
std::string run_child_and_kill(Fn child, size_t wait_for) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    try {
      child(fds[1]);
    } catch (...) {
      _exit(3);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string got;
  char buf[256];
  while (got.size() < wait_for) {
    const ssize_t n = read(fds[0], buf, std::min(sizeof buf, wait_for - got.size()));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fds[0]);
  return got;
}

void write_byte(int fd, char c) {
  EXPECT_EQ(write(fd, &c, 1), 1);
}

TEST_F(JobStoreTest, EverySubmitThatReturnedSurvivesSigkill) {
  // The child submits as fast as it can and reports each add() that returned; it is
  // killed after 60 reports, at an arbitrary point of the next one.
  const std::string got = run_child_and_kill(
      [&](int fd) {
        JobStore s(path_);
        for (int i = 0;; ++i) {
          add(s, "k" + std::to_string(i));
          write_byte(fd, 'a');
        }
      },
      60);
  ASSERT_EQ(got.size(), 60u);
  JobStore s(path_);
  EXPECT_EQ(s.recover(true, 3, 100).requeued.size(), 0u);
  const auto pending = s.pending();
  // The ones acknowledged, maybe one more that committed before the kill, in order.
  ASSERT_GE(pending.size(), 60u);
  ASSERT_LE(pending.size(), 61u);
  for (size_t i = 0; i < pending.size(); ++i) {
    EXPECT_EQ(pending[i].prompt_id, "k" + std::to_string(i));
    EXPECT_EQ(pending[i].item[0], static_cast<int>(i));
  }
  SqliteDb db(path_);
  EXPECT_EQ(db.query_text("PRAGMA integrity_check").value_or(""), "ok");
}

TEST_F(JobStoreTest, KillInsideASubmitsCommitLosesOnlyThatUnacknowledgedPrompt) {
  const std::string got = run_child_and_kill(
      [&](int fd) {
        JobStore s(path_);
        add(s, "first");
        write_byte(fd, 'a');
        s.set_commit_hook([fd] {
          write_byte(fd, 'h');
          pause();  // killed here, inside COMMIT, before it is durable
        });
        add(s, "second");
        write_byte(fd, 'x');  // never reached
      },
      2);
  EXPECT_EQ(got, "ah");
  JobStore s(path_);
  EXPECT_EQ(ids(s.pending()), std::vector<std::string>{"first"});
  EXPECT_EQ(add(s, "third"), json(1));  // the lost add's counter bump was rolled back too
}

TEST_F(JobStoreTest, KillInsideFinishsCommitRerunsThePromptAndHistoryHoldsItOnce) {
  {
    JobStore s(path_);
    add(s, "a");
    add(s, "b");
  }
  const std::string got = run_child_and_kill(
      [&](int fd) {
        JobStore s(path_);
        auto j = s.claim(0);
        write_byte(fd, 'c');
        s.set_commit_hook([fd] {
          write_byte(fd, 'h');
          pause();  // the history row is written but not committed
        });
        s.finish(j->prompt_id, success(1), 100);
      },
      2);
  EXPECT_EQ(got, "ch");
  {
    JobStore s(path_);
    EXPECT_FALSE(s.history_entry("a"));  // the half-done finish did not land
    EXPECT_EQ(s.recover(true, 3, 100).requeued, std::vector<std::string>{"a"});
    auto j = s.claim(0);
    ASSERT_EQ(j->prompt_id, "a");
    s.finish("a", success(2), 100);
  }
  // A second child finishes "b" completely and is killed afterwards: nothing to redo.
  const std::string got2 = run_child_and_kill(
      [&](int fd) {
        JobStore s(path_);
        auto j = s.claim(0);
        s.finish(j->prompt_id, success(3), 100);
        write_byte(fd, 'f');
        pause();
      },
      1);
  EXPECT_EQ(got2, "f");
  JobStore s(path_);
  const Recovery r = s.recover(true, 3, 100);
  EXPECT_TRUE(r.requeued.empty());
  EXPECT_TRUE(r.failed.empty());
  EXPECT_EQ(s.remaining(), 0);
  const json h = s.history(std::nullopt, -1);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h["a"]["outputs"]["9"]["images"][0]["value"], 2);
  EXPECT_EQ(h["b"]["outputs"]["9"]["images"][0]["value"], 3);
  SqliteDb db(path_);
  EXPECT_EQ(db.query_int("SELECT COUNT(*) FROM history WHERE prompt_id = 'a'"), 1);
}

}  // namespace
}  // namespace darkroom::queue
