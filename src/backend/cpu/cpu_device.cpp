// The CPU device: its op table and host memory copies.
#include <cstring>

#include "backend/cpu/kernels.h"
#include "backend/cpu/onednn_utils.h"
#include "backend/device.h"

namespace darkroom {
namespace {

#define DR_OP_NS cpu
constexpr OpTable kCpuOps = DR_MAKE_OP_TABLE();
#undef DR_OP_NS

class CpuDevice final : public Device {
 public:
  DeviceId id() const override { return kCpu; }
  std::string description() const override {
    return "cpu: oneDNN " + version() + ", " + cpu::onednn::isa_name() +
           (cpu::onednn::has_native_bf16() ? ", native bf16"
                                           : ", bf16 emulated (no AVX512-BF16/AMX)");
  }
  const OpTable& ops() const override { return kCpuOps; }
  DType compute_dtype() const override {
    return cpu::onednn::has_native_bf16() ? DType::BF16 : DType::F32;
  }
  void copy(const Tensor& src, const Tensor& dst) override {
    DR_ASSERT(src.device().type == DeviceType::Cpu && dst.device().type == DeviceType::Cpu);
    DR_ASSERT(src.nbytes() == dst.nbytes());
    std::memcpy(dst.raw(), src.raw(), src.nbytes());
  }
  void synchronize() override {}

 private:
  static std::string version() {
    const dnnl_version_t* v = dnnl_version();
    return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch);
  }
};

}  // namespace

Device& cpu_device() {
  static CpuDevice device;
  return device;
}

}  // namespace darkroom
