// Lookups the frontend and API clients make: node declarations, model lists, feature
// flags, and the extension/translation/template registries of ComfyUI's custom nodes
// (darkroom has none, so those answer empty).
#include <sys/stat.h>

#include <filesystem>

#include "server/api_context.h"
#include "workflow/executor.h"

namespace darkroom::server {

json server_features(const ApiContext& ctx) {
  // comfy_api/feature_flags.py: preview frames keep ComfyUI's plain PREVIEW_IMAGE format.
  return {{"supports_preview_metadata", false},
          {"max_upload_size", ctx.server->options().max_body_bytes}};
}

void add_info_routes(HttpServer& server, ApiContext& ctx) {
  server.route("GET", "/object_info", [&ctx](const Request&) {
    return Response::json_body(workflow::object_info(ctx.paths));
  });
  server.route("GET", "/object_info/{node_class}", [&ctx](const Request& r) {
    return Response::json_body(workflow::object_info(r.params.at("node_class"), ctx.paths));
  });
  server.route("GET", "/embeddings", [&ctx](const Request&) {
    json out = json::array();
    for (const std::string& f : ctx.paths.list("embeddings"))
      out.push_back(std::filesystem::path(f).replace_extension().generic_string());
    return Response::json_body(out);
  });
  server.route("GET", "/models", [&ctx](const Request&) {
    json out = json::array();
    for (const auto& [name, dirs] : ctx.paths.model_folders) out.push_back(name);
    return Response::json_body(out);
  });
  server.route("GET", "/models/{folder}", [&ctx](const Request& r) {
    const std::string folder = r.params.at("folder");
    if (!ctx.paths.model_folders.count(folder) && folder != "clip" && folder != "unet")
      return Response::empty(404);
    return Response::json_body(ctx.paths.list(folder));
  });
  // ComfyUI's internal routes (api_server/routes/internal): folder name → its directories.
  server.route("GET", "/internal/folder_paths", [&ctx](const Request&) {
    json out = json::object();
    for (const auto& [name, dirs] : ctx.paths.model_folders) out[name] = dirs;
    return Response::json_body(out);
  });
  // ComfyUI's model manager (app/model_manager.py), used by the model library panel.
  server.route("GET", "/experiment/models", [&ctx](const Request&) {
    json out = json::array();
    for (const auto& [name, dirs] : ctx.paths.model_folders)
      out.push_back({{"name", name}, {"folders", dirs}});
    return Response::json_body(out);
  });
  server.route("GET", "/experiment/models/{folder}", [&ctx](const Request& r) {
    const std::string folder = r.params.at("folder");
    auto it = ctx.paths.model_folders.find(folder);
    if (it == ctx.paths.model_folders.end()) return Response::empty(404);
    json out = json::array();
    for (const std::string& name : ctx.paths.list(folder)) {
      // pathIndex: which of the folder's directories holds the file.
      for (size_t i = 0; i < it->second.size(); ++i) {
        struct stat st {};
        const std::string full = it->second[i] + "/" + name;
        if (::stat(full.c_str(), &st) != 0) continue;
        out.push_back({{"name", name},
                       {"pathIndex", i},
                       {"modified", static_cast<double>(st.st_mtime)},
                       {"created", static_cast<double>(st.st_ctime)},
                       {"size", static_cast<int64_t>(st.st_size)}});
        break;
      }
    }
    return Response::json_body(out);
  });
  server.route("GET", "/extensions",
               [](const Request&) { return Response::json_body(json::array()); });
  server.route("GET", "/features",
               [&ctx](const Request&) { return Response::json_body(server_features(ctx)); });
  server.route("GET", "/i18n", [](const Request&) { return Response::json_body(json::object()); });
  // Subgraph blueprints that custom nodes ship (none here).
  server.route("GET", "/global_subgraphs",
               [](const Request&) { return Response::json_body(json::object()); });
  // The core templates come from the comfyui-workflow-templates pip package in ComfyUI;
  // without it the frontend's template browser is empty rather than failing.
  server.route("GET", "/templates/{file}", [](const Request& r) {
    const std::string f = r.params.at("file");
    if (f == "index_logo.json") return Response::json_body(json::object());
    if (f.rfind("index", 0) == 0 && f.ends_with(".json")) return Response::json_body(json::array());
    return Response::empty(404);
  });
  server.route("GET", "/workflow_templates",
               [](const Request&) { return Response::json_body(json::object()); });
}

}  // namespace darkroom::server
