#include "queue/comfy_messages.h"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>

namespace darkroom::queue {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_prompt_id() {
  // Seeded once from the OS; ids only need to be unique, not secret.
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}() ^
                             (static_cast<uint64_t>(std::random_device{}()) << 32)};
  uint64_t hi, lo;
  {
    std::lock_guard lock(mutex);
    hi = rng();
    lo = rng();
  }
  hi = (hi & ~0xF000ull) | 0x4000ull;                  // version 4
  lo = (lo & ~(0xC000ull << 48)) | (0x8000ull << 48);  // RFC 4122 variant
  char s[37];
  std::snprintf(s, sizeof s, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return s;
}

json message(const std::string& type, const json& data) {
  return {{"type", type}, {"data", data}};
}

json status_message(int queue_remaining) {
  return message("status", {{"status", {{"exec_info", {{"queue_remaining", queue_remaining}}}}}});
}

json executing_message(const json& node, const std::string& prompt_id) {
  json data = {{"node", node}, {"prompt_id", prompt_id}};
  if (!node.is_null()) data["display_node"] = node;
  return message("executing", data);
}

std::vector<uint8_t> preview_frame(const std::string& format, const std::vector<uint8_t>& bytes) {
  const uint32_t event = 1;  // BinaryEventTypes.PREVIEW_IMAGE
  const uint32_t image_type = format == "PNG" ? 2 : 1;
  std::vector<uint8_t> frame;
  frame.reserve(8 + bytes.size());
  for (uint32_t v : {event, image_type})
    for (int shift = 24; shift >= 0; shift -= 8) frame.push_back(static_cast<uint8_t>(v >> shift));
  frame.insert(frame.end(), bytes.begin(), bytes.end());
  return frame;
}

json history_status(bool success, const json& messages) {
  return {{"status_str", success ? "success" : "error"},
          {"completed", success},
          {"messages", messages}};
}

json server_stopped_error(const std::string& prompt_id, int attempts) {
  return {{"prompt_id", prompt_id},
          {"node_id", nullptr},
          {"node_type", nullptr},
          {"executed", json::array()},
          {"exception_message", "the server stopped while this prompt was running (" +
                                    std::to_string(attempts) + " time" +
                                    (attempts == 1 ? "" : "s") + "); it was not run again"},
          {"exception_type", "darkroom.ServerStopped"},
          {"traceback", json::array()},
          {"current_inputs", json::object()},
          {"current_outputs", json::array()},
          {"timestamp", now_ms()}};
}

}  // namespace darkroom::queue
