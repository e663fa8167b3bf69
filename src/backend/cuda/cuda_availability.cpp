#include "backend/cuda_availability.h"

#include <cuda_runtime.h>

namespace darkroom {

std::string cuda_unavailable_reason() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // not sticky: leave no error behind for later calls
    return std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err);
  }
  return count > 0 ? "" : "0 devices";
}

}  // namespace darkroom
