// The CUDA devices: one CudaDevice per GPU, each with its own stream, created lazily
// on first use, and the backend's start-up (init_cuda_backend).
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/kernels.h"
#include "backend/device.h"
#include "core/log.h"

namespace darkroom {
namespace {

#define DR_OP_NS cuda
constexpr OpTable kCudaOps = DR_MAKE_OP_TABLE();
#undef DR_OP_NS

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(int index) : index_(index) {
    CUDA_CHECK(cudaSetDevice(index_));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, index_));
    name_ = prop.name;
    memory_gib_ = static_cast<double>(prop.totalGlobalMem) / (1 << 30);
    sm_ = prop.major * 10 + prop.minor;
    // Keep freed blocks in the stream-ordered pool instead of returning them to the
    // driver at every synchronisation: one denoiser step then allocates nothing new.
    cudaMemPool_t pool;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, index_));
    uint64_t threshold = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  }

  DeviceId id() const override { return {DeviceType::Cuda, index_}; }
  std::string description() const override {
    int rt = 0;
    cudaRuntimeGetVersion(&rt);
    char buf[256];
    std::snprintf(buf, sizeof buf, "cuda:%d: %s, sm_%d, %.1f GiB, CUDA runtime %d.%d, cuDNN %zu",
                  index_, name_.c_str(), sm_, memory_gib_, rt / 1000, (rt % 1000) / 10,
                  static_cast<size_t>(cudnnGetVersion()));
    return buf;
  }
  const OpTable& ops() const override { return kCudaOps; }
  DType compute_dtype() const override { return sm_ >= 80 ? DType::BF16 : DType::F16; }

  void copy(const Tensor& src, const Tensor& dst) override {
    DR_ASSERT(src.nbytes() == dst.nbytes(), "copy of ", src.nbytes(), " bytes into ", dst.nbytes());
    const bool src_host = src.device().type == DeviceType::Cpu;
    const bool dst_host = dst.device().type == DeviceType::Cpu;
    DR_ASSERT(!(src_host && dst_host), "host-to-host copy sent to a CUDA device");
    DR_ASSERT(src_host || src.device().index == index_, "copy source on another GPU");
    DR_ASSERT(dst_host || dst.device().index == index_, "copy destination on another GPU");
    if (src.nbytes() == 0) return;
    CUDA_CHECK(cudaSetDevice(index_));
    const cudaMemcpyKind kind = src_host   ? cudaMemcpyHostToDevice
                                : dst_host ? cudaMemcpyDeviceToHost
                                           : cudaMemcpyDeviceToDevice;
    CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.nbytes(), kind, stream_));
    // Host memory is pageable and may be freed as soon as we return.
    if (src_host || dst_host) CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void synchronize() override {
    CUDA_CHECK(cudaSetDevice(index_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  cudaStream_t stream() const { return stream_; }

 private:
  int index_;
  cudaStream_t stream_ = nullptr;
  std::string name_;
  double memory_gib_ = 0;
  int sm_ = 0;
};

// Devices are created on first use and never destroyed: tensors released during
// static destruction still find their device's stream.
std::mutex g_mu;
std::vector<CudaDevice*> g_devices;

CudaDevice& device_at(int index) {
  std::lock_guard<std::mutex> lock(g_mu);
  DR_CHECK(index >= 0 && index < static_cast<int>(g_devices.size()), "cuda", "no CUDA device ",
           index, " (", g_devices.size(), " found)");
  if (g_devices[static_cast<size_t>(index)] == nullptr)
    g_devices[static_cast<size_t>(index)] = new CudaDevice(index);
  return *g_devices[static_cast<size_t>(index)];
}

Device* get_device(int index) {
  return &device_at(index);
}

}  // namespace

namespace cuda {

cudaStream_t stream_for(int device_index) {
  CudaDevice& d = device_at(device_index);
  CUDA_CHECK(cudaSetDevice(device_index));
  return d.stream();
}

cudaStream_t stream_for(const Tensor& t) {
  DR_ASSERT(t.device().type == DeviceType::Cuda, "CUDA kernel given a ", t.device(), " tensor");
  return stream_for(t.device().index);
}

Tensor scratch(const Tensor& like, const Shape& shape, DType dtype) {
  return Tensor::empty(shape, dtype, like.device());
}

}  // namespace cuda

bool cuda_backend_compiled() {
  return true;
}

void init_cuda_backend() {
  static std::once_flag once;
  std::call_once(once, [] {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
      // Clear the sticky "no device" error so later runtime calls are not confused.
      cudaGetLastError();
      // Debug only: the commands that wanted a GPU say so themselves (cli/device_choice).
      DR_LOG(Debug) << "no CUDA device found ("
                    << (err != cudaSuccess ? cudaGetErrorString(err) : "0 devices")
                    << "); using the CPU";
      return;
    }
    {
      std::lock_guard<std::mutex> lock(g_mu);
      g_devices.assign(static_cast<size_t>(count), nullptr);
    }
    register_allocator(DeviceType::Cuda, &cuda::cuda_allocator());
    register_cuda_devices(&get_device, count);
  });
}

}  // namespace darkroom
