// Built when no CUDA toolkit was found: there are no CUDA devices, and asking for one
// gives a clear error from device_for(). Keeps every configuration linking.
#include "backend/device.h"

namespace darkroom {

bool cuda_backend_compiled() {
  return false;
}
void init_cuda_backend() {}

}  // namespace darkroom
