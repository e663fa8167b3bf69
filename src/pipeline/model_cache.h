// Loaded models kept across prompts, like ComfyUI's model management: entries keyed by
// what was loaded (file path, part, dtype), each with its size in bytes, evicted least
// recently used first once the total passes the budget. An evicted model stays alive
// while a node output still holds it (the handles are shared_ptrs); the cache only stops
// holding it.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

namespace darkroom::pipeline {

class ModelCache {
 public:
  explicit ModelCache(uint64_t budget_bytes) : budget_(budget_bytes) {}

  // The cached object under `key`, or what `load` returns (object and its size in bytes),
  // which is then cached. `load` may throw; nothing is cached then.
  template <class T>
  std::shared_ptr<const T> get_or_load(
      const std::string& key,
      const std::function<std::pair<std::shared_ptr<const T>, uint64_t>()>& load) {
    if (std::shared_ptr<const void> hit = find(key)) return std::static_pointer_cast<const T>(hit);
    auto [object, bytes] = load();
    insert(key, object, bytes);
    return object;
  }

  bool contains(const std::string& key) const { return index_.contains(key); }
  size_t size() const { return entries_.size(); }
  uint64_t bytes() const { return bytes_; }
  uint64_t budget() const { return budget_; }
  // POST /free {"unload_models": true}.
  void clear();

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const void> object;
    uint64_t bytes = 0;
  };
  std::shared_ptr<const void> find(const std::string& key);
  void insert(const std::string& key, std::shared_ptr<const void> object, uint64_t bytes);

  uint64_t budget_;
  uint64_t bytes_ = 0;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace darkroom::pipeline
