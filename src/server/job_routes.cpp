// ComfyUI's unified jobs API (server.py /api/jobs, comfy_execution/jobs.py), which the
// current frontend uses for its queue and history panels: one list of pending, running,
// completed and failed prompts, built from the queue's own queue() and history().
#include <algorithm>

#include "core/error.h"
#include "server/api_context.h"

namespace darkroom::server {
namespace {

void put_if(json& j, const char* key, const json& v) {
  if (!v.is_null()) j[key] = v;  // prune_dict(): None values are left out
}

json workflow_id_of(const json& extra_data) {
  if (!extra_data.is_object()) return nullptr;
  auto png = extra_data.find("extra_pnginfo");
  if (png == extra_data.end() || !png->is_object()) return nullptr;
  auto wf = png->find("workflow");
  if (wf == png->end() || !wf->is_object() || !wf->contains("id")) return nullptr;
  return (*wf)["id"];
}

json create_time_of(const json& extra_data) {
  return extra_data.is_object() && extra_data.contains("create_time") ? extra_data["create_time"]
                                                                      : json(nullptr);
}

// item: [number, prompt_id, prompt, extra_data, outputs]
json queue_job(const json& item, const char* status) {
  json j = {{"id", item.at(1)}, {"status", status}, {"priority", item.at(0)}, {"outputs_count", 0}};
  put_if(j, "create_time", create_time_of(item.at(3)));
  put_if(j, "workflow_id", workflow_id_of(item.at(3)));
  return j;
}

bool previewable(const std::string& media_type, const json& item) {
  if (media_type == "images" || media_type == "video" || media_type == "audio") return true;
  const std::string fmt = item.value("format", "");
  if (fmt.rfind("video/", 0) == 0 || fmt.rfind("audio/", 0) == 0) return true;
  std::string name = item.value("filename", "");
  std::transform(name.begin(), name.end(), name.begin(), ::tolower);
  for (const char* ext : {".obj", ".fbx", ".gltf", ".glb"})
    if (name.ends_with(ext)) return true;
  return false;
}

json history_job(const std::string& id, const json& entry, bool include_outputs) {
  const json& item = entry.at("prompt");
  const json status_info = entry.value("status", json::object());
  const std::string status_str =
      status_info.is_object() ? status_info.value("status_str", "") : std::string();
  json start = nullptr, end = nullptr, error = nullptr;
  if (status_info.is_object() && status_info.contains("messages"))
    for (const json& m : status_info["messages"]) {
      if (!m.is_array() || m.size() < 2 || !m[1].is_object()) continue;
      const std::string ev = m[0].is_string() ? m[0].get<std::string>() : "";
      const json ts = m[1].contains("timestamp") ? m[1]["timestamp"] : json(nullptr);
      if (ev == "execution_start") start = ts;
      if (ev == "execution_success" || ev == "execution_error" || ev == "execution_interrupted")
        end = ts;
      if (ev == "execution_error") error = m[1];
    }
  const json outputs = entry.value("outputs", json::object());
  int count = 0;
  json preview = nullptr, fallback = nullptr;
  for (auto n = outputs.begin(); n != outputs.end(); ++n) {
    if (!n->is_object()) continue;
    for (auto media = n->begin(); media != n->end(); ++media) {
      if (media.key() == "animated" || !media->is_array()) continue;
      for (const json& it : *media) {
        if (!it.is_object()) continue;
        ++count;
        if (preview.is_null() && previewable(media.key(), it)) {
          json e = it;
          e["nodeId"] = n.key();
          e["mediaType"] = media.key();
          if (it.value("type", "") == "output")
            preview = e;
          else if (fallback.is_null())
            fallback = e;
        }
      }
    }
  }
  json j = {{"id", id},
            {"status", status_str == "error" ? "failed" : "completed"},
            {"priority", item.at(0)},
            {"outputs_count", count}};
  put_if(j, "create_time", create_time_of(item.at(3)));
  put_if(j, "execution_start_time", start);
  put_if(j, "execution_end_time", end);
  put_if(j, "execution_error", error);
  put_if(j, "preview_output", preview.is_null() ? fallback : preview);
  put_if(j, "workflow_id", workflow_id_of(item.at(3)));
  if (include_outputs) {
    j["outputs"] = outputs;
    j["execution_status"] = status_info;
    j["workflow"] = {{"prompt", item.at(2)}, {"extra_data", item.at(3)}};
  }
  return j;
}

Response list_jobs(const ApiContext& ctx, const Request& r) {
  std::vector<std::string> statuses;
  const std::string filter = r.arg("status");
  if (filter.empty()) {
    statuses = {"pending", "in_progress", "completed", "failed"};
  } else {
    size_t start = 0;
    while (start <= filter.size()) {
      size_t end = filter.find(',', start);
      if (end == std::string::npos) end = filter.size();
      statuses.push_back(filter.substr(start, end - start));
      start = end + 1;
    }
  }
  auto wants = [&](const char* s) {
    return std::find(statuses.begin(), statuses.end(), s) != statuses.end();
  };
  std::optional<int> limit;
  int offset = 0;
  try {
    if (r.has_arg("limit")) limit = std::stoi(r.arg("limit"));
    if (r.has_arg("offset")) offset = std::max(0, std::stoi(r.arg("offset")));
  } catch (const std::exception&) {
    fail("jobs", "limit and offset must be integers");
  }
  DR_CHECK(!limit || *limit > 0, "jobs", "limit must be a positive integer");
  const std::string sort_by = r.arg("sort_by", "created_at");
  const std::string order = r.arg("sort_order", "desc");
  DR_CHECK(order == "asc" || order == "desc", "jobs", "sort_order must be asc or desc");
  const std::string workflow_id = r.arg("workflow_id");

  std::vector<json> jobs;
  const json q = ctx.queue->queue();
  if (wants("in_progress"))
    for (const json& item : q["queue_running"]) jobs.push_back(queue_job(item, "in_progress"));
  if (wants("pending"))
    for (const json& item : q["queue_pending"]) jobs.push_back(queue_job(item, "pending"));
  if (wants("completed") || wants("failed")) {
    // In completion order (ordered_json), so equal times keep ComfyUI's order below.
    const nlohmann::ordered_json h = ctx.queue->history(std::nullopt, 0);
    for (auto it = h.begin(); it != h.end(); ++it) {
      const bool failed = it->contains("status") && (*it)["status"].is_object() &&
                          (*it)["status"].value("status_str", "") == "error";
      if (failed ? wants("failed") : wants("completed"))
        jobs.push_back(history_job(it.key(), json(*it), false));
    }
  }
  if (!workflow_id.empty())
    std::erase_if(jobs, [&](const json& j) {
      return !j.contains("workflow_id") || j["workflow_id"] != workflow_id;
    });
  auto key = [&](const json& j) -> double {
    if (sort_by == "execution_duration") {
      const double s = j.value("execution_start_time", 0.0), e = j.value("execution_end_time", 0.0);
      return s != 0 && e != 0 ? e - s : 0;
    }
    return j.value("create_time", 0.0);
  };
  std::stable_sort(jobs.begin(), jobs.end(), [&](const json& a, const json& b) {
    return order == "desc" ? key(a) > key(b) : key(a) < key(b);
  });
  const size_t total = jobs.size();
  json out = json::array();
  for (size_t i = static_cast<size_t>(offset);
       i < jobs.size() && (!limit || out.size() < static_cast<size_t>(*limit)); ++i)
    out.push_back(jobs[i]);
  const bool has_more = static_cast<size_t>(offset) + out.size() < total;
  return Response::json_body({{"jobs", out},
                              {"pagination",
                               {{"offset", offset},
                                {"limit", limit ? json(*limit) : json(nullptr)},
                                {"total", total},
                                {"has_more", has_more}}}});
}

Response get_job(const ApiContext& ctx, const Request& r) {
  const std::string id = r.params.at("job_id");
  const json h = ctx.queue->history(id);
  if (h.contains(id)) return Response::json_body(history_job(id, h[id], true));
  const json q = ctx.queue->queue();
  for (const json& item : q["queue_running"])
    if (item.at(1) == id) return Response::json_body(queue_job(item, "in_progress"));
  for (const json& item : q["queue_pending"])
    if (item.at(1) == id) return Response::json_body(queue_job(item, "pending"));
  return Response::json_body({{"error", "Job not found"}}, 404);
}

}  // namespace

void add_job_routes(HttpServer& server, ApiContext& ctx) {
  server.route("GET", "/jobs", [&ctx](const Request& r) { return list_jobs(ctx, r); });
  server.route("GET", "/jobs/{job_id}", [&ctx](const Request& r) { return get_job(ctx, r); });
  // Beyond ComfyUI's list: cancel one prompt wherever it is (pending or running).
  server.route("POST", "/jobs/{job_id}/cancel", [&ctx](const Request& r) {
    return Response::json_body({{"cancelled", ctx.queue->cancel(r.params.at("job_id"))}});
  });
}

}  // namespace darkroom::server
