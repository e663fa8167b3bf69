#include "server/ws_hub.h"

namespace darkroom::server {

void WebSocketHub::add(const std::string& client_id, std::shared_ptr<WsClient> client) {
  std::shared_ptr<WsClient> old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& slot = clients_[client_id];
    old = std::move(slot);
    slot = std::move(client);
  }
  // ComfyUI drops the older socket of a reused clientId; close it outside the lock.
  if (old) old->close();
}

void WebSocketHub::remove(const std::string& client_id, const WsClient* client) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = clients_.find(client_id);
  if (it != clients_.end() && it->second.get() == client) clients_.erase(it);
}

void WebSocketHub::send(const std::string& client_id, const std::shared_ptr<const WsFrame>& frame) {
  std::vector<std::shared_ptr<WsClient>> targets;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (client_id.empty()) {
      for (const auto& [id, c] : clients_) targets.push_back(c);
    } else {
      auto it = clients_.find(client_id);
      if (it != clients_.end()) targets.push_back(it->second);
    }
  }
  for (const auto& c : targets) {
    if (c->post(frame))
      sent_.fetch_add(1);
    else
      dropped_.fetch_add(1);
  }
}

void WebSocketHub::send_json(const std::string& client_id, const nlohmann::json& message) {
  auto frame = std::make_shared<WsFrame>();
  frame->data = message.dump();
  send(client_id, frame);
}

void WebSocketHub::send_binary(const std::string& client_id, const std::vector<uint8_t>& bytes) {
  auto frame = std::make_shared<WsFrame>();
  frame->binary = true;
  frame->data.assign(bytes.begin(), bytes.end());
  send(client_id, frame);
}

size_t WebSocketHub::client_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return clients_.size();
}

}  // namespace darkroom::server
