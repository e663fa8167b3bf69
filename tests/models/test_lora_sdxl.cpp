// An SDXL UNet LoRA (kohya's sgm module names and diffusers/PEFT names) against diffusers:
// the fused weights of unet.fuse_lora and the fused UNet's output, on the tiny SDXL single
// file (data/pipeline/families/sdxl.safetensors); fixtures from tools/fixtures/lora_sdxl.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/lora.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/lora_apply.h"
#include "test_util.h"

namespace darkroom {
namespace {

namespace fs = std::filesystem;
using darkroom::test::max_abs_diff;

constexpr float kStrength = 0.75f;  // lora_sdxl.py's STRENGTH
constexpr size_t kModules = 32;     // lora_sdxl.py's MODULES

std::string lora_data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/lora/" + file;
}

// For RecordProperty: the measured error in the XML report (--gtest_output=xml).
std::string sci(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

const SafetensorsFile& reference() {
  static const SafetensorsFile f = SafetensorsFile::open(lora_data("lora_sdxl_ref.safetensors"));
  return f;
}

// The tiny SDXL single file as committed (sgm names; no token tables, which a UNet LoRA
// does not need).
const SafetensorsFile& sdxl_file() {
  static const SafetensorsFile f =
      SafetensorsFile::open(pipeline::test::family_fixture("sdxl.safetensors"));
  return f;
}

// Merges `file` at kStrength into the single file's tensors and compares every patched one
// with diffusers' fused one ("fused.<name>").
void expect_matches_fused(const std::string& file) {
  const LoraFile lora = LoraFile::open(lora_data(file), base_shapes(sdxl_file()));
  EXPECT_EQ(lora.patches().size(), kModules);
  EXPECT_TRUE(lora.unmatched().empty())
      << lora.unmatched().size() << " unmatched, first " << lora.unmatched().front();
  const auto merged = merged_weights(sdxl_file(), {{&lora, kStrength}}, DType::F32);
  const std::string tag = "fused.";
  size_t refs = 0;
  double worst = 0;
  for (const TensorInfo& t : reference().tensors())
    if (t.name.rfind(tag, 0) == 0) {
      ++refs;
      const std::string name = t.name.substr(tag.size());
      ASSERT_TRUE(merged.count(name)) << name << " was not patched";
      const double e = max_abs_diff(merged.at(name), reference().tensor(t.name));
      worst = std::max(worst, e);
      EXPECT_LE(e, 1e-5) << name;
      // The LoRA moves the tensor well beyond the tolerance.
      EXPECT_GT(max_abs_diff(sdxl_file().tensor(name), reference().tensor(t.name)), 1e-3) << name;
    }
  EXPECT_EQ(refs, kModules);
  EXPECT_EQ(merged.size(), refs);  // nothing else patched
  ::testing::Test::RecordProperty("max_abs_err", sci(worst));
}

TEST(LoraSdxl, KohyaSgmNamesMatchDiffusersFusedWeights) {
  expect_matches_fused("lora_sdxl_kohya.safetensors");
}

TEST(LoraSdxl, PeftFileMatchesDiffusersFusedWeights) {
  expect_matches_fused("lora_sdxl_peft.safetensors");
}

// The completed checkpoint loaded as CheckpointLoaderSimple does, the LoRA merged into the
// MODEL (pipeline::with_loras), the UNet run on the reference's x, t, context, y.
class LoraSdxlModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string((fs::temp_directory_path() /
                             ("darkroom-lora-sdxl-" + std::to_string(getpid()) + ".safetensors"))
                                .string());
    pipeline::test::write_family_checkpoint("sdxl.safetensors", *path_);
    ck_ = new pipeline::LoadedCheckpoint(pipeline::load_checkpoint(*path_, nullptr, DType::F32));
  }
  static void TearDownTestSuite() {
    delete ck_;
    std::error_code ec;
    fs::remove(*path_, ec);
    delete path_;
  }

  // UNet output [2, 16, 16, 4] NHWC, as floats.
  static std::vector<float> step(const pipeline::ModelHandle& m) {
    const SafetensorsFile& r = reference();
    const Tensor x = r.tensor("x");  // [2, 4, 16, 16] NCHW
    const Tensor xh =
        Tensor::from_floats(test::nchw_to_nhwc(x.to_floats(), x.shape()), {2, 16, 16, 4});
    return m.unet->forward(xh, r.tensor("t"), r.tensor("context"), r.tensor("y")).to_floats();
  }
  static std::vector<float> want(const std::string& key) {
    const Tensor t = reference().tensor(key);
    return test::nchw_to_nhwc(t.to_floats(), t.shape());
  }
  static void expect_lora_output(const std::string& file) {
    const auto lora = std::make_shared<const LoraFile>(
        LoraFile::open(lora_data(file), pipeline::lora_base_shapes(&ck_->model, nullptr)));
    EXPECT_EQ(lora->patches().size(), kModules);
    EXPECT_TRUE(lora->unmatched().empty());
    const pipeline::ModelHandle m = pipeline::with_loras(ck_->model, {{lora, kStrength}});
    ASSERT_TRUE(m.lora_weights);
    EXPECT_EQ(m.lora_weights->size(), kModules);
    const auto e = test::error_stats(step(m), want("lora.out"));
    EXPECT_LE(e.max_abs, 1e-4) << "rms " << e.rms;
    RecordProperty("max_abs_err", sci(e.max_abs));
    // The LoRA matters: diffusers' base output is far from the LoRA'd one.
    EXPECT_GT(test::error_stats(want("base.out"), want("lora.out")).max_abs, 1e-2);
  }

  static std::string* path_;
  static pipeline::LoadedCheckpoint* ck_;
};

std::string* LoraSdxlModel::path_ = nullptr;
pipeline::LoadedCheckpoint* LoraSdxlModel::ck_ = nullptr;

TEST_F(LoraSdxlModel, BaseUnetMatchesDiffusers) {
  ASSERT_EQ(ck_->model.family, pipeline::ModelFamily::Sdxl);
  const auto e = test::error_stats(step(ck_->model), want("base.out"));
  EXPECT_LE(e.max_abs, 1e-4) << "rms " << e.rms;
  RecordProperty("max_abs_err", sci(e.max_abs));
}

TEST_F(LoraSdxlModel, KohyaLoraOnTheModelMatchesDiffusersFusedUnet) {
  expect_lora_output("lora_sdxl_kohya.safetensors");
}

TEST_F(LoraSdxlModel, PeftLoraOnTheModelMatchesDiffusersFusedUnet) {
  expect_lora_output("lora_sdxl_peft.safetensors");
}

}  // namespace
}  // namespace darkroom
