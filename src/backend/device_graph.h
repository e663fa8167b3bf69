// Device graphs: the device work of a piece of code recorded once and replayed, so that
// a repeated computation at fixed shapes (a denoiser step) costs one launch instead of
// hundreds. On CUDA this is a CUDA graph captured from the device's stream; other
// devices offer no capture and callers run their code eagerly.
//
//   GraphCapture c = capture_graph(device, [&] { Tensor r = f(in); copy r into out; });
//   if (c.graph) c.graph->replay();   // reads `in`, writes `out`: the same addresses
//
// The rules for the captured code (broken rules make the capture fail, never a wrong
// replay, except the first): it only launches device work on the device's stream: no
// host copies, no synchronisation, no first-use set-up (cuDNN's algorithm search,
// weight layout caches: run the code once eagerly before capturing it); and every
// tensor it allocates is released before it returns (the graph owns their memory,
// at addresses fixed for its lifetime), so results go into buffers made before.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "core/device_id.h"

namespace darkroom {

class DeviceGraph {
 public:
  virtual ~DeviceGraph() = default;
  // Queues the recorded work on the device's stream (asynchronous, stream-ordered
  // after everything queued before). Throws darkroom::Error if the launch fails.
  virtual void replay() = 0;
};

struct GraphCapture {
  std::unique_ptr<DeviceGraph> graph;  // null: capture failed or is not offered
  std::string error;                   // why, when graph is null
};

// Records `body`'s device work on `device`. The work is recorded, not run: replay()
// runs it. An exception from body ends the capture and is reported in `error`.
GraphCapture capture_graph(DeviceId device, const std::function<void()>& body);

// Device memory figures, for benchmarks. On the CPU every field is 0.
struct DeviceMemoryStats {
  size_t tensors_peak = 0;  // high-water mark of tensor memory in use (our allocator)
  size_t graphs_peak = 0;   // high-water mark of memory in use by captured graphs
  size_t device_used = 0;   // total - free of the whole device now (cudaMemGetInfo)
  size_t device_total = 0;
};
DeviceMemoryStats device_memory_stats(DeviceId device);
// Restarts the high-water marks from the memory in use now.
void reset_device_memory_peaks(DeviceId device);

}  // namespace darkroom
