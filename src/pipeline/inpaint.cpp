// PLACEHOLDER (lead, 2026-11-26): replaced by the inpainting implementation this session.
#include "pipeline/inpaint.h"

namespace darkroom::pipeline {

int concat_channels(const ModelHandle& model, int64_t latent_channels) {
  return static_cast<int>(model.unet->config().in_channels - latent_channels);
}

Tensor inpaint_concat(const ModelHandle&, const CondEntry&, const Tensor&,
                      const std::optional<Tensor>&) {
  return {};
}

}  // namespace darkroom::pipeline
