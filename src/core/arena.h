// Per-run arena: a bump allocator over large blocks for the activations of one run
// (one denoiser step, one decode). While an ArenaScope is active on a thread, CPU
// tensors created on that thread come from the arena; reset() rewinds it so the next
// run reuses the same blocks and allocates nothing from the system.
//
//   Arena arena;
//   for (step...) { ArenaScope scope(arena); ... ; }  // tensors die inside
//   arena.reset();
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "core/storage.h"

namespace darkroom {

class Arena {
 public:
  explicit Arena(size_t block_bytes = size_t{64} << 20);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  std::shared_ptr<Storage> allocate(size_t bytes, DeviceId device);
  // Rewinds to empty. Every tensor from this arena must be gone (asserted): a live
  // one would alias the next run's memory. The arena also rewinds by itself whenever
  // its last live tensor is released.
  void reset();

  size_t live_allocations() const;
  size_t bytes_reserved() const;  // system memory held in blocks
  size_t high_water() const;      // most bytes in use at once since construction

  static Arena* current();

 private:
  friend class ArenaScope;
  struct Block {
    char* data;
    size_t size;
    size_t used;
  };
  size_t block_bytes_;
  mutable std::mutex mu_;
  std::vector<Block> blocks_;
  size_t live_ = 0;
  size_t in_use_ = 0;
  size_t high_water_ = 0;
};

class ArenaScope {
 public:
  explicit ArenaScope(Arena& arena);
  ~ArenaScope();
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  Arena* previous_;
};

}  // namespace darkroom
