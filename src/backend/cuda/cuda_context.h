// What the CUDA kernels need from the device they run on: its stream (with the device
// made current on the calling thread) and scratch memory from its allocator.
#pragma once

#include <cuda_runtime.h>

#include "core/tensor.h"

namespace darkroom::cuda {

// Makes t's GPU current on this thread and returns that GPU's stream.
cudaStream_t stream_for(const Tensor& t);
cudaStream_t stream_for(int device_index);

// The allocator for DeviceType::Cuda (stream-ordered on each device's stream).
Allocator& cuda_allocator();

// Uninitialised device memory on t's GPU; freed in stream order when released.
Tensor scratch(const Tensor& like, const Shape& shape, DType dtype);

}  // namespace darkroom::cuda
