// An SD 2.x diffusers folder through load_checkpoint (suite DiffusersFolderSd2): the tiny SD 2.x
// v-prediction model of tools/fixtures/sdxl_pipeline.py written by tools/fixtures/
// sd2_diffusers_folder.py as diffusers' conversion writes one (text_encoder = CLIPTextModel
// without the OpenCLIP tower's last layer, scheduler prediction_type v_prediction) runs
// sdxl_pipeline.py's golden "sd2_v_euler" (ComfyUI's SD 2.x: penultimate layer of the complete
// tower, final norm; V_PREDICTION) as the single-file checkpoint does in
// test_golden_families.cpp, at its tolerance (1e-3 on latents and images, 1e-4 on the context).
//
// The fixture lacks the token table and vae/: completed into a temporary folder first.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/clip_encode.h"
#include "pipeline/diffusers_folder.h"
#include "pipeline/diffusers_folder_fixture.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/ksampler.h"
#include "test_util.h"

namespace darkroom::pipeline {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<const text::ClipTokenizer> shared_tokenizer() {
  static const auto t = std::make_shared<const text::ClipTokenizer>(
      text::ClipTokenizer::load(std::string(DARKROOM_CLIP_DATA) + "/sd1_tokenizer",
                                std::string(DARKROOM_CLIP_DATA) + "/bpe_simple_vocab_16e6.txt.gz"));
  return t;
}

using darkroom::test::max_abs_diff;

class DiffusersFolderSd2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "darkroom-sd2-diffusers-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = new fs::path(tmpl);
    dir_ = new fs::path(*root_ / "sd2");
    fs::copy(test::family_fixture("sd2_diffusers"), *dir_, fs::copy_options::recursive);
    fs::copy(std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/diffusers/vae", *dir_ / "vae",
             fs::copy_options::recursive);
    test::complete_text_encoder(*dir_ / "text_encoder" / "model.safetensors");
    sd2_ = new LoadedCheckpoint(load_checkpoint(dir_->string(), shared_tokenizer(), DType::F32));
  }
  static void TearDownTestSuite() {
    delete sd2_;
    std::error_code ec;
    fs::remove_all(*root_, ec);
    delete dir_;
    delete root_;
  }

  static fs::path *root_, *dir_;
  static LoadedCheckpoint* sd2_;
};

fs::path* DiffusersFolderSd2::root_ = nullptr;
fs::path* DiffusersFolderSd2::dir_ = nullptr;
LoadedCheckpoint* DiffusersFolderSd2::sd2_ = nullptr;

TEST_F(DiffusersFolderSd2, LoadsAsSd2WithVPrediction) {
  EXPECT_EQ(diffusers_folder_family(dir_->string()), ModelFamily::Sd2);
  const LoadedCheckpoint& ck = *sd2_;
  EXPECT_EQ(ck.model.family, ModelFamily::Sd2);
  EXPECT_EQ(ck.clip.family, ModelFamily::Sd2);
  EXPECT_FALSE(ck.clip.encoder);
  ASSERT_TRUE(ck.clip.open_clip);
  EXPECT_EQ(ck.clip.open_clip->config().layers, 1);  // of the tower's 2
  EXPECT_EQ(ck.clip.open_clip->config().activation, ClipActivation::Gelu);
  EXPECT_EQ(ck.clip.open_clip_dropped_layers, 1);
  EXPECT_EQ(ck.clip.layers(), 2);  // CLIPSetLastLayer counts the complete tower's
  EXPECT_EQ(ck.clip.clip_skip, 2);
  EXPECT_EQ(ck.model.unet->config().context_dim, 32);
  EXPECT_EQ(ck.model.unet->config().head_dim, 8);
  EXPECT_FLOAT_EQ(ck.model.latent_scale, 0.18215f);
  EXPECT_EQ(ck.model.sampling.prediction, sampling::Prediction::V);
}

TEST_F(DiffusersFolderSd2, VPredictionEulerMatchesGolden) {
  const SafetensorsFile golden = SafetensorsFile::open(test::family_fixture("golden.safetensors"));
  const LoadedCheckpoint& ck = *sd2_;
  // sdxl_pipeline.py's RUNS["sd2_v_euler"].
  const CondEntry pos = encode_text(ck.clip, "a snowy mountain(, sunrise:1.1)");
  const CondEntry neg = encode_text(ck.clip, "");
  EXPECT_LE(max_abs_diff(pos.context, golden.tensor("sd2_v_euler.context")), 1e-4);
  EXPECT_FALSE(pos.pooled.defined());
  KSamplerParams p;
  p.sampler = "euler";
  p.scheduler = "normal";
  p.seed = 5;
  p.cfg = 7.0;
  p.steps = 10;
  Latent latent;
  latent.samples = Tensor::zeros({1, 16, 16, 4}, DType::F32);
  const Latent out = ksample(ck.model, {pos}, {neg}, latent, p);
  const Tensor image = ck.vae.vae->decode(out.samples);
  const double ez = max_abs_diff(out.samples, golden.tensor("sd2_v_euler.z"));
  const double ei = max_abs_diff(image, golden.tensor("sd2_v_euler.image"));
  std::cout << "sd2_v_euler (diffusers folder): max |dz| " << ez << ", max |dimage| " << ei << "\n";
  EXPECT_LE(ez, 1e-3);
  EXPECT_LE(ei, 1e-3);
}

// CLIPSetLastLayer -1 is the tower's last layer, which the folder does not hold.
TEST_F(DiffusersFolderSd2, LastLayerThatTheFolderLacksIsRefused) {
  ClipHandle clip = sd2_->clip;
  clip.clip_skip = 1;
  try {
    encode_text(clip, "a snowy mountain");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CLIPSetLastLayer -1 needs a text encoder layer"),
              std::string::npos)
        << e.what();
  }
  // -2 is the default: the folder's last layer, what the golden takes.
  clip.clip_skip = 2;
  EXPECT_NO_THROW(encode_text(clip, "a snowy mountain"));
}

// The layer count: a tower held without its last layer keeps ComfyUI's numbering. The
// single-file SD 2.x tower (2 layers) posing as a 3-layer tower's first two: CLIPSetLastLayer
// -3 is then its layer 1, the golden's context (ComfyUI's penultimate of 2); -2 its last.
TEST_F(DiffusersFolderSd2, LayersCountFromTheCompleteTower) {
  const SafetensorsFile golden = SafetensorsFile::open(test::family_fixture("golden.safetensors"));
  const std::string path = (*root_ / "sd2.safetensors").string();
  test::write_family_checkpoint("sd2.safetensors", path);
  ClipHandle clip = load_checkpoint(path, shared_tokenizer(), DType::F32).clip;
  ASSERT_EQ(clip.open_clip->config().layers, 2);
  clip.open_clip_dropped_layers = 1;
  EXPECT_EQ(clip.layers(), 3);
  const std::string prompt = "a snowy mountain(, sunrise:1.1)";
  clip.clip_skip = 3;
  EXPECT_LE(max_abs_diff(encode_text(clip, prompt).context, golden.tensor("sd2_v_euler.context")),
            1e-4);
  clip.clip_skip = 2;
  EXPECT_GT(max_abs_diff(encode_text(clip, prompt).context, golden.tensor("sd2_v_euler.context")),
            1e-2);
}

}  // namespace
}  // namespace darkroom::pipeline
