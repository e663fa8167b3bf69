// The tiny SDXL / SDXL refiner / SD 2.x checkpoints of tools/fixtures/sdxl_pipeline.py
// (data/pipeline/families/), completed into loadable single-file checkpoints: the files
// lack their 49408-row token tables (torch.randn after torch.manual_seed(seed), the seeds
// in the metadata as darkroom.test.token_table.{l,g}), redrawn here with darkroom's
// torch.randn reproduction, and the VAE, taken from data/models/sd15_tiny/clip_vae.safetensors.
// The same for the torch.save copies (*.ckpt), written back as torch.save.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "io/torch_checkpoint.h"
#include "pipeline/checkpoint.h"
#include "pipeline/torch_save_writer.h"
#include "sampling/torch_rng.h"

namespace darkroom::pipeline::test {

inline std::string family_fixture(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/pipeline/families/" + file;
}

// Appends what the fixture files lack to `tensors` (a family file's own, in checkpoint
// names): the token tables, drawn from the seeds in `meta`, and the VAE.
inline void add_token_tables_and_vae(std::vector<std::pair<std::string, Tensor>>& tensors,
                                     const std::map<std::string, std::string>& meta) {
  constexpr int64_t kVocab = 49408;
  const std::string family = meta.at("darkroom.family");
  auto table = [&](const std::string& seed_key, const std::string& width_of,
                   const std::string& table_name) {
    int64_t width = 0;
    for (const auto& [name, t] : tensors)
      if (name == width_of) width = t.dim(1);
    DR_CHECK(width > 0, "test", "no ", width_of);
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
}

// Writes `name` ("sdxl.safetensors", ...) completed to `out_path`.
inline void write_family_checkpoint(const std::string& name, const std::string& out_path) {
  const SafetensorsFile f = SafetensorsFile::open(family_fixture(name));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorInfo& t : f.tensors()) tensors.emplace_back(t.name, f.tensor(t.name));
  add_token_tables_and_vae(tensors, f.metadata());
  write_safetensors(out_path, tensors, f.metadata());
}

// The torch.save copy `name` ("sdxl.ckpt", "sd2.ckpt": tools/fixtures/family_ckpt.py, its
// metadata as string entries of the state dict) completed the same way and written again in
// torch.save's format (torch_save_writer.h) to `out_path`.
inline void write_family_ckpt(const std::string& name, const std::string& out_path) {
  const std::string sd = "state_dict.";
  const TorchCheckpoint f = TorchCheckpoint::open(family_fixture(name));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const CkptTensorInfo& t : f.tensors()) {
    DR_CHECK(t.name.rfind(sd, 0) == 0, "test", name, ": ", t.name, " outside state_dict");
    tensors.emplace_back(t.name.substr(sd.size()), f.tensor(t.name));
  }
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : f.metadata())
    if (k.rfind(sd, 0) == 0) meta[k.substr(sd.size())] = v;
  add_token_tables_and_vae(tensors, meta);
  write_torch_save(out_path, tensors, meta);
}

}  // namespace darkroom::pipeline::test
