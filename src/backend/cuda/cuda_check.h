// Checks on vendor calls: each macro throws darkroom::Error naming the failing call's
// text and the library's own error string, e.g.
//   "[cuda] cudaMallocAsync(&p, bytes, stream) failed: out of memory (file.cpp:42)".
#pragma once

#include <cuda_runtime.h>

#include "core/error.h"

namespace darkroom::cuda {
[[noreturn]] void throw_cuda_error(const char* lib, const char* call, const char* message,
                                   const char* file, int line);
const char* cublas_status_text(int status);
const char* cudnn_status_text(int status);
}  // namespace darkroom::cuda

#define CUDA_CHECK(call)                                                                       \
  do {                                                                                         \
    const cudaError_t dr_err_ = (call);                                                        \
    if (dr_err_ != cudaSuccess)                                                                \
      ::darkroom::cuda::throw_cuda_error("cuda", #call, cudaGetErrorString(dr_err_), __FILE__, \
                                         __LINE__);                                            \
  } while (0)

#define CUBLAS_CHECK(call)                                                                    \
  do {                                                                                        \
    const int dr_st_ = static_cast<int>(call);                                                \
    if (dr_st_ != 0)                                                                          \
      ::darkroom::cuda::throw_cuda_error(                                                     \
          "cublas", #call, ::darkroom::cuda::cublas_status_text(dr_st_), __FILE__, __LINE__); \
  } while (0)

#define CUDNN_CHECK(call)                                                                   \
  do {                                                                                      \
    const int dr_st_ = static_cast<int>(call);                                              \
    if (dr_st_ != 0)                                                                        \
      ::darkroom::cuda::throw_cuda_error(                                                   \
          "cudnn", #call, ::darkroom::cuda::cudnn_status_text(dr_st_), __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: reports a bad launch configuration at once (asynchronous
// faults surface at the next synchronising call).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
