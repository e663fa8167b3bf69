// Helpers for the CUDA test files (darkroom_cuda_tests): the device they run on and
// reading a result back to compare it on the CPU.
#pragma once

#include <vector>

#include "backend/ops.h"
#include "core/tensor.h"

namespace darkroom::test {

inline constexpr DeviceId kCudaDevice{DeviceType::Cuda, 0};

// A tensor of any float dtype on any device → its values as f32, on the CPU.
inline std::vector<float> host(const Tensor& t) {
  return ops::to_device(ops::cast(t, DType::F32), kCpu).to_floats();
}

}  // namespace darkroom::test
