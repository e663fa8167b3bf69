#include "queue/job_store.h"

#include <cmath>

#include "core/error.h"
#include "queue/comfy_messages.h"
#include "queue/sqlite_db.h"
#include "queue/webhook.h"

namespace darkroom::queue {

namespace {

constexpr int64_t kPending = 0;
constexpr int64_t kRunning = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs(
  prompt_id TEXT PRIMARY KEY,
  state     INTEGER NOT NULL,   -- 0 pending, 1 running
  number    REAL NOT NULL,      -- ComfyUI's queue number: lowest runs first
  item      TEXT NOT NULL,      -- [number, prompt_id, prompt, extra_data, outputs]
  client_id TEXT NOT NULL,
  attempts  INTEGER NOT NULL DEFAULT 0,
  worker    INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_order ON jobs(state, number, prompt_id);
CREATE TABLE IF NOT EXISTS history(
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,  -- completion order, never reused
  prompt_id TEXT NOT NULL UNIQUE,
  entry     TEXT NOT NULL       -- {"prompt", "outputs", "status", "meta"}
);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_client ON jobs(client_id);
CREATE TABLE IF NOT EXISTS outbox(
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  prompt_id       TEXT NOT NULL,
  url             TEXT NOT NULL,
  body            TEXT NOT NULL,     -- webhook_payload (webhook.h)
  attempts        INTEGER NOT NULL DEFAULT 0,  -- failed attempts so far
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,  -- not before (ms since the epoch)
  last_error      TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(next_attempt_ms, id);
)sql";

QueuedJob read_job(const SqliteStatement& st) {
  QueuedJob j;
  j.prompt_id = st.column_text(0);
  j.item = json::parse(st.column_text(1));
  j.client_id = st.column_text(2);
  j.attempts = static_cast<int>(st.column_int(3));
  j.worker = st.column_is_null(4) ? -1 : static_cast<int>(st.column_int(4));
  return j;
}

constexpr const char* kJobColumns = "prompt_id, item, client_id, attempts, worker";

constexpr const char* kOutboxColumns = "id, prompt_id, url, body, attempts, next_attempt_ms";

OutboxEntry read_outbox(const SqliteStatement& st) {
  OutboxEntry e;
  e.id = st.column_int(0);
  e.prompt_id = st.column_text(1);
  e.url = st.column_text(2);
  e.body = st.column_text(3);
  e.attempts = static_cast<int>(st.column_int(4));
  e.next_attempt_ms = st.column_int(5);
  return e;
}

}  // namespace

JobStore::JobStore(const std::string& path) : db_(std::make_unique<SqliteDb>(path)) {
  // journal_mode is persistent in the file; synchronous is per connection. See the header
  // for why FULL.
  const auto mode = db_->query_text("PRAGMA journal_mode=WAL");
  DR_CHECK(mode && *mode == "wal", "job_store", "cannot put '", path, "' in WAL mode (got ",
           mode.value_or("nothing"), "); is it on a network filesystem?");
  db_->exec("PRAGMA synchronous=FULL");
  SqliteTransaction t(*db_);
  db_->exec(kSchema);
  t.commit();
}

JobStore::~JobStore() = default;

json JobStore::add(const std::string& prompt_id, const json& prompt, const json& extra_data,
                   const std::vector<std::string>& outputs, const std::string& client_id,
                   bool front, std::optional<double> number, int max_per_client) {
  DR_CHECK(!prompt_id.empty(), "job_queue", "a prompt id is required");
  std::lock_guard lock(mutex_);
  SqliteTransaction t(*db_);
  {
    SqliteStatement exists(*db_, "SELECT 1 FROM jobs WHERE prompt_id = ?");
    exists.bind(1, prompt_id);
    DR_CHECK(!exists.step(), "job_queue", "prompt_id '", prompt_id,
             "' is already queued or running");
  }
  if (max_per_client > 0) {
    SqliteStatement count(*db_, "SELECT COUNT(*) FROM jobs WHERE client_id = ?");
    count.bind(1, client_id);
    count.step();
    if (count.column_int(0) >= max_per_client) return nullptr;  // rolled back: nothing stored
  }
  const int64_t counter =
      db_->query_int("SELECT value FROM meta WHERE key = 'next_number'").value_or(0);
  // ComfyUI: number = float(json["number"]) if given else its counter; front: -number.
  double value = number ? *number : static_cast<double>(counter);
  if (front) {
    value = -value;
    SqliteStatement lowest(*db_, "SELECT MIN(number) FROM jobs WHERE state = ?");
    lowest.bind(1, kPending);
    if (lowest.step() && !lowest.column_is_null(0) && value >= lowest.column_double(0))
      value = std::floor(lowest.column_double(0)) - 1;
  }
  // Integral numbers stay JSON integers as in ComfyUI; an explicit "number" was a float.
  const json number_json =
      (!number && value == std::floor(value)) ? json(static_cast<int64_t>(value)) : json(value);
  const json item = json::array({number_json, prompt_id, prompt, extra_data, outputs});
  SqliteStatement insert(
      *db_, "INSERT INTO jobs(prompt_id, state, number, item, client_id) VALUES (?, ?, ?, ?, ?)");
  insert.bind(1, prompt_id)
      .bind(2, kPending)
      .bind(3, value)
      .bind(4, item.dump())
      .bind(5, client_id);
  insert.run();
  SqliteStatement next(*db_, "INSERT OR REPLACE INTO meta(key, value) VALUES ('next_number', ?)");
  next.bind(1, counter + 1).run();
  t.commit();
  return number_json;
}

std::optional<QueuedJob> JobStore::claim(int worker) {
  std::lock_guard lock(mutex_);
  SqliteTransaction t(*db_);
  SqliteStatement next(*db_, std::string("SELECT ") + kJobColumns +
                                 " FROM jobs WHERE state = ? ORDER BY number, prompt_id LIMIT 1");
  next.bind(1, kPending);
  if (!next.step()) return std::nullopt;
  QueuedJob job = read_job(next);
  SqliteStatement update(
      *db_, "UPDATE jobs SET state = ?, attempts = attempts + 1, worker = ? WHERE prompt_id = ?");
  update.bind(1, kRunning).bind(2, static_cast<int64_t>(worker)).bind(3, job.prompt_id).run();
  t.commit();
  job.attempts += 1;
  job.worker = worker;
  return job;
}

void JobStore::finish(const std::string& prompt_id, const json& result, int max_history) {
  std::lock_guard lock(mutex_);
  SqliteTransaction t(*db_);
  SqliteStatement get(*db_, "SELECT item FROM jobs WHERE prompt_id = ? AND state = ?");
  get.bind(1, prompt_id).bind(2, kRunning);
  DR_ASSERT(get.step(), "finishing prompt ", prompt_id, " which is not running");
  json entry = result;
  entry["prompt"] = json::parse(get.column_text(0));
  put_history(prompt_id, entry);
  SqliteStatement del(*db_, "DELETE FROM jobs WHERE prompt_id = ?");
  del.bind(1, prompt_id).run();
  trim_history(max_history);
  t.commit();
}

void JobStore::release(const std::string& prompt_id) {
  std::lock_guard lock(mutex_);
  SqliteStatement st(*db_, "UPDATE jobs SET state = ?, worker = NULL WHERE prompt_id = ?");
  st.bind(1, kPending).bind(2, prompt_id).run();
}

Recovery JobStore::recover(bool rerun, int max_attempts, int max_history) {
  std::lock_guard lock(mutex_);
  SqliteTransaction t(*db_);
  Recovery r;
  SqliteStatement left(*db_, std::string("SELECT ") + kJobColumns +
                                 " FROM jobs WHERE state = ? ORDER BY number, prompt_id");
  left.bind(1, kRunning);
  std::vector<QueuedJob> jobs;
  while (left.step()) jobs.push_back(read_job(left));
  for (const QueuedJob& j : jobs) {
    if (rerun && j.attempts < max_attempts) {
      SqliteStatement st(*db_, "UPDATE jobs SET state = ?, worker = NULL WHERE prompt_id = ?");
      st.bind(1, kPending).bind(2, j.prompt_id).run();
      r.requeued.push_back(j.prompt_id);
      continue;
    }
    const json error = server_stopped_error(j.prompt_id, j.attempts);
    json entry = {{"prompt", j.item},
                  {"outputs", json::object()},
                  {"status", history_status(false, json::array({{"execution_error", error}}))},
                  {"meta", json::object()}};
    put_history(j.prompt_id, entry);
    SqliteStatement del(*db_, "DELETE FROM jobs WHERE prompt_id = ?");
    del.bind(1, j.prompt_id).run();
    r.failed.push_back(j.prompt_id);
  }
  trim_history(max_history);
  t.commit();
  return r;
}

void JobStore::put_history(const std::string& prompt_id, const json& entry) {
  // REPLACE deletes an older entry with this id first, so the new one gets the newest seq.
  SqliteStatement put(*db_, "INSERT OR REPLACE INTO history(prompt_id, entry) VALUES (?, ?)");
  put.bind(1, prompt_id).bind(2, entry.dump()).run();
  if (webhook_url_.empty()) return;
  SqliteStatement out(*db_, "INSERT INTO outbox(prompt_id, url, body) VALUES (?, ?, ?)");
  out.bind(1, prompt_id)
      .bind(2, webhook_url_)
      .bind(3, webhook_payload(prompt_id, entry, now_ms()).dump())
      .run();
}

int JobStore::queued_by_client(const std::string& client_id) const {
  std::lock_guard lock(mutex_);
  SqliteStatement count(*db_, "SELECT COUNT(*) FROM jobs WHERE client_id = ?");
  count.bind(1, client_id);
  count.step();
  return static_cast<int>(count.column_int(0));
}

std::vector<QueuedJob> JobStore::jobs_in_state(int state) const {
  SqliteStatement st(*db_, std::string("SELECT ") + kJobColumns +
                               " FROM jobs WHERE state = ? ORDER BY number, prompt_id");
  st.bind(1, static_cast<int64_t>(state));
  std::vector<QueuedJob> out;
  while (st.step()) out.push_back(read_job(st));
  return out;
}

std::vector<QueuedJob> JobStore::pending() const {
  std::lock_guard lock(mutex_);
  return jobs_in_state(kPending);
}

std::vector<QueuedJob> JobStore::running() const {
  std::lock_guard lock(mutex_);
  return jobs_in_state(kRunning);
}

std::pair<std::vector<QueuedJob>, std::vector<QueuedJob>> JobStore::running_and_pending() const {
  std::lock_guard lock(mutex_);
  // The one connection is behind mutex_, so no write lands between the two reads.
  return {jobs_in_state(kRunning), jobs_in_state(kPending)};
}

int JobStore::remaining() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(db_->query_int("SELECT COUNT(*) FROM jobs").value_or(0));
}

bool JobStore::delete_pending(const std::string& prompt_id) {
  std::lock_guard lock(mutex_);
  SqliteStatement st(*db_, "DELETE FROM jobs WHERE prompt_id = ? AND state = ?");
  st.bind(1, prompt_id).bind(2, kPending).run();
  return db_->changes() > 0;
}

int JobStore::clear_pending() {
  std::lock_guard lock(mutex_);
  SqliteStatement st(*db_, "DELETE FROM jobs WHERE state = ?");
  st.bind(1, kPending).run();
  return static_cast<int>(db_->changes());
}

nlohmann::ordered_json JobStore::history(std::optional<int> max_items, int offset) const {
  std::lock_guard lock(mutex_);
  // ComfyUI: a negative offset with max_items means "the newest max_items".
  if (offset < 0 && max_items) {
    const int64_t n = db_->query_int("SELECT COUNT(*) FROM history").value_or(0);
    offset = static_cast<int>(n) - *max_items;
  }
  SqliteStatement st(*db_, "SELECT prompt_id, entry FROM history ORDER BY seq LIMIT ? OFFSET ?");
  st.bind(1, static_cast<int64_t>(max_items ? std::max(*max_items, 0) : -1));
  st.bind(2, static_cast<int64_t>(std::max(offset, 0)));
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  while (st.step()) out[st.column_text(0)] = nlohmann::ordered_json::parse(st.column_text(1));
  return out;
}

std::optional<json> JobStore::history_entry(const std::string& prompt_id) const {
  std::lock_guard lock(mutex_);
  SqliteStatement st(*db_, "SELECT entry FROM history WHERE prompt_id = ?");
  st.bind(1, prompt_id);
  if (!st.step()) return std::nullopt;
  return json::parse(st.column_text(0));
}

int JobStore::history_size() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(db_->query_int("SELECT COUNT(*) FROM history").value_or(0));
}

