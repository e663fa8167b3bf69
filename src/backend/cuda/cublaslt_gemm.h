// A thin wrapper over cuBLASLt for the column-major problem
//   D[m, n] = op(A)[m, k] · op(B)[k, n] (+ bias[m] broadcast over n)
// with fp32 accumulation, strided batches, a cached algorithm per shape, and
// cublasGemmStridedBatchedEx as the fallback when cuBLASLt's heuristic offers nothing.
// Row-major callers (linear, matmul) swap operands: see cublaslt_gemm.cpp.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/tensor.h"

namespace darkroom::cuda {

struct GemmProblem {
  DType dtype = DType::F32;  // of A, B, D and bias
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  int64_t lda = 0, ldb = 0, ldd = 0;
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_d = 0;
  const void* a = nullptr;
  const void* b = nullptr;
  void* d = nullptr;
  const void* bias = nullptr;  // [m] or null
};

// Runs on `like`'s device and stream (like: any tensor on that device).
void gemm(const GemmProblem& p, const Tensor& like);

}  // namespace darkroom::cuda
