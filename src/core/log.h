// Levelled logging to stderr. The level comes from DARKROOM_LOG (debug, info, warn,
// error; default info) or set_log_level().
//   DR_LOG(Info) << "loaded " << n << " tensors";
#pragma once

#include <sstream>
#include <string_view>

namespace darkroom {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

LogLevel log_level();
void set_log_level(LogLevel level);
// Parses "debug", "info", "warn", "error", "off"; throws darkroom::Error otherwise.
LogLevel parse_log_level(std::string_view name);

class LogLine {
 public:
  explicit LogLine(LogLevel level) : level_(level) {}
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  template <class T>
  LogLine& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream os_;
};

}  // namespace darkroom

#define DR_LOG(level)                                          \
  if (::darkroom::LogLevel::level < ::darkroom::log_level()) { \
  } else                                                       \
    ::darkroom::LogLine(::darkroom::LogLevel::level)
