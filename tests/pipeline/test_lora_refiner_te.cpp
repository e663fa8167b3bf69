// Text-encoder LoRAs on the SDXL refiner (suite LoraRefinerTe): its bigG tower is its only one,
// and ComfyUI's model_lora_keys_clip names a clip_g without a clip_l as the first text encoder
// ("lora_te_…", "text_encoder.…", Stable Cascade's "lora_prior_te_…"), not as SDXL's second
// ("lora_te2_…", "text_encoder_2.…"). The LoRAs of tools/fixtures/lora_refiner_te.py on the
// tiny refiner single file (sdxl_refiner.safetensors, conditioner.embedders.0.model.*) and on
// a refiner diffusers folder (data/lora/refiner_diffusers + sdxl_diffusers/text_encoder_2: the
// same bigG weights in transformers' names). Oracle: the transformers model with the LoRA
// merged by PEFT (refiner_te_ref.safetensors), every hidden state and the pooled output.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/lora.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/diffusers_folder_fixture.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/lora_apply.h"
#include "pipeline/lora_te_fixtures.h"

namespace darkroom::pipeline {
namespace {

using test::hidden_error;
using test::lora_file;
using test::pooled_error;
using test::tower_difference;
using test::with_lora;

namespace fs = std::filesystem;

const SafetensorsFile& reference() {
  static const SafetensorsFile f = SafetensorsFile::open(lora_file("refiner_te_ref.safetensors"));
  return f;
}

class LoraRefinerTe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "darkroom-lora-refiner-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = new fs::path(tmpl);
    const fs::path folder = *root_ / "refiner";
    fs::copy(lora_file("refiner_diffusers"), folder, fs::copy_options::recursive);
    fs::copy(test::family_fixture("sdxl_diffusers") + "/text_encoder_2", folder / "text_encoder_2",
             fs::copy_options::recursive);
    fs::copy(std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/diffusers/vae", folder / "vae",
             fs::copy_options::recursive);
    test::complete_text_encoder(folder / "text_encoder_2" / "model.safetensors");
    test::write_family_checkpoint("sdxl_refiner.safetensors",
                                  (*root_ / "refiner.safetensors").string());
    auto load = [](const fs::path& p) {
      const LoadedCheckpoint ck = load_checkpoint(p.string(), test::sd1_tokenizer(), DType::F32);
      EXPECT_EQ(ck.clip.family, ModelFamily::SdxlRefiner) << p;
      return new ClipHandle(ck.clip);
    };
    folder_ = load(folder);
    file_ = load(*root_ / "refiner.safetensors");
  }
  static void TearDownTestSuite() {
    delete folder_;
    delete file_;
    std::error_code ec;
    fs::remove_all(*root_, ec);
    delete root_;
  }

  static fs::path* root_;
  static ClipHandle *folder_, *file_;
};

fs::path* LoraRefinerTe::root_ = nullptr;
ClipHandle* LoraRefinerTe::folder_ = nullptr;
ClipHandle* LoraRefinerTe::file_ = nullptr;

// 2 layers × (q, k, v, out_proj, fc1, fc2) on the folder and on the single file, vs PEFT.
void check(const ClipHandle& folder, const ClipHandle& file, const std::string& lora,
           const std::string& run, float strength) {
  ASSERT_TRUE(folder.open_clip && file.open_clip);
  EXPECT_FALSE(folder.encoder || file.encoder);
  const test::PatchedClip f = with_lora(folder, lora, strength);
  EXPECT_TRUE(f.unmatched.empty())
      << f.unmatched.size() << " unmatched, first " << (f.unmatched.empty() ? "" : f.unmatched[0]);
  EXPECT_EQ(f.patches, 12u);
  const test::PatchedClip s = with_lora(file, lora, strength);
  EXPECT_TRUE(s.unmatched.empty());
  EXPECT_EQ(s.patches, 12u);
  // The LoRA moves the output well beyond the tolerance.
  EXPECT_GT(hidden_error(reference(), *file.open_clip, run), 1e-2);
  const double hidden = hidden_error(reference(), *f.clip.open_clip, run);
  const double pooled = pooled_error(reference(), *f.clip.open_clip, run);
  const double single = hidden_error(reference(), *s.clip.open_clip, run);
  const double single_pooled = pooled_error(reference(), *s.clip.open_clip, run);
  const double same = tower_difference(reference(), *f.clip.open_clip, *s.clip.open_clip);
  std::cout << run << ": folder vs PEFT hidden " << hidden << ", pooled " << pooled
            << "; single file vs PEFT hidden " << single << ", pooled " << single_pooled
            << "; folder vs single file " << same << "\n";
  EXPECT_LT(hidden, 1e-4);
  EXPECT_LT(pooled, 1e-4);
  EXPECT_LT(single, 1e-4);
  EXPECT_LT(single_pooled, 1e-4);
  EXPECT_LT(same, 1e-5);
  EXPECT_EQ(f.clip.lora_bytes, s.clip.lora_bytes);
}

TEST_F(LoraRefinerTe, KohyaLoraTeMatchesPeft) {
  check(*folder_, *file_, "refiner_te_kohya.safetensors", "refiner_kohya", 0.8f);
}

TEST_F(LoraRefinerTe, PeftTextEncoderMatchesPeft) {
  check(*folder_, *file_, "refiner_te_peft.safetensors", "refiner_peft", -1.1f);
}

// SDXL base's second-encoder names are not the refiner's (ComfyUI maps them only when clip_l is
// present): an SDXL te2 LoRA matches nothing here.
TEST_F(LoraRefinerTe, SdxlTe2NamesDoNotReachTheRefiner) {
  for (const ClipHandle* c : {folder_, file_}) {
    const test::PatchedClip p = with_lora(*c, "folder_te_sdxl_kohya.safetensors", 1.0f);
    EXPECT_EQ(p.patches, 0u);
    EXPECT_EQ(p.unmatched.size(), 36u);
  }
}

// Stable Cascade's prior names reach the same rows as lora_te_ (a key-map fact, ComfyUI's).
TEST_F(LoraRefinerTe, PriorTeNamesReachTheSameTargets) {
  const auto map = lora_key_map(lora_base_shapes(nullptr, folder_));
  const std::string g = "conditioner.embedders.0.model.transformer.resblocks.1.";
  for (const char* m : {"self_attn_k_proj", "self_attn_out_proj", "mlp_fc2"}) {
    const std::string tail = std::string("text_model_encoder_layers_1_") + m;
    const auto a = map.find("lora_te_" + tail), b = map.find("lora_prior_te_" + tail);
    ASSERT_NE(a, map.end()) << tail;
    ASSERT_NE(b, map.end()) << tail;
    EXPECT_EQ(a->second.name, b->second.name);
    EXPECT_EQ(a->second.row_begin, b->second.row_begin);
    EXPECT_EQ(a->second.row_end, b->second.row_end);
  }
  const auto k = map.at("lora_te_text_model_encoder_layers_1_self_attn_k_proj");
  EXPECT_EQ(k.name, g + "attn.in_proj_weight");
  EXPECT_EQ(k.row_begin, 48);
  EXPECT_EQ(k.row_end, 96);
  EXPECT_EQ(map.at("text_encoder.text_model.encoder.layers.1.mlp.fc1").name, g + "mlp.c_fc.weight");
  EXPECT_EQ(map.count("lora_te2_text_model_encoder_layers_1_mlp_fc1"), 0u);
}

}  // namespace
}  // namespace darkroom::pipeline
