// The tiny SDXL / SDXL refiner / SD 2.x checkpoints of tools/fixtures/sdxl_pipeline.py
// (data/pipeline/families/), completed into loadable single-file checkpoints: the files
// lack their 49408-row token tables (torch.randn after torch.manual_seed(seed), the seeds
// in the metadata as darkroom.test.token_table.{l,g}), redrawn here with darkroom's
// torch.randn reproduction, and the VAE, taken from data/models/sd15_tiny/clip_vae.safetensors.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "pipeline/checkpoint.h"
#include "sampling/torch_rng.h"

namespace darkroom::pipeline::test {

inline std::string family_fixture(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/pipeline/families/" + file;
}

// Writes `name` ("sdxl.safetensors", ...) completed to `out_path`.
inline void write_family_checkpoint(const std::string& name, const std::string& out_path) {
  constexpr int64_t kVocab = 49408;
  const SafetensorsFile f = SafetensorsFile::open(family_fixture(name));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorInfo& t : f.tensors()) tensors.emplace_back(t.name, f.tensor(t.name));
  const std::map<std::string, std::string>& meta = f.metadata();
  const std::string family = meta.at("darkroom.family");
  auto table = [&](const std::string& seed_key, const std::string& width_of,
                   const std::string& table_name) {
    const int64_t width = f.find(width_of)->shape[1];
    sampling::TorchGenerator gen(std::stoull(meta.at(seed_key)));
    tensors.emplace_back(table_name, gen.randn({kVocab, width}));
  };
  if (meta.contains("darkroom.test.token_table.l"))
    table("darkroom.test.token_table.l",
          std::string(kSdxlClipLPrefix) + "embeddings.position_embedding.weight",
          std::string(kSdxlClipLPrefix) + "embeddings.token_embedding.weight");
  const std::string g = family == "sdxl"           ? kSdxlClipGPrefix
                        : family == "sdxl_refiner" ? kSdxlRefinerClipGPrefix
                                                   : kSd2ClipPrefix;
  table("darkroom.test.token_table.g", g + "positional_embedding", g + "token_embedding.weight");
  const SafetensorsFile vae = SafetensorsFile::open(std::string(DARKROOM_TEST_DATA) +
                                                    "/models/sd15_tiny/clip_vae.safetensors");
  for (const TensorInfo& t : vae.tensors())
    if (t.name.rfind(kSd15VaePrefix, 0) == 0) tensors.emplace_back(t.name, vae.tensor(t.name));
  write_safetensors(out_path, tensors, meta);
}

}  // namespace darkroom::pipeline::test
