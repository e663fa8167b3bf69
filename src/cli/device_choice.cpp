#include "cli/device_choice.h"

#include <cstdio>
#include <string>

#include "backend/cuda_availability.h"
#include "backend/device.h"
#include "core/error.h"

namespace darkroom::cli {

DeviceId choose_device(int cuda_index) {
  const std::string why = cuda_unavailable_reason();
  if (!why.empty()) {
    std::fprintf(stderr, "darkroom: no CUDA device found (%s); running on the CPU\n", why.c_str());
    return kCpu;
  }
  init_cuda_backend();  // idempotent; registers the devices
  const int count = cuda_device_count();
  const int index = cuda_index < 0 ? 0 : cuda_index;
  DR_CHECK(index < count, "device", "--cuda-device ", index, " does not exist: ", count,
           " CUDA device", count == 1 ? "" : "s", " found (0 to ", count - 1, ")");
  return {DeviceType::Cuda, index};
}

int parse_cuda_device(const char* command, const std::string& value) {
  try {
    size_t used = 0;
    const int v = std::stoi(value, &used);
    if (used == value.size() && v >= 0) return v;
  } catch (...) {
  }
  fail(command, "--cuda-device '", value, "' is not a device number (0, 1, ...)");
}

}  // namespace darkroom::cli
