// Routes that describe the server itself: /healthz, /readyz, /system_stats, /metrics.
#include <sys/sysinfo.h>

#include <sstream>

#include "server/api_context.h"

namespace darkroom::server {

void add_system_routes(HttpServer& server, ApiContext& ctx) {
  server.route("GET", "/healthz", [](const Request&) { return Response::text(200, "ok\n"); });
  server.route("GET", "/readyz", [](const Request&) { return Response::text(200, "ready\n"); });
  // ComfyUI's /system_stats shape, so clients that read it keep working.
  server.route("GET", "/system_stats", [&ctx](const Request&) {
    struct sysinfo si {};
    sysinfo(&si);
    json j;
    j["system"] = {{"os", "posix"},
                   {"ram_total", static_cast<uint64_t>(si.totalram) * si.mem_unit},
                   {"ram_free", static_cast<uint64_t>(si.freeram) * si.mem_unit},
                   {"comfyui_version", "darkroom"},
                   {"required_frontend_version", ""},
                   {"python_version", ""},
                   {"pytorch_version", ""},
                   {"embedded_python", false},
                   {"argv", ctx.argv}};
    j["devices"] = json::array();
    for (const DeviceInfo& d : ctx.devices)
      j["devices"].push_back({{"name", d.name},
                              {"type", d.type},
                              {"index", d.index},
                              {"vram_total", d.memory_total},
                              {"vram_free", d.memory_free},
                              {"torch_vram_total", 0},
                              {"torch_vram_free", 0}});
    return Response::json_body(j);
  });
  server.route("GET", "/metrics", [&ctx](const Request&) {
    std::ostringstream os;
    os << ctx.server->metrics_text()
       << "# HELP darkroom_prompts_accepted_total Prompts that passed validation and were queued.\n"
          "# TYPE darkroom_prompts_accepted_total counter\n"
       << "darkroom_prompts_accepted_total " << ctx.prompts_accepted.load() << "\n"
       << "# HELP darkroom_prompts_rejected_total Prompts refused with a 400.\n"
          "# TYPE darkroom_prompts_rejected_total counter\n"
       << "darkroom_prompts_rejected_total " << ctx.prompts_rejected.load() << "\n"
       << "# HELP darkroom_uploads_total Images stored by /upload/image and /upload/mask.\n"
          "# TYPE darkroom_uploads_total counter\n"
       << "darkroom_uploads_total " << ctx.uploads.load() << "\n"
       << "# HELP darkroom_uploads_rejected_total Uploads refused (bad name, not an image).\n"
          "# TYPE darkroom_uploads_rejected_total counter\n"
       << "darkroom_uploads_rejected_total " << ctx.uploads_rejected.load() << "\n"
       << "# HELP darkroom_queue_remaining Prompts pending or running.\n"
          "# TYPE darkroom_queue_remaining gauge\n"
       << "darkroom_queue_remaining " << ctx.queue->remaining() << "\n";
    return Response{200, "text/plain; version=0.0.4; charset=utf-8", os.str(), {}};
  });
}

}  // namespace darkroom::server
