#include "queue/run_job.h"

#include <exception>
#include <string>
#include <vector>

#include "core/log.h"
#include "queue/comfy_messages.h"

namespace darkroom::queue {

using Status = workflow::ExecutionResult::Status;

RunOutcome run_job(workflow::Executor& executor, const QueuedJob& job, const MessageSinks& sinks,
                   const std::atomic<bool>& interrupt) {
  const std::string& id = job.prompt_id;
  const std::string& client = job.client_id;
  const json& prompt = job.item.at(2);
  const json& extra_data = job.item.at(3);
  const std::vector<std::string> outputs = job.item.at(4).get<std::vector<std::string>>();

  auto send = [&](const std::string& to, const json& msg) {
    if (sinks.json_message) sinks.json_message(to, msg);
  };
  // ComfyUI's PromptExecutor.add_message: stamped, recorded for the history status, and
  // sent to the prompt's client (or to everyone when `broadcast`).
  json messages = json::array();
  auto add_message = [&](const std::string& type, json data, bool broadcast) {
    data["timestamp"] = now_ms();
    messages.push_back(json::array({type, data}));
    if (!client.empty() || broadcast) send(client, message(type, data));
  };

  add_message("execution_start", {{"prompt_id", id}}, false);
  // ComfyUI always reports execution_cached (possibly empty) before the first node.
  bool cached_sent = false;
  auto send_cached = [&](const std::vector<std::string>& nodes) {
    if (cached_sent) return;
    cached_sent = true;
    add_message("execution_cached", {{"nodes", nodes}, {"prompt_id", id}}, false);
  };

  workflow::ExecutionEvents events;
  events.cached = [&](const std::vector<std::string>& nodes) { send_cached(nodes); };
  events.executing = [&](const std::string& node) {
    send_cached({});
    if (!client.empty()) send(client, executing_message(node, id));
  };
  events.progress = [&](int value, int max, const std::string& node) {
    send(client,
         message("progress", {{"value", value}, {"max", max}, {"prompt_id", id}, {"node", node}}));
  };
  events.executed = [&](const std::string& node, const json& output) {
    if (client.empty()) return;
    send(client,
         message("executed",
                 {{"node", node}, {"display_node", node}, {"output", output}, {"prompt_id", id}}));
  };
  events.preview = [&](const std::string& format, const std::vector<uint8_t>& bytes) {
    if (sinks.binary) sinks.binary(client, preview_frame(format, bytes));
  };

  workflow::ExecutionResult r;
  try {
    r = executor.execute(id, prompt, extra_data, outputs, events, interrupt);
  } catch (const std::exception& e) {
    // The executor reports node failures as results; anything thrown is its own bug or
    // an allocation failure. The prompt still gets an error entry instead of vanishing.
    DR_LOG(Error) << "prompt " << id << ": executor failed: " << e.what();
    r.status = Status::Error;
    r.error = {{"node_id", nullptr},
               {"node_type", nullptr},
               {"executed", json::array()},
               {"exception_message", e.what()},
               {"exception_type", "darkroom.ExecutorError"},
               {"traceback", json::array()},
               {"current_inputs", json::object()},
               {"current_outputs", json::array()}};
  }
  send_cached({});

  json data = r.error.is_object() ? r.error : json::object();
  data["prompt_id"] = id;
  switch (r.status) {
    case Status::Success:
      add_message("execution_success", {{"prompt_id", id}}, false);
      break;
    case Status::Error:
      add_message("execution_error", data, false);
      break;
    case Status::Interrupted:
      add_message("execution_interrupted", data, true);
      break;
  }

  // ComfyUI's history "meta": one entry per node with a UI output.
  json meta = json::object();
  for (const auto& [node, _] : r.outputs.items())
    meta[node] = {{"node_id", node},
                  {"display_node", node},
                  {"parent_node", nullptr},
                  {"real_node_id", node}};
  RunOutcome out;
  out.status = r.status;
  out.result = {{"outputs", r.outputs},
                {"status", history_status(r.status == Status::Success, messages)},
                {"meta", meta}};
  return out;
}

}  // namespace darkroom::queue
