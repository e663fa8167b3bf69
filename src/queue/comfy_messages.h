// ComfyUI's websocket messages and history pieces, built in one place (server.py,
// execution.py and main.py are the reference for every key):
//
//   {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": N}}}}
//   execution_start / execution_cached / execution_success / execution_error /
//   execution_interrupted: data carries "prompt_id" and a "timestamp" (ms), and the same
//   [type, data] pairs go into the history entry's status.messages.
//   executing {"node", "display_node", "prompt_id"}; node null once the prompt is done.
//   progress {"value", "max", "prompt_id", "node"}
//   executed {"node", "display_node", "output", "prompt_id"}
//   binary preview: u32 BE 1 (PREVIEW_IMAGE), u32 BE 1 = JPEG / 2 = PNG, image bytes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace darkroom::queue {

using json = nlohmann::json;

// Milliseconds since the Unix epoch (ComfyUI's int(time.time() * 1000)).
int64_t now_ms();
// A random (version 4) UUID, ComfyUI's prompt id format.
std::string new_prompt_id();

json message(const std::string& type, const json& data);
json status_message(int queue_remaining);
json executing_message(const json& node, const std::string& prompt_id);

// The binary websocket frame of a preview; format "JPEG" or "PNG".
std::vector<uint8_t> preview_frame(const std::string& format, const std::vector<uint8_t>& bytes);

// The history status: {"status_str": "success"|"error", "completed", "messages"}.
json history_status(bool success, const json& messages);

// The execution_error data recorded for a prompt that was running when the server died
// and is not re-run (rerun_interrupted off, or it was running at too many crashes).
json server_stopped_error(const std::string& prompt_id, int attempts);

}  // namespace darkroom::queue