bool JobStore::delete_history(const std::string& prompt_id) {
  std::lock_guard lock(mutex_);
  SqliteStatement st(*db_, "DELETE FROM history WHERE prompt_id = ?");
  st.bind(1, prompt_id).run();
  return db_->changes() > 0;
}

void JobStore::clear_history() {
  std::lock_guard lock(mutex_);
  db_->exec("DELETE FROM history");
}

void JobStore::trim_history(int max_history) {
  if (max_history < 0) return;
  // Everything at or below the seq of the (max_history + 1)-th newest entry goes.
  SqliteStatement st(*db_,
                     "DELETE FROM history WHERE seq <= (SELECT seq FROM history ORDER BY seq DESC "
                     "LIMIT 1 OFFSET ?)");
  st.bind(1, static_cast<int64_t>(max_history)).run();
}

void JobStore::set_webhook_url(std::string url) {
  std::lock_guard lock(mutex_);
  webhook_url_ = std::move(url);
}

std::optional<OutboxEntry> JobStore::next_delivery() const {
  std::lock_guard lock(mutex_);
  SqliteStatement st(*db_, std::string("SELECT ") + kOutboxColumns +
                               " FROM outbox ORDER BY next_attempt_ms, id LIMIT 1");
  if (!st.step()) return std::nullopt;
  return read_outbox(st);
}

std::vector<OutboxEntry> JobStore::outbox() const {
  std::lock_guard lock(mutex_);
  SqliteStatement st(*db_, std::string("SELECT ") + kOutboxColumns + " FROM outbox ORDER BY id");
  std::vector<OutboxEntry> out;
  while (st.step()) out.push_back(read_outbox(st));
  return out;
}

void JobStore::remove_delivery(int64_t id) {
  std::lock_guard lock(mutex_);
  SqliteStatement st(*db_, "DELETE FROM outbox WHERE id = ?");
  st.bind(1, id).run();
}

void JobStore::delivery_failed(int64_t id, int64_t next_attempt_ms, const std::string& error) {
  std::lock_guard lock(mutex_);
  SqliteStatement st(*db_,
                     "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?, "
                     "last_error = ? WHERE id = ?");
  st.bind(1, next_attempt_ms).bind(2, error).bind(3, id).run();
}

void JobStore::set_commit_hook(std::function<void()> hook) {
  std::lock_guard lock(mutex_);
  db_->set_commit_hook(std::move(hook));
}

}  // namespace darkroom::queue
