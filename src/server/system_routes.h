// Routes that describe the server itself: /healthz, /readyz, /system_stats.
#pragma once

#include <string>
#include <vector>

#include "server/http_server.h"

namespace darkroom::server {

// One compute device as the server reports it (filled by the caller from backend/).
struct DeviceInfo {
  std::string name;
  std::string type;  // "cpu" or "cuda"
  int index = 0;
  uint64_t memory_total = 0;
  uint64_t memory_free = 0;
};

void add_system_routes(HttpServer& server, std::vector<DeviceInfo> devices,
                       std::vector<std::string> argv);

}  // namespace darkroom::server
