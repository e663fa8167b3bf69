// Writes named CPU tensors to a safetensors file (the format read by io/safetensors.h),
// for tests and for the fixture and demo-model tools.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace darkroom {

// Writes `tensors` back to back in the given order, with `metadata` as the header's
// "__metadata__". Atomic: the bytes go to a temporary file in the same directory that
// is renamed over `path` only once complete, so readers never see half a file.
// The header is padded with spaces so that the data section starts at a multiple of
// 64 bytes (N stays a multiple of 8, as the reference writer makes it). Throws
// darkroom::Error for a tensor not on the CPU, a duplicate or reserved name, or an
// I/O failure.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace darkroom
