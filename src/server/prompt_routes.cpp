// ComfyUI's prompt and queue routes (server.py): POST/GET /prompt, GET/POST /queue,
// GET/POST /history, GET /history/{id}, POST /interrupt, POST /free, and the websocket
// greeting. Validation runs here; execution is the queue's, on its worker threads.
#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "server/api_context.h"
#include "workflow/executor.h"

namespace darkroom::server {
namespace {

json comfy_error(const std::string& type, const std::string& message, const std::string& details) {
  return {
      {"type", type}, {"message", message}, {"details", details}, {"extra_info", json::object()}};
}

// A request body as JSON; an empty body reads as {} (ComfyUI's clients post "" to some).
json body_json(const Request& req) {
  if (req.body.empty()) return json::object();
  try {
    return json::parse(req.body);
  } catch (const json::parse_error& e) {
    fail("json", "request body is not valid JSON: ", e.what());
  }
}

std::vector<std::string> id_list(const json& j, const char* key) {
  std::vector<std::string> out;
  if (!j.contains(key)) return out;
  DR_CHECK(j[key].is_array(), "json", "'", key, "' must be a list of prompt ids");
  for (const json& v : j[key]) {
    DR_CHECK(v.is_string(), "json", "'", key, "' must be a list of prompt ids");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Response post_prompt(ApiContext& ctx, const Request& req) {
  auto reject = [&](json error, json node_errors) {
    ctx.prompts_rejected.fetch_add(1);
    return Response::json_body(
        {{"error", std::move(error)}, {"node_errors", std::move(node_errors)}}, 400);
  };
  json body;
  try {
    body = json::parse(req.body);
  } catch (const json::parse_error& e) {
    return reject(comfy_error("invalid_prompt", "Invalid JSON in request body", e.what()),
                  json::object());
  }
  if (!body.is_object())
    return reject(comfy_error("invalid_prompt", "Request body must be a JSON object", ""),
                  json::object());
  if (!body.contains("prompt"))
    return reject(comfy_error("no_prompt", "No prompt provided", "No prompt provided"),
                  json::object());
  const json& prompt = body["prompt"];
  if (!prompt.is_object())
    return reject(comfy_error("invalid_prompt", "Invalid prompt: the prompt must be an object",
                              "expected {\"<node id>\": {\"class_type\": ..., \"inputs\": ...}}"),
                  json::object());

  workflow::Validation v;
  try {
    v = workflow::validate_prompt(prompt, ctx.paths, ctx.limits);
  } catch (const std::exception& e) {
    return reject(comfy_error("invalid_prompt", std::string("Invalid prompt: ") + e.what(), ""),
                  json::object());
  }
  if (!v.ok) {
    DR_LOG(Warn) << "invalid prompt: " << v.error.dump();
    return reject(v.error, v.node_errors);
  }

  json extra_data = body.contains("extra_data") && body["extra_data"].is_object()
                        ? body["extra_data"]
                        : json::object();
  std::string client_id;
  if (body.contains("client_id") && body["client_id"].is_string()) {
    client_id = body["client_id"].get<std::string>();
    extra_data["client_id"] = client_id;
  }
  // Tokens for ComfyUI's paid API nodes never reach the job store.
  extra_data.erase("auth_token_comfy_org");
  extra_data.erase("api_key_comfy_org");
  extra_data["create_time"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();

  std::vector<std::string> outputs = v.outputs;
  // The frontend's "run selected output nodes": only those of the outputs.
  if (body.contains("partial_execution_targets") && body["partial_execution_targets"].is_array() &&
      !body["partial_execution_targets"].empty()) {
    std::vector<std::string> picked;
    for (const json& t : body["partial_execution_targets"])
      if (t.is_string() &&
          std::find(outputs.begin(), outputs.end(), t.get<std::string>()) != outputs.end())
        picked.push_back(t.get<std::string>());
    if (picked.empty())
      return reject(comfy_error("prompt_no_outputs", "Prompt has no outputs",
                                "none of partial_execution_targets is an output node"),
                    json::object());
    outputs = picked;
  }
  std::optional<double> number;
  if (body.contains("number")) {
    const json& n = body["number"];
    if (n.is_number())
      number = n.get<double>();
    else if (n.is_string())
      number = std::stod(n.get<std::string>());
  }
  const bool front =
      body.contains("front") && body["front"].is_boolean() && body["front"].get<bool>();
  const std::string prompt_id = body.contains("prompt_id") && body["prompt_id"].is_string()
                                    ? body["prompt_id"].get<std::string>()
                                    : "";
  const queue::Submitted s =
      ctx.queue->submit(prompt, extra_data, outputs, client_id, prompt_id, front, number);
  if (s.refused) {
    // The per-client limit (--max-queued-per-client): nothing was stored.
    ctx.prompts_rejected.fetch_add(1);
    const int limit = ctx.queue->max_queued_per_client();
    // The queue's client: client_id, else extra_data's (JobQueue::submit).
    const json& c = extra_data.contains("client_id") ? extra_data["client_id"] : json();
    const std::string who = c.is_string() && !c.get<std::string>().empty()
                                ? "client '" + c.get<std::string>() + "'"
                                : "prompts without a client_id";
    return Response::json_body(
        {{"error", comfy_error("queue_limit", "Too many queued prompts",
                               who + " has " + std::to_string(limit) +
                                   " prompt(s) pending or running, the most allowed; "
                                   "retry when one has finished")},
         {"node_errors", json::object()}},
        429);
  }
  ctx.prompts_accepted.fetch_add(1);
  return Response::json_body(
      {{"prompt_id", s.prompt_id}, {"number", s.number}, {"node_errors", v.node_errors}});
}

}  // namespace

json queue_info(const ApiContext& ctx) {
  return {{"exec_info", {{"queue_remaining", ctx.queue->remaining()}}}};
}

void add_prompt_routes(HttpServer& server, ApiContext& ctx) {
  server.route("POST", "/prompt", [&ctx](const Request& r) { return post_prompt(ctx, r); });
  server.route("GET", "/prompt",
               [&ctx](const Request&) { return Response::json_body(queue_info(ctx)); });
  server.route("GET", "/queue",
               [&ctx](const Request&) { return Response::json_body(ctx.queue->queue()); });
  server.route("POST", "/queue", [&ctx](const Request& r) {
    const json j = body_json(r);
    if (j.value("clear", false)) ctx.queue->clear_pending();
    const auto ids = id_list(j, "delete");
    if (!ids.empty()) ctx.queue->delete_pending(ids);
    return Response::empty(200);
  });
  server.route("GET", "/history", [&ctx](const Request& r) {
    std::optional<int> max_items;
    int offset = -1;  // server.py's default: with max_items, the newest entries
    try {
      if (r.has_arg("max_items")) max_items = std::stoi(r.arg("max_items"));
      if (r.has_arg("offset")) offset = std::stoi(r.arg("offset"));
    } catch (const std::exception&) {
      fail("history", "max_items and offset must be integers");
    }
    // Dumped as ordered_json: the keys stay in completion order (Response::json_body would
    // sort them).
    return Response{200, "application/json", ctx.queue->history(max_items, offset).dump(), {}};
  });
  server.route("GET", "/history/{prompt_id}", [&ctx](const Request& r) {
    return Response::json_body(ctx.queue->history(r.params.at("prompt_id")));
  });
  server.route("POST", "/history", [&ctx](const Request& r) {
    const json j = body_json(r);
    if (j.value("clear", false)) ctx.queue->clear_history();
    const auto ids = id_list(j, "delete");
    if (!ids.empty()) ctx.queue->delete_history(ids);
    return Response::empty(200);
  });
  server.route("POST", "/interrupt", [&ctx](const Request& r) {
    const json j = body_json(r);
    std::optional<std::string> id;
    if (j.is_object() && j.contains("prompt_id") && j["prompt_id"].is_string())
      id = j["prompt_id"].get<std::string>();
    ctx.queue->interrupt(id);
    return Response::empty(200);
  });
  server.route("POST", "/free", [&ctx](const Request& r) {
    const json j = body_json(r);
    ctx.queue->free(j.value("unload_models", false), j.value("free_memory", false));
    return Response::empty(200);
  });

  // ComfyUI greets each websocket client with the queue status and its session id.
  server.on_ws_connect([&ctx](const std::string& client_id) {
    ctx.server->hub().send_json(
        client_id,
        {{"type", "status"}, {"data", {{"status", queue_info(ctx)}, {"sid", client_id}}}});
  });
  // The frontend announces its feature flags first; the server answers with its own.
  server.on_ws_message([&ctx](const std::string& client_id, const std::string& text) {
    const json j = json::parse(text, nullptr, false);
    if (j.is_object() && j.value("type", "") == "feature_flags")
      ctx.server->hub().send_json(client_id,
                                  {{"type", "feature_flags"}, {"data", server_features(ctx)}});
  });
}

}  // namespace darkroom::server
