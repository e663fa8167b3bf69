// Device memory for tensors: stream-ordered cudaMallocAsync / cudaFreeAsync on the
// owning device's stream, so a block freed by one op is reused by the next op in the
// same stream without a synchronisation.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"

namespace darkroom::cuda {
namespace {

class CudaAllocator final : public Allocator {
 public:
  std::shared_ptr<Storage> allocate(size_t bytes, DeviceId device) override {
    DR_ASSERT(device.type == DeviceType::Cuda);
    const int index = device.index;
    cudaStream_t stream = stream_for(index);
    // Never zero bytes: every storage gets a distinct, aligned address.
    const size_t rounded = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
    void* p = nullptr;
    const cudaError_t err = cudaMallocAsync(&p, rounded == 0 ? kTensorAlignment : rounded, stream);
    if (err != cudaSuccess) {
      cudaGetLastError();
      fail("cuda allocator", "cannot allocate ", bytes, " bytes on cuda:", index, ": ",
           cudaGetErrorString(err));
    }
    return std::make_shared<Storage>(p, bytes, device, [index, stream](void* q) {
      // No throwing from a destructor; a failure here means the process is going down.
      if (cudaSetDevice(index) == cudaSuccess) cudaFreeAsync(q, stream);
    });
  }
};

}  // namespace

Allocator& cuda_allocator() {
  static CudaAllocator allocator;
  return allocator;
}

}  // namespace darkroom::cuda
