// What load_checkpoint (single files) and load_diffusers_folder share once the tensors are
// under ldm / sgm names: the checks that the parts fit, the UNet and VAE built, and the
// family's latent format. Internal to src/pipeline/.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/unet.h"
#include "models/vae.h"
#include "models/weights.h"
#include "pipeline/checkpoint_loader.h"

namespace darkroom::pipeline {

// Builds a network from `w` after w.remember(), and records how (`source`) so LoRAs can
// rebuild it later sharing its tensors (lora_apply.h). `checkpoint_prefix`: the names'
// prefix in a single-file checkpoint; `renamed`: NetworkSource::renamed.
template <class Net>
std::shared_ptr<const Net> build_with_source(
    const Weights& w, std::string checkpoint_prefix,
    std::function<std::shared_ptr<const Net>(const Weights&)> build,
    std::shared_ptr<const NetworkSource<Net>>& source,
    std::map<std::string, std::vector<std::string>> renamed = {}) {
  w.remember();
  source = std::make_shared<const NetworkSource<Net>>(
      NetworkSource<Net>{w, std::move(checkpoint_prefix), std::move(build), std::move(renamed)});
  return source->build(w);
}

// On a CUDA device, a UNetRunner (graphs on) for model.unet; none on the CPU.
void attach_runner(ModelHandle& model);

// The weights' size in `dtype`, for the model cache's budget.
uint64_t weights_bytes(const Weights& w, DType dtype);

// With out.clip already loaded: checks the text width against the UNet's context (and SDXL's
// adm width), loads the UNet (`uw` at the "model.diffusion_model." level; a UNetRunner on
// CUDA) and the VAE (`vw` at the "first_stage_model." level), sets the family, source and
// latent scale / format; adds the weights' bytes to `bytes`. The sampling settings are the
// caller's.
void assemble_checkpoint(LoadedCheckpoint& out, ModelFamily family, const Weights& uw,
                         const UNetConfig& uc, const Weights& vw, const VaeConfig& vc,
                         const std::string& source, DeviceId device, DType dtype, uint64_t& bytes);

}  // namespace darkroom::pipeline
