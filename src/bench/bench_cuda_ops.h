// `darkroom bench cuda-ops [--json] [--dtype bf16|f16|f32] [--repeat N]`: TFLOP/s of
// our CUDA linear, conv2d and attention at Stable Diffusion shapes on cuda:0. The
// same-run baseline is PyTorch (tools/bench_torch_ops.py prints the same fields).
// Builds without CUDA too: it only uses ops.h and says so when no GPU is present.
#pragma once

#include <string>
#include <vector>

namespace darkroom::bench {

int run_cuda_ops(const std::vector<std::string>& args);

}  // namespace darkroom::bench
