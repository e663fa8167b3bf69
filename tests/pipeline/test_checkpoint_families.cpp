// Family detection of SDXL, the SDXL refiner and SD 2.x (suite CheckpointFamilies), on small
// files written here: the full SDXL name list of a real checkpoint (data/reference/), and
// the parts that tell the refiner and SD 2.x apart, with the shapes that detection reads
// (cross-attention key projections, label_emb) kept real.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/clip_vae_fixtures.h"
#include "pipeline/checkpoint.h"

namespace darkroom::pipeline {
namespace {

using Named = std::vector<std::pair<std::string, Tensor>>;

SafetensorsFile write_and_open(const std::string& name, const Named& tensors,
                               const std::map<std::string, std::string>& meta = {}) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("darkroom_families_" + std::to_string(::getpid()) + "_" + name))
                               .string();
  write_safetensors(path, tensors, meta);
  SafetensorsFile f = SafetensorsFile::open(path);
  std::filesystem::remove(path);
  return f;
}

Tensor small(const Shape& s) {
  return Tensor::zeros(s, DType::F16);
}

bool keeps_shape(const std::string& name) {
  return name.find("attn2.to_k.weight") != std::string::npos ||
         name.find("label_emb.0.0.weight") != std::string::npos;
}

// Every name of a real SDXL 1.0 base checkpoint.
Named sdxl_like() {
  Named t;
  for (const auto& [name, shape] : ::darkroom::test::reference_shapes("sdxl-sgm-tensors.tsv"))
    t.emplace_back(name, keeps_shape(name) ? small(shape) : small({1}));
  return t;
}

// The parts that identify a family: a UNet with the family's context (and label_emb), the
// text encoders' marker tensors, the VAE decoder.
Named parts(int64_t context, int64_t adm, const std::vector<std::string>& text) {
  Named t;
  t.emplace_back("model.diffusion_model.input_blocks.0.0.weight", small({1}));
  t.emplace_back("model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight",
                 small({640, context}));
  if (adm > 0) t.emplace_back("model.diffusion_model.label_emb.0.0.weight", small({1280, adm}));
  for (const std::string& n : text) t.emplace_back(n, small({1}));
  t.emplace_back("first_stage_model.decoder.conv_in.weight", small({1}));
  return t;
}

std::string error_of(const SafetensorsFile& f) {
  try {
    detect_family(f);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CheckpointFamilies, DetectsSdxlFromTheReferenceNames) {
  const SafetensorsFile f = write_and_open("sdxl.safetensors", sdxl_like());
  const CheckpointFacts facts = inspect_checkpoint(f);
  EXPECT_EQ(facts.context_dim, 2048);
  EXPECT_EQ(facts.adm_in_channels, 2816);
  EXPECT_TRUE(facts.has_sdxl_clip_l && facts.has_sdxl_clip_g && facts.has_vae);
  EXPECT_FALSE(facts.has_refiner_clip_g || facts.has_sd2_clip);
  EXPECT_EQ(detect_family(f), ModelFamily::Sdxl);
}

TEST(CheckpointFamilies, DetectsTheRefiner) {
  const SafetensorsFile f = write_and_open(
      "refiner.safetensors", parts(1280, 2560, {"conditioner.embedders.0.model.ln_final.weight"}));
  EXPECT_EQ(detect_family(f), ModelFamily::SdxlRefiner);
}

TEST(CheckpointFamilies, DetectsSd2) {
  const SafetensorsFile f =
      write_and_open("sd2.safetensors", parts(1024, 0, {"cond_stage_model.model.ln_final.weight"}));
  EXPECT_EQ(detect_family(f), ModelFamily::Sd2);
}

// A real file's widths must be its family's: a refiner layout with SDXL's context is
// nothing known, and the message lists what was found.
TEST(CheckpointFamilies, WrongWidthsAreRefusedWithTheFacts) {
  const std::string msg = error_of(write_and_open(
      "odd.safetensors", parts(2048, 2560, {"conditioner.embedders.0.model.ln_final.weight"})));
  EXPECT_NE(msg.find("[checkpoint]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("context width 2048"), std::string::npos) << msg;
  EXPECT_NE(msg.find("adm width 2560"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bigG as embedder 0 yes"), std::string::npos) << msg;
}

// Tiny test files declare their family; the widths are then not checked, the parts are.
TEST(CheckpointFamilies, DeclaredFamiliesMustMatchTheParts) {
  const Named sd2 = parts(32, 0, {"cond_stage_model.model.ln_final.weight"});
  EXPECT_EQ(
      detect_family(write_and_open("tiny_sd2.safetensors", sd2, {{"darkroom.family", "sd2"}})),
      ModelFamily::Sd2);
  const std::string msg =
      error_of(write_and_open("tiny_wrong.safetensors", sd2, {{"darkroom.family", "sdxl"}}));
  EXPECT_NE(msg.find("darkroom.family = 'sdxl'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SD 2.x"), std::string::npos) << msg;
}

TEST(CheckpointFamilies, SdxlWithoutItsBigGIsRefused) {
  Named t;
  for (auto& [name, tensor] : sdxl_like())
    if (name.rfind("conditioner.embedders.1.", 0) != 0) t.emplace_back(name, tensor);
  const std::string msg = error_of(write_and_open("nog.safetensors", t));
  EXPECT_NE(msg.find("looks like SDXL"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bigG as embedder 1 no"), std::string::npos) << msg;
}

}  // namespace
}  // namespace darkroom::pipeline
