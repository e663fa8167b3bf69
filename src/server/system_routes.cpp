#include "server/system_routes.h"

#include <sys/sysinfo.h>
#include <nlohmann/json.hpp>

namespace darkroom::server {

void add_system_routes(HttpServer& server, std::vector<DeviceInfo> devices,
                       std::vector<std::string> argv) {
  server.route("/healthz", [](const std::string&) {
    return HttpResponse{200, "text/plain", "ok\n"};
  });
  server.route("/readyz", [](const std::string&) {
    return HttpResponse{200, "text/plain", "ready\n"};
  });
  // ComfyUI's /system_stats shape, so clients that read it keep working.
  server.route("/system_stats", [devices, argv](const std::string&) {
    struct sysinfo si {};
    sysinfo(&si);
    nlohmann::json j;
    j["system"] = {{"os", "posix"},
                   {"ram_total", static_cast<uint64_t>(si.totalram) * si.mem_unit},
                   {"ram_free", static_cast<uint64_t>(si.freeram) * si.mem_unit},
                   {"comfyui_version", "darkroom"},
                   {"python_version", ""},
                   {"pytorch_version", ""},
                   {"embedded_python", false},
                   {"argv", argv}};
    j["devices"] = nlohmann::json::array();
    for (const DeviceInfo& d : devices)
      j["devices"].push_back({{"name", d.name},
                              {"type", d.type},
                              {"index", d.index},
                              {"vram_total", d.memory_total},
                              {"vram_free", d.memory_free},
                              {"torch_vram_total", 0},
                              {"torch_vram_free", 0}});
    return HttpResponse{200, "application/json", j.dump()};
  });
}

}  // namespace darkroom::server
