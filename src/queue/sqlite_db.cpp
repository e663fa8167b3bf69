#include "queue/sqlite_db.h"

#include <sqlite3.h>

#include "core/error.h"

namespace darkroom::queue {

// --- SqliteDb ---------------------------------------------------------------------------

SqliteDb::SqliteDb(const std::string& path) : path_(path) {
  const int rc =
      sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    fail("job_store", "cannot open the queue database '", path, "': ", msg);
  }
  // Another process holding the write lock (a second server on the same directory, or
  // an admin's sqlite3 shell) is waited for instead of failing at once.
  sqlite3_busy_timeout(db_, 10000);
  sqlite3_extended_result_codes(db_, 1);
}

SqliteDb::~SqliteDb() {
  sqlite3_close_v2(db_);
}

void SqliteDb::fail_with(const std::string& what) const {
  fail("job_store", what, " (", path_, "): ", sqlite3_errmsg(db_));
}

void SqliteDb::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    fail("job_store", "'", sql, "' failed (", path_, "): ", msg);
  }
}

std::optional<int64_t> SqliteDb::query_int(const std::string& sql) {
  SqliteStatement st(*this, sql);
  if (!st.step() || st.column_is_null(0)) return std::nullopt;
  return st.column_int(0);
}

std::optional<std::string> SqliteDb::query_text(const std::string& sql) {
  SqliteStatement st(*this, sql);
  if (!st.step() || st.column_is_null(0)) return std::nullopt;
  return st.column_text(0);
}

int64_t SqliteDb::changes() const {
  return sqlite3_changes64(db_);
}

void SqliteDb::set_commit_hook(std::function<void()> hook) {
  commit_hook_ = std::move(hook);
  if (!commit_hook_) {
    sqlite3_commit_hook(db_, nullptr, nullptr);
    return;
  }
  sqlite3_commit_hook(
      db_,
      [](void* self) -> int {
        static_cast<SqliteDb*>(self)->commit_hook_();
        return 0;  // 0: go on with the commit
      },
      this);
}

// --- SqliteStatement --------------------------------------------------------------------

SqliteStatement::SqliteStatement(SqliteDb& db, const std::string& sql) : db_(db), sql_(sql) {
  if (sqlite3_prepare_v2(db.handle(), sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
      SQLITE_OK)
    db_.fail_with("cannot prepare '" + sql + "'");
}

SqliteStatement::~SqliteStatement() {
  sqlite3_finalize(stmt_);
}

SqliteStatement& SqliteStatement::bind(int index, int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) db_.fail_with("bind in '" + sql_ + "'");
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, double value) {
  if (sqlite3_bind_double(stmt_, index, value) != SQLITE_OK)
    db_.fail_with("bind in '" + sql_ + "'");
  return *this;
}

SqliteStatement& SqliteStatement::bind(int index, const std::string& value) {
  if (sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK)
    db_.fail_with("bind in '" + sql_ + "'");
  return *this;
}

SqliteStatement& SqliteStatement::bind_null(int index) {
  if (sqlite3_bind_null(stmt_, index) != SQLITE_OK) db_.fail_with("bind in '" + sql_ + "'");
  return *this;
}

bool SqliteStatement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail_with("'" + sql_ + "' failed");
}

void SqliteStatement::run() {
  while (step()) {
  }
}

int64_t SqliteStatement::column_int(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

double SqliteStatement::column_double(int col) const {
  return sqlite3_column_double(stmt_, col);
}

std::string SqliteStatement::column_text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  const int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(p, static_cast<size_t>(n)) : std::string();
}

bool SqliteStatement::column_is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

// --- SqliteTransaction ------------------------------------------------------------------

SqliteTransaction::SqliteTransaction(SqliteDb& db) : db_(db) {
  db_.exec("BEGIN IMMEDIATE");
}

SqliteTransaction::~SqliteTransaction() {
  if (done_) return;
  // A failed statement may already have ended the transaction; ROLLBACK then fails
  // harmlessly, so its result is ignored (a destructor must not throw).
  sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void SqliteTransaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace darkroom::queue
