#include "backend/device.h"

#include <mutex>

namespace darkroom {
namespace {
Device* (*g_cuda_get)(int) = nullptr;
int g_cuda_count = 0;
}  // namespace

const char* op_name(Op op) {
  static constexpr const char* kNames[] = {
#define DR_OP_NAME(Name, name) #name,
      DARKROOM_OPS(DR_OP_NAME)
#undef DR_OP_NAME
  };
  static_assert(std::size(kNames) == kOpCount);
  const int i = static_cast<int>(op);
  return i >= 0 && i < kOpCount ? kNames[i] : "?";
}

void register_cuda_devices(Device* (*get)(int), int count) {
  g_cuda_get = get;
  g_cuda_count = count;
}

int cuda_device_count() {
  return g_cuda_count;
}

Device& device_for(DeviceId id) {
  if (id.type == DeviceType::Cpu) return cpu_device();
  DR_CHECK(g_cuda_get != nullptr && id.index >= 0 && id.index < g_cuda_count, "device",
           "no CUDA device ", id.index, " (this process has ", g_cuda_count, ")");
  return *g_cuda_get(id.index);
}

}  // namespace darkroom
