// What the ComfyUI routes share: the folders, the queue, the server (for its websocket hub
// and transport metrics) and a few counters of their own for /metrics.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "queue/job_queue.h"
#include "server/http_server.h"
#include "workflow/folder_paths.h"

namespace darkroom::server {

// One compute device as the server reports it (filled by the caller from backend/).
struct DeviceInfo {
  std::string name;
  std::string type;  // "cpu" or "cuda"
  int index = 0;
  uint64_t memory_total = 0;
  uint64_t memory_free = 0;
};

struct ApiContext {
  workflow::FolderPaths paths;
  workflow::ResourceLimits limits;  // checked by POST /prompt's validation
  queue::JobQueue* queue = nullptr;
  HttpServer* server = nullptr;
  std::vector<DeviceInfo> devices;
  std::vector<std::string> argv;

  std::atomic<uint64_t> prompts_accepted{0};
  std::atomic<uint64_t> prompts_rejected{0};
  std::atomic<uint64_t> uploads{0};
  std::atomic<uint64_t> uploads_rejected{0};
};

// POST/GET /prompt, /queue, /history[/{id}], /interrupt, /free; the websocket greeting.
void add_prompt_routes(HttpServer& server, ApiContext& ctx);
// GET /view, POST /upload/image, /upload/mask.
void add_file_routes(HttpServer& server, ApiContext& ctx);
// GET /jobs, /jobs/{id}, POST /jobs/{id}/cancel (ComfyUI's unified jobs API).
void add_job_routes(HttpServer& server, ApiContext& ctx);
// /users, /settings[/{id}], /userdata[/{file}[/move/{dest}]], /v2/userdata.
void add_user_routes(HttpServer& server, ApiContext& ctx);
// /object_info[/{class}], /embeddings, /models[/{folder}], /extensions, /features, /i18n,
// /workflow_templates and the other lookups the frontend makes at load.
void add_info_routes(HttpServer& server, ApiContext& ctx);
// /healthz, /readyz, /system_stats, /metrics.
void add_system_routes(HttpServer& server, ApiContext& ctx);

// ComfyUI's {"exec_info": {"queue_remaining": N}}.
nlohmann::json queue_info(const ApiContext& ctx);
// GET /features and the websocket "feature_flags" answer.
nlohmann::json server_features(const ApiContext& ctx);

}  // namespace darkroom::server
