// What the benchmarks share: a monotonic clock and the process's peak resident memory.
#pragma once

#include <chrono>
#include <fstream>
#include <string>

namespace darkroom::bench {

// Seconds on the steady clock.
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// VmHWM (peak resident set) of this process in MiB, or -1 where /proc is unavailable.
inline double peak_rss_mib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

// Resets VmHWM to the current resident set (Linux: "5" to clear_refs).
inline void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

}  // namespace darkroom::bench
