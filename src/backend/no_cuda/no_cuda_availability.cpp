#include "backend/cuda_availability.h"

namespace darkroom {

std::string cuda_unavailable_reason() {
  return "this build has no CUDA backend";
}

}  // namespace darkroom
