// tools/fixtures/pipeline_golden.py's models as one ldm-layout SD 1.5 checkpoint, for the
// workflow tests that compare a sampled run with that generator's goldens: the tiny UNet and
// VAE (data/models/sd15_tiny), the 32-wide CLIP of data/pipeline/clip32.safetensors and its
// token table torch.randn([49408, 32]) drawn with darkroom's torch.randn reproduction.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "sampling/torch_rng.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow::test {

inline constexpr uint64_t kTokenTableSeed = 20240611;  // pipeline_golden.py TOKEN_TABLE_SEED

inline void write_golden_checkpoint(const std::string& path) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  auto add = [&](const std::string& file, const std::string& prefix) {
    const SafetensorsFile f = SafetensorsFile::open(std::string(DARKROOM_TEST_DATA) + "/" + file);
    for (const TensorInfo& t : f.tensors())
      if (t.name.rfind(prefix, 0) == 0) tensors.emplace_back(t.name, f.tensor(t.name));
  };
  add("models/sd15_tiny/unet.safetensors", "model.diffusion_model.");
  add("models/sd15_tiny/clip_vae.safetensors", "first_stage_model.");
  add("pipeline/clip32.safetensors", "cond_stage_model.transformer.");
  sampling::TorchGenerator gen(kTokenTableSeed);
  tensors.emplace_back("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
                       gen.randn({kClipVocab, 32}));
  write_safetensors(path, tensors,
                    {{"darkroom.family", "sd15"},
                     {"darkroom.unet.groups", "4"},
                     {"darkroom.unet.num_heads", "4"},
                     {"darkroom.vae.groups", "8"},
                     {"darkroom.clip.heads", "2"}});
}

}  // namespace darkroom::workflow::test
