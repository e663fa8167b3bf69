// PLACEHOLDER (lead, 2026-11-26): replaced by the ControlNet implementation this session.
#include "models/controlnet.h"

namespace darkroom {

ControlNet ControlNet::load(const Weights&) {
  DR_CHECK(false, "controlnet", "ControlNet loading is not implemented yet");
  return {};
}

ControlResiduals ControlNet::forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                     const Tensor&) const {
  DR_CHECK(false, "controlnet", "ControlNet is not implemented yet");
  return {};
}

}  // namespace darkroom
