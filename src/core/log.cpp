#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

#include "core/error.h"

namespace darkroom {
namespace {

LogLevel level_from_env() {
  const char* env = std::getenv("DARKROOM_LOG");
  if (env == nullptr || *env == '\0') return LogLevel::Info;
  try {
    return parse_log_level(env);
  } catch (const Error&) {
    std::fprintf(stderr, "darkroom: ignoring DARKROOM_LOG=%s (use debug|info|warn|error|off)\n",
                 env);
    return LogLevel::Info;
  }
}

std::atomic<LogLevel>& level_ref() {
  static std::atomic<LogLevel> level{level_from_env()};
  return level;
}

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Error:
      return "error";
    case LogLevel::Off:
      return "off";
  }
  return "?";
}

}  // namespace

LogLevel log_level() {
  return level_ref().load(std::memory_order_relaxed);
}
void set_log_level(LogLevel level) {
  level_ref().store(level, std::memory_order_relaxed);
}

LogLevel parse_log_level(std::string_view name) {
  for (LogLevel l :
       {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error, LogLevel::Off})
    if (name == level_name(l)) return l;
  fail("log", "unknown log level '", name, "' (use debug, info, warn, error or off)");
}

LogLine::~LogLine() {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  int ms = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::fprintf(stderr, "%s.%03d %-5s %s\n", stamp, ms, level_name(level_), os_.str().c_str());
}

}  // namespace darkroom
