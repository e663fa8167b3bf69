// Whether CUDA devices can be used, and if not, why: for the command line's choice of
// device and its "running on the CPU" message.
#pragma once

#include <string>

namespace darkroom {

// "" when at least one CUDA device is usable, else the reason, e.g. "this build has no
// CUDA backend" or "cudaGetDeviceCount: no CUDA-capable device is detected".
std::string cuda_unavailable_reason();

}  // namespace darkroom
