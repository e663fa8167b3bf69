// `darkroom bench unet`: one full-size SD 1.5 or SDXL UNet step (batch 2 = cond +
// uncond, as with CFG) on random weights, on the CPU or a CUDA device (CUDA graph on or
// off), with the device's peak memory.
#pragma once

#include <string>
#include <vector>

namespace darkroom::bench {

int run_unet(const std::vector<std::string>& args);

}  // namespace darkroom::bench
