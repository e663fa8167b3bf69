#include "core/storage.h"

#include <array>
#include <cstdlib>
#include <new>

#include "core/arena.h"
#include "core/error.h"

namespace darkroom {
namespace {

std::atomic<uint64_t> g_next_storage_id{1};

class CpuAllocator final : public Allocator {
 public:
  std::shared_ptr<Storage> allocate(size_t bytes, DeviceId device) override {
    if (Arena* arena = Arena::current()) return arena->allocate(bytes, device);
    size_t rounded = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
    void* p = std::aligned_alloc(kTensorAlignment, rounded == 0 ? kTensorAlignment : rounded);
    if (p == nullptr) fail("cpu allocator", "out of memory allocating ", bytes, " bytes");
    return std::make_shared<Storage>(p, bytes, device, [](void* q) { std::free(q); });
  }
};

std::array<Allocator*, 2>& registry() {
  static CpuAllocator cpu;
  static std::array<Allocator*, 2> r{&cpu, nullptr};
  return r;
}

}  // namespace

Storage::Storage(void* data, size_t bytes, DeviceId device, std::function<void(void*)> release)
    : data_(data),
      bytes_(bytes),
      device_(device),
      release_(std::move(release)),
      id_(g_next_storage_id.fetch_add(1, std::memory_order_relaxed)) {}

Storage::~Storage() {
  if (release_) release_(data_);
}

void register_allocator(DeviceType type, Allocator* allocator) {
  registry()[static_cast<size_t>(type)] = allocator;
}

Allocator& allocator_for(DeviceType type) {
  Allocator* a = registry()[static_cast<size_t>(type)];
  if (a == nullptr)
    fail("device", "no allocator for ", type == DeviceType::Cuda ? "cuda" : "cpu",
         " (this build has no such backend)");
  return *a;
}

}  // namespace darkroom
