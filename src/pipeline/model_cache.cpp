#include "pipeline/model_cache.h"

namespace darkroom::pipeline {

std::shared_ptr<const void> ModelCache::find(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, it->second);  // now most recently used
  return it->second->object;
}

void ModelCache::insert(const std::string& key, std::shared_ptr<const void> object,
                        uint64_t bytes) {
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= it->second->bytes;
    entries_.erase(it->second);
    index_.erase(it);
  }
  entries_.push_front(Entry{key, std::move(object), bytes});
  index_[key] = entries_.begin();
  bytes_ += bytes;
  // Evict from the least recently used end, never the entry just loaded (a model larger
  // than the whole budget still has to run).
  while (bytes_ > budget_ && entries_.size() > 1) {
    Entry& last = entries_.back();
    bytes_ -= last.bytes;
    index_.erase(last.key);
    entries_.pop_back();
  }
}

void ModelCache::clear() {
  entries_.clear();
  index_.clear();
  bytes_ = 0;
}

}  // namespace darkroom::pipeline
