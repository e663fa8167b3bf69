// Classifier-free guidance combine.
#include "sampling/cfg.h"

#include "sampling/tensor_math.h"

namespace darkroom::sampling {

Tensor cfg_combine(const Tensor& uncond, const Tensor& cond, float scale) {
  return map2(uncond, cond, [scale](float u, float c) { return u + (c - u) * scale; });
}

}  // namespace darkroom::sampling
