// The device `darkroom generate` and `darkroom bench` run on: a CUDA device when one
// exists, else the CPU with one line on stderr saying why:
//   darkroom: no CUDA device found (cudaGetDeviceCount: ...); running on the CPU
#pragma once

#include <string>

#include "core/device_id.h"

namespace darkroom::cli {

// cuda_index ≥ 0: that CUDA device (--cuda-device N; an index past the last device is
// an error when devices exist); -1: the first CUDA device. Either way the CPU when no
// CUDA device is usable.
DeviceId choose_device(int cuda_index);

// "--cuda-device N" value: a non-negative integer, else darkroom::Error naming `command`.
int parse_cuda_device(const char* command, const std::string& value);

}  // namespace darkroom::cli
