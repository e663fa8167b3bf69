#include "core/arena.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace darkroom {
namespace {
thread_local Arena* t_current = nullptr;
}

Arena::Arena(size_t block_bytes) : block_bytes_(block_bytes) {}

Arena::~Arena() {
  DR_ASSERT(live_ == 0, "arena destroyed with ", live_, " live tensors");
  for (Block& b : blocks_) std::free(b.data);
}

std::shared_ptr<Storage> Arena::allocate(size_t bytes, DeviceId device) {
  DR_ASSERT(device.type == DeviceType::Cpu, "the arena holds CPU memory only");
  const size_t rounded =
      std::max<size_t>(kTensorAlignment, (bytes + kTensorAlignment - 1) & ~(kTensorAlignment - 1));
  std::lock_guard lock(mu_);
  Block* target = nullptr;
  for (Block& b : blocks_)
    if (b.size - b.used >= rounded) {
      target = &b;
      break;
    }
  if (target == nullptr) {
    size_t size = std::max(block_bytes_, rounded);
    char* p = static_cast<char*>(std::aligned_alloc(kTensorAlignment, size));
    if (p == nullptr) fail("arena", "out of memory reserving ", size, " bytes");
    blocks_.push_back({p, size, 0});
    target = &blocks_.back();
  }
  char* p = target->data + target->used;
  target->used += rounded;
  ++live_;
  in_use_ += rounded;
  high_water_ = std::max(high_water_, in_use_);
  return std::make_shared<Storage>(p, bytes, device, [this, rounded](void*) {
    std::lock_guard l(mu_);
    --live_;
    in_use_ -= rounded;
    // With nothing alive every block is free again: rewind now, so a loop of runs that
    // forgets reset() still reuses the same memory instead of growing.
    if (live_ == 0)
      for (Block& b : blocks_) b.used = 0;
  });
}

void Arena::reset() {
  std::lock_guard lock(mu_);
  DR_ASSERT(live_ == 0, "arena reset with ", live_, " live tensors");
  for (Block& b : blocks_) b.used = 0;
}

size_t Arena::live_allocations() const {
  std::lock_guard lock(mu_);
  return live_;
}
size_t Arena::bytes_reserved() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const Block& b : blocks_) n += b.size;
  return n;
}
size_t Arena::high_water() const {
  std::lock_guard lock(mu_);
  return high_water_;
}

Arena* Arena::current() {
  return t_current;
}

ArenaScope::ArenaScope(Arena& arena) : previous_(t_current) {
  t_current = &arena;
}
ArenaScope::~ArenaScope() {
  t_current = previous_;
}

}  // namespace darkroom
