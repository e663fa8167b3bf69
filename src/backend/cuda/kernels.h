// The CUDA backend's kernels, one per op of op_list.h (contracts in op_args.h), plus
// the small launchers the vendor wrappers share. Dense math goes to cuBLASLt
// (cublaslt_gemm.cpp) and cuDNN (cudnn_conv.cpp); the rest are our own .cu kernels.
#pragma once

#include <cstdint>

#include "backend/op_args.h"
#include "backend/op_list.h"

namespace darkroom::cuda {

#define DR_CUDA_KERNEL_DECL(Name, name) void name(const Name##Args& args);
DARKROOM_OPS(DR_CUDA_KERNEL_DECL)
#undef DR_CUDA_KERNEL_DECL

// out[rows, cols] += bias[cols] (same dtype; elementwise.cu).
void add_bias_rows(const Tensor& out, const Tensor& bias);

// out = x with axes reordered as permute() does, for any dtype (copy_ops.cu).
void permute_into(const Tensor& x, const Tensor& out, const std::vector<int>& axes);

// cols [N·Ho·Wo, kh·kw·C] = the receptive fields of args.x in KRSC order
// (conv_im2col.cu; the fallback when cuDNN cannot run a convolution).
void im2col(const Conv2dArgs& args, const Tensor& cols);

}  // namespace darkroom::cuda
