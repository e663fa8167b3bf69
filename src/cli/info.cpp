#include <cstdio>

#include "backend/device.h"
#include "cli/commands.h"
#include "core/thread_pool.h"

namespace darkroom::cli {

int run_info(const std::vector<std::string>&) {
  Device& cpu = cpu_device();
  std::printf("%s; computes in %s; %d threads\n", cpu.description().c_str(),
              std::string(dtype_name(cpu.compute_dtype())).c_str(), ThreadPool::global().size());
  std::printf("cuda backend: %s; %d device(s)\n", cuda_backend_compiled() ? "built" : "not built",
              cuda_device_count());
  for (int i = 0; i < cuda_device_count(); ++i)
    std::printf("%s\n", device_for({DeviceType::Cuda, i}).description().c_str());
  return 0;
}

}  // namespace darkroom::cli
