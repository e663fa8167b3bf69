// A thin RAII face over libsqlite3 for the job store: one connection, prepared
// statements with positional binds, and transactions that roll back unless committed.
// Every failing call throws darkroom::Error naming the SQL and SQLite's message.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace darkroom::queue {

class SqliteDb;

// One prepared statement. bind() is 1-based like SQLite; step() returns whether a row is
// available; column_*() read the current row (0-based).
class SqliteStatement {
 public:
  SqliteStatement(SqliteDb& db, const std::string& sql);
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  SqliteStatement& bind(int index, int64_t value);
  SqliteStatement& bind(int index, double value);
  SqliteStatement& bind(int index, const std::string& value);
  SqliteStatement& bind_null(int index);

  bool step();
  // Runs a statement that returns no rows.
  void run();

  int64_t column_int(int col) const;
  double column_double(int col) const;
  std::string column_text(int col) const;
  bool column_is_null(int col) const;

 private:
  SqliteDb& db_;
  std::string sql_;
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteDb {
 public:
  // Opens (creating if needed) the database file; its directory must exist.
  explicit SqliteDb(const std::string& path);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements that return no rows.
  void exec(const std::string& sql);
  // The first column of the first row of a query, or nullopt when it has no row / NULL.
  std::optional<int64_t> query_int(const std::string& sql);
  std::optional<std::string> query_text(const std::string& sql);
  int64_t changes() const;

  // Called inside each COMMIT before it is durable (SQLite's commit hook): fault
  // injection for tests that kill the process mid-commit. Empty: none.
  void set_commit_hook(std::function<void()> hook);

  [[noreturn]] void fail_with(const std::string& what) const;
  sqlite3* handle() { return db_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  std::function<void()> commit_hook_;
};

// BEGIN IMMEDIATE on construction (the write lock is taken up front, so a transaction
// never fails half-way on a lock upgrade); ROLLBACK on destruction unless commit() ran.
class SqliteTransaction {
 public:
  explicit SqliteTransaction(SqliteDb& db);
  ~SqliteTransaction();
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;
  void commit();

 private:
  SqliteDb& db_;
  bool done_ = false;
};

}  // namespace darkroom::queue
