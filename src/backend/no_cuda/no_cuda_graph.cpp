// Without CUDA no device records graphs: callers run their code eagerly.
#include "backend/device_graph.h"

namespace darkroom {

GraphCapture capture_graph(DeviceId device, const std::function<void()>&) {
  return {nullptr, "graph capture needs a CUDA device (this build has no CUDA; asked for " +
                       device.str() + ")"};
}

DeviceMemoryStats device_memory_stats(DeviceId) {
  return {};
}

void reset_device_memory_peaks(DeviceId) {}

}  // namespace darkroom
