// Storage: one block of device memory, shared by the tensors that view it. Allocators
// are registered per device type so that core/ never depends on a backend.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "core/device_id.h"

namespace darkroom {

class Storage {
 public:
  // `release` frees `data` when the last tensor lets go (empty: memory not owned).
  Storage(void* data, size_t bytes, DeviceId device, std::function<void(void*)> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  DeviceId device() const { return device_; }
  // Unique for the life of the process; caches of prepared weights key on it, so a
  // freed block whose address is reused never hits a stale entry.
  uint64_t id() const { return id_; }

 private:
  void* data_;
  size_t bytes_;
  DeviceId device_;
  std::function<void(void*)> release_;
  uint64_t id_;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual std::shared_ptr<Storage> allocate(size_t bytes, DeviceId device) = 0;
};

// Backends register their allocator at start-up; the CPU one is built in.
void register_allocator(DeviceType type, Allocator* allocator);
Allocator& allocator_for(DeviceType type);

inline constexpr size_t kTensorAlignment = 64;

}  // namespace darkroom
