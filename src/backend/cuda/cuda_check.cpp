#include "backend/cuda/cuda_check.h"

#include <cublasLt.h>
#include <cudnn.h>

namespace darkroom::cuda {

void throw_cuda_error(const char* lib, const char* call, const char* message, const char* file,
                      int line) {
  fail(lib, call, " failed: ", message, " (", file, ":", line, ")");
}

const char* cublas_status_text(int status) {
  return cublasLtGetStatusString(static_cast<cublasStatus_t>(status));
}

const char* cudnn_status_text(int status) {
  return cudnnGetErrorString(static_cast<cudnnStatus_t>(status));
}

}  // namespace darkroom::cuda
