// Device: what a backend offers the layers above it: its op table, memory copies and
// synchronisation. One Device object exists per physical device.
#pragma once

#include <string>

#include "backend/op_table.h"
#include "core/tensor.h"

namespace darkroom {

class Device {
 public:
  virtual ~Device() = default;
  virtual DeviceId id() const = 0;
  // Human-readable, e.g. "cpu: oneDNN 2.6.3, avx512_core, bf16 emulated".
  virtual std::string description() const = 0;
  virtual const OpTable& ops() const = 0;
  // The dtype models compute in on this device (bf16 where the hardware has it).
  virtual DType compute_dtype() const = 0;
  // Copies src into dst (same shape and dtype); one of them lives on this device, the
  // other on this device or the CPU.
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  virtual void synchronize() = 0;
};

// The CPU device always exists; CUDA devices exist when built with CUDA and present.
Device& cpu_device();
Device& device_for(DeviceId id);
int cuda_device_count();
// Called by a backend at start-up.
void register_cuda_devices(Device* (*get)(int index), int count);

}  // namespace darkroom

namespace darkroom {
// Whether this build contains the CUDA backend, and its start-up (finds the GPUs and
// registers them; a no-op without CUDA).
bool cuda_backend_compiled();
void init_cuda_backend();
}  // namespace darkroom
