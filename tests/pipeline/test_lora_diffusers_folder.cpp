// LoRAs on the OpenCLIP text encoders of diffusers folders (suite LoraDiffusersFolder): the
// tiny SDXL folder's text_encoder_2 (bigG, transformers' CLIPTextModelWithProjection names) and
// the tiny SD 2.x folder's text_encoder (ViT-H as CLIPTextModel, one layer of the tower's two)
// take the LoRAs of tools/fixtures/lora_folder_te.py (kohya lora_te2_* / lora_te_*, PEFT
// text_encoder_2.*) as the equivalent single-file checkpoints (sdxl.safetensors,
// sd2.safetensors: the same weights in OpenCLIP's names) do. Oracle: the transformers model
// with the LoRA merged by PEFT (folder_te_ref.safetensors), every hidden state and bigG's
// pooled output; and the folder's output equals the single file's.
//
// The fixtures lack their token tables and VAE: completed into a temporary folder first.
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
  static const SafetensorsFile f = SafetensorsFile::open(lora_file("folder_te_ref.safetensors"));
  return f;
}

class LoraDiffusersFolder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "darkroom-lora-folder-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = new fs::path(tmpl);
    test::write_sdxl_diffusers_folder(*root_ / "sdxl");
    const fs::path sd2 = *root_ / "sd2";
    fs::copy(test::family_fixture("sd2_diffusers"), sd2, fs::copy_options::recursive);
    fs::copy(std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/diffusers/vae", sd2 / "vae",
             fs::copy_options::recursive);
    test::complete_text_encoder(sd2 / "text_encoder" / "model.safetensors");
    test::write_family_checkpoint("sdxl.safetensors", (*root_ / "sdxl.safetensors").string());
    test::write_family_checkpoint("sd2.safetensors", (*root_ / "sd2.safetensors").string());
    auto load = [](const fs::path& p) {
      return new ClipHandle(load_checkpoint(p.string(), test::sd1_tokenizer(), DType::F32).clip);
    };
    sdxl_folder_ = load(*root_ / "sdxl");
    sdxl_file_ = load(*root_ / "sdxl.safetensors");
    sd2_folder_ = load(sd2);
    sd2_file_ = load(*root_ / "sd2.safetensors");
  }
  static void TearDownTestSuite() {
    for (ClipHandle* c : {sdxl_folder_, sdxl_file_, sd2_folder_, sd2_file_}) delete c;
    std::error_code ec;
    fs::remove_all(*root_, ec);
    delete root_;
  }

  static fs::path* root_;
  static ClipHandle *sdxl_folder_, *sdxl_file_, *sd2_folder_, *sd2_file_;
};

fs::path* LoraDiffusersFolder::root_ = nullptr;
ClipHandle* LoraDiffusersFolder::sdxl_folder_ = nullptr;
ClipHandle* LoraDiffusersFolder::sdxl_file_ = nullptr;
ClipHandle* LoraDiffusersFolder::sd2_folder_ = nullptr;
ClipHandle* LoraDiffusersFolder::sd2_file_ = nullptr;

// bigG: 2 layers × (q, k, v, out_proj, fc1, fc2) at strength `strength`, on the folder and on
// the single file, against PEFT.
void check_sdxl(const ClipHandle& folder, const ClipHandle& file, const std::string& lora,
                const std::string& run, float strength) {
  const test::PatchedClip f = with_lora(folder, lora, strength);
  EXPECT_TRUE(f.unmatched.empty())
      << f.unmatched.size() << " unmatched, first " << (f.unmatched.empty() ? "" : f.unmatched[0]);
  EXPECT_EQ(f.patches, 12u);
  const test::PatchedClip s = with_lora(file, lora, strength);
  EXPECT_TRUE(s.unmatched.empty());
  EXPECT_EQ(s.patches, 12u);
  // The LoRA changes the output well beyond the tolerance.
  EXPECT_GT(hidden_error(reference(), *folder.open_clip, run), 1e-2);
  const double hidden = hidden_error(reference(), *f.clip.open_clip, run);
  const double pooled = pooled_error(reference(), *f.clip.open_clip, run);
  const double same = tower_difference(reference(), *f.clip.open_clip, *s.clip.open_clip);
  std::cout << run << ": folder vs PEFT hidden " << hidden << ", pooled " << pooled
            << "; single file vs PEFT hidden " << hidden_error(reference(), *s.clip.open_clip, run)
            << "; folder vs single file " << same << "\n";
  EXPECT_LT(hidden, 1e-4);
  EXPECT_LT(pooled, 1e-4);
  EXPECT_LT(hidden_error(reference(), *s.clip.open_clip, run), 1e-4);
  EXPECT_LT(same, 1e-5);
  EXPECT_EQ(f.clip.lora_bytes, s.clip.lora_bytes);
  // CLIP-L takes none of these keys: unchanged.
  EXPECT_EQ(tower_difference(reference(), *f.clip.encoder, *folder.encoder), 0.0);
}

TEST_F(LoraDiffusersFolder, SdxlKohyaTe2MatchesPeft) {
  check_sdxl(*sdxl_folder_, *sdxl_file_, "folder_te_sdxl_kohya.safetensors", "sdxl_kohya", 0.7f);
}

TEST_F(LoraDiffusersFolder, SdxlPeftTe2MatchesPeft) {
  check_sdxl(*sdxl_folder_, *sdxl_file_, "folder_te_sdxl_peft.safetensors", "sdxl_peft", -1.3f);
}

// ViT-H: the LoRA names both layers of the complete tower; the folder lacks layer 1, so its 6
// modules (down, up, alpha each) stay unmatched there and layer 0's 6 patch.
TEST_F(LoraDiffusersFolder, Sd2KohyaTeMatchesPeft) {
  const std::string lora = "folder_te_sd2_kohya.safetensors";
  const test::PatchedClip f = with_lora(*sd2_folder_, lora, 0.9f);
  EXPECT_EQ(f.patches, 6u);
  ASSERT_EQ(f.unmatched.size(), 18u);
  for (const std::string& k : f.unmatched)
    EXPECT_EQ(k.rfind("lora_te_text_model_encoder_layers_1_", 0), 0u) << k;
  const test::PatchedClip s = with_lora(*sd2_file_, lora, 0.9f);
  EXPECT_TRUE(s.unmatched.empty());
  EXPECT_EQ(s.patches, 12u);
  EXPECT_GT(hidden_error(reference(), *sd2_folder_->open_clip, "sd2_kohya"), 1e-2);
  const double hidden = hidden_error(reference(), *f.clip.open_clip, "sd2_kohya");
  const double single = hidden_error(reference(), *s.clip.open_clip, "sd2_kohya");
  const double same = tower_difference(reference(), *f.clip.open_clip, *s.clip.open_clip);
  std::cout << "sd2_kohya: folder vs PEFT hidden " << hidden << "; single file vs PEFT hidden "
            << single << "; folder vs single file " << same << "\n";
  EXPECT_LT(hidden, 1e-4);
  EXPECT_LT(single, 1e-4);
  EXPECT_LT(same, 1e-5);
}

}  // namespace
}  // namespace darkroom::pipeline
