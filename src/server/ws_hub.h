// The websocket side of /ws?clientId=: every connected client by id, and a send that
// never blocks the caller. Each client has a bounded queue of outgoing frames drained by
// its own async writer, so a slow client loses preview frames (and, past a hard limit,
// its connection) instead of holding up the workers that produce them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace darkroom::server {

// One outgoing websocket message.
struct WsFrame {
  bool binary = false;
  std::string data;
};

// Implemented by the websocket session (http_server.cpp).
class WsClient {
 public:
  virtual ~WsClient() = default;
  // Queues the frame; returns false if it was dropped (queue full).
  virtual bool post(std::shared_ptr<const WsFrame> frame) = 0;
  virtual void close() = 0;
};

class WebSocketHub {
 public:
  // Per client: binary frames are dropped beyond `binary_limit` queued frames; a client with
  // `json_limit` queued frames is disconnected (it cannot keep up with the message stream).
  explicit WebSocketHub(size_t binary_limit = 16, size_t json_limit = 4096)
      : binary_limit_(binary_limit), json_limit_(json_limit) {}

  // A client connected with `client_id` (an earlier one with the same id is replaced, as in
  // ComfyUI). `on_connect` runs after registration (the server sends "status" from it).
  void add(const std::string& client_id, std::shared_ptr<WsClient> client);
  // Removes `client` if it is still the one registered under `client_id`.
  void remove(const std::string& client_id, const WsClient* client);

  // client_id "": every client.
  void send_json(const std::string& client_id, const nlohmann::json& message);
  void send_binary(const std::string& client_id, const std::vector<uint8_t>& frame);

  size_t client_count() const;
  uint64_t dropped_frames() const { return dropped_.load(); }
  uint64_t sent_frames() const { return sent_.load(); }
  size_t binary_limit() const { return binary_limit_; }
  size_t json_limit() const { return json_limit_; }

 private:
  void send(const std::string& client_id, const std::shared_ptr<const WsFrame>& frame);

  size_t binary_limit_;
  size_t json_limit_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<WsClient>> clients_;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> sent_{0};
};

}  // namespace darkroom::server
