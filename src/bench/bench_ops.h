// `darkroom bench ops`: our conv2d, matmul and attention at Stable Diffusion shapes,
// each beside the same oneDNN primitive called directly in the same run.
#pragma once

#include <string>
#include <vector>

namespace darkroom::bench {

int run_ops(const std::vector<std::string>& args);

}  // namespace darkroom::bench
