// The tiny SDXL diffusers folder of tools/fixtures/sdxl_diffusers_folders.py
// (data/pipeline/families/sdxl_diffusers/: the same weights as sdxl.safetensors) completed
// into a loadable folder: the text encoder files get their 49408-row token tables back
// (torch.randn after torch.manual_seed(seed), the seed in each file's metadata as
// darkroom.test.token_table), and vae/ is data/models/sd15_tiny/diffusers/vae (the VAE the
// golden runs decode with).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "pipeline/family_fixtures.h"
#include "sampling/torch_rng.h"

namespace darkroom::pipeline::test {

// Adds the redrawn token table to a text encoder file (names with or without "text_model.").
inline void complete_text_encoder(const std::filesystem::path& file) {
  const SafetensorsFile f = SafetensorsFile::open(file.string());
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorInfo& t : f.tensors()) tensors.emplace_back(t.name, f.tensor(t.name));
  const std::string prefix =
      f.find("text_model.embeddings.position_embedding.weight") ? "text_model." : "";
  const int64_t width = f.find(prefix + "embeddings.position_embedding.weight")->shape[1];
  sampling::TorchGenerator gen(std::stoull(f.metadata().at("darkroom.test.token_table")));
  tensors.emplace_back(prefix + "embeddings.token_embedding.weight", gen.randn({49408, width}));
  const std::map<std::string, std::string> meta = f.metadata();
  write_safetensors(file.string() + ".tmp", tensors, meta);
  std::filesystem::rename(file.string() + ".tmp", file);
}

// Writes the completed folder to `dir` (which must not exist yet).
inline void write_sdxl_diffusers_folder(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir.parent_path());
  fs::copy(family_fixture("sdxl_diffusers"), dir, fs::copy_options::recursive);
  fs::copy(std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/diffusers/vae", dir / "vae",
           fs::copy_options::recursive);
  complete_text_encoder(dir / "text_encoder" / "model.safetensors");
  complete_text_encoder(dir / "text_encoder_2" / "model.safetensors");
}

}  // namespace darkroom::pipeline::test
