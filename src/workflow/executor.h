// The workflow engine's face to the layers above (queue/, server/): validate a ComfyUI
// API-format prompt, run it with caching, describe the nodes for /object_info.
//
// A prompt is {"<id>": {"class_type": "...", "inputs": {name: literal | [src_id, slot]}}}.
// Everything here follows ComfyUI's execution.py: its error types and `node_errors`
// shape, its message payloads, its cache semantics (a node re-runs only when its class,
// literal inputs or an ancestor changed).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "workflow/folder_paths.h"
#include "workflow/resource_limits.h"

namespace darkroom::workflow {

using json = nlohmann::json;

// ComfyUI's validate_prompt(): on success `outputs` lists the output node ids to run;
// otherwise `error` is {"type","message","details","extra_info"} (types as ComfyUI's:
// "invalid_prompt", "prompt_no_outputs", "prompt_outputs_failed_validation", ...) and
// `node_errors` is {"<id>": {"errors": [{"type","message","details","extra_info"}],
// "dependent_outputs": [...], "class_type": "..."}} (types "required_input_missing",
// "return_type_mismatch", "invalid_input_type", "value_smaller_than_min",
// "value_bigger_than_max", "value_not_in_list", "exception_during_validation", ...).
struct Validation {
  bool ok = false;
  json error = json::object();
  json node_errors = json::object();
  std::vector<std::string> outputs;
};

// What a run reports while it goes (called on the worker thread, in order). Each maps to
// one ComfyUI websocket message; the queue adds "prompt_id" and sends them.
struct ExecutionEvents {
  std::function<void(const std::vector<std::string>& node_ids)> cached;          // execution_cached
  std::function<void(const std::string& node_id)> executing;                     // executing
  std::function<void(int value, int max, const std::string& node_id)> progress;  // progress
  // executed: output is the node's UI dict, e.g. {"images": [{"filename","subfolder","type"}]}
  std::function<void(const std::string& node_id, const json& output)> executed;
  // A preview image (binary websocket frame): format "JPEG" or "PNG", encoded bytes.
  std::function<void(const std::string& format, const std::vector<uint8_t>& bytes)> preview;
};

struct ExecutionResult {
  enum class Status { Success, Error, Interrupted };
  Status status = Status::Success;
  json outputs = json::object();  // {"<node id>": ui dict} of every node that returned UI
  // Status::Error: ComfyUI's execution_error payload minus prompt_id: {"node_id",
  // "node_type", "executed", "exception_message", "exception_type", "traceback",
  // "current_inputs", "current_outputs"}. Status::Interrupted: execution_interrupted's
  // {"node_id", "node_type", "executed"}.
  json error = json::object();
  std::vector<std::string> executed;  // node ids run or taken from the cache
};

struct PreviewOptions {
  std::string method = "auto";  // "none" | "auto" (latent → RGB factors) | "latent2rgb"
  int max_size = 512;
};

// Holds the model cache and the node-output cache between prompts. Not thread-safe: one
// Executor per worker (device), driven by one thread.
class Executor {
 public:
  // `limits`: LATENT and IMAGE values over limits.max_pixels fail the prompt before the
  // next node consumes them (resource_limits.h).
  Executor(FolderPaths paths, int cuda_device /* -1: CPU */, uint64_t model_memory_budget,
           PreviewOptions preview = {}, ResourceLimits limits = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs the validated prompt's `outputs`. `extra_data` is POST /prompt's extra_data
  // (extra_pnginfo.workflow goes into saved PNGs). Polls `interrupt` between nodes and
  // sampler steps; when set, stops with Status::Interrupted.
  ExecutionResult execute(const std::string& prompt_id, const json& prompt, const json& extra_data,
                          const std::vector<std::string>& outputs, const ExecutionEvents& events,
                          const std::atomic<bool>& interrupt);

  // POST /free: drop loaded models and/or cached node outputs.
  void free_memory(bool unload_models, bool free_cached_outputs);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Validation needs no Executor: the node declarations and the folder listings suffice.
// `limits`: the server's caps on steps and pixels, checked on literal inputs after the
// declared ranges (a prompt over one gets "value_bigger_than_max" naming the limit).
Validation validate_prompt(const json& prompt, const FolderPaths& paths,
                           const ResourceLimits& limits = {});

// GET /object_info: every node's declaration, in ComfyUI's format; built from the
// declarations (combo lists such as ckpt_name come from `paths`).
json object_info(const FolderPaths& paths);
// GET /object_info/{class}: {"<class>": {...}} or an empty object if unknown.
json object_info(const std::string& class_type, const FolderPaths& paths);

}  // namespace darkroom::workflow
