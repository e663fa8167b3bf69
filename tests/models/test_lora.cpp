// LoRA files against diffusers/PEFT (fused weights, UNet output) and against a torch
// transcription of ComfyUI's LoHa / LoKr / LoCon-Tucker formulas; fixtures from
// tools/fixtures/lora.py on the tiny SD 1.5 models of tools/fixtures/unet.py, clip_vae.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/lora.h"
#include "models/unet.h"
#include "models/weights.h"
#include "test_util.h"

namespace darkroom {
namespace {

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/" + file;
}
const std::string kUnetFile = data("models/sd15_tiny/unet.safetensors");
const std::string kClipFile = data("models/sd15_tiny/clip_vae.safetensors");

std::map<std::string, Shape> unet_and_clip_shapes() {
  auto s = base_shapes(SafetensorsFile::open(kUnetFile));
  s.merge(base_shapes(SafetensorsFile::open(kClipFile)));
  return s;
}

// Largest |a - b| over the tensor, both read as f32.
using darkroom::test::max_abs_diff;

// Merges `lora` at `strength` into both base files and compares every patched tensor
// with diffusers' fused one ("fused1." / "fused05." in sd15_ref.safetensors).
void expect_matches_fused(const LoraFile& lora, float strength, const std::string& tag) {
  const SafetensorsFile ref = SafetensorsFile::open(data("lora/sd15_ref.safetensors"));
  auto merged = merged_weights(SafetensorsFile::open(kUnetFile), {{&lora, strength}}, DType::F32);
  merged.merge(merged_weights(SafetensorsFile::open(kClipFile), {{&lora, strength}}, DType::F32));
  size_t refs = 0;
  for (const TensorInfo& t : ref.tensors())
    if (t.name.rfind(tag, 0) == 0) {
      ++refs;
      const std::string name = t.name.substr(tag.size());
      ASSERT_TRUE(merged.count(name)) << name << " was not patched";
      EXPECT_LE(max_abs_diff(merged.at(name), ref.tensor(t.name)), 1e-5) << name;
    }
  EXPECT_EQ(merged.size(), refs);  // nothing else patched
  EXPECT_EQ(refs, 35u);            // 32 UNet modules + 3 CLIP
}

TEST(Lora, PeftFileMatchesDiffusersFusedWeights) {
  const LoraFile lora = LoraFile::open(data("lora/sd15_peft.safetensors"), unet_and_clip_shapes());
  EXPECT_EQ(lora.patches().size(), 35u);
  EXPECT_TRUE(lora.unmatched().empty());
  expect_matches_fused(lora, 1.0f, "fused1.");
  expect_matches_fused(lora, 0.5f, "fused05.");
}

TEST(Lora, KohyaFileMatchesDiffusersFusedWeights) {
  const LoraFile lora = LoraFile::open(data("lora/sd15_kohya.safetensors"), unet_and_clip_shapes());
  EXPECT_EQ(lora.patches().size(), 35u);
  EXPECT_EQ(lora.unmatched(), (std::vector<std::string>{
                                  "lora_te2_text_model_encoder_layers_0_mlp_fc1.alpha",
                                  "lora_unet_no_such_block_proj.lora_down.weight",
                                  "lora_unet_no_such_block_proj.lora_up.weight",
                              }));
  expect_matches_fused(lora, 1.0f, "fused1.");
  expect_matches_fused(lora, 0.5f, "fused05.");
}

TEST(Lora, StackedLorasAdd) {
  // The PEFT and kohya files hold the same LoRA: both at 0.5 are the one at 1.0.
  const auto base = unet_and_clip_shapes();
  const LoraFile a = LoraFile::open(data("lora/sd15_peft.safetensors"), base);
  const LoraFile b = LoraFile::open(data("lora/sd15_kohya.safetensors"), base);
  const SafetensorsFile unet = SafetensorsFile::open(kUnetFile);
  const auto both = merged_weights(unet, {{&a, 0.5f}, {&b, 0.5f}}, DType::F32);
  const SafetensorsFile ref = SafetensorsFile::open(data("lora/sd15_ref.safetensors"));
  ASSERT_EQ(both.size(), 32u);
  for (const auto& [name, t] : both)
    EXPECT_LE(max_abs_diff(t, ref.tensor("fused1." + name)), 1e-5) << name;
  // Cast to the requested dtype after the f32 sum (f16: 11 significant bits).
  for (const auto& [name, t] : merged_weights(unet, {{&a, 1.0f}}, DType::F16)) {
    EXPECT_EQ(t.dtype(), DType::F16) << name;
    EXPECT_LE(max_abs_diff(t, ref.tensor("fused1." + name)), 2e-3) << name;
  }
}

// The UNet built from the base weights with the merged tensors swapped in, against the
// diffusers UNet with the adapter active.
TEST(Lora, UnetWithLoraMatchesDiffusers) {
  auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(kUnetFile));
  const LoraFile lora = LoraFile::open(data("lora/sd15_kohya.safetensors"), base_shapes(*file));
  std::map<std::string, Tensor> tensors = merged_weights(*file, {{&lora, 1.0f}}, DType::F32);
  for (const TensorInfo& t : file->tensors()) tensors.emplace(t.name, file->tensor(t.name));
  const Weights w =
      Weights::from_tensors(std::move(tensors), "model.diffusion_model.", kCpu, DType::F32);
  UNetConfig c = UNetConfig::detect(w);
  std::ifstream in(data("models/sd15_tiny/diffusers/unet/config.json"));
  const nlohmann::json j = nlohmann::json::parse(in);
  c.groups = j.at("norm_num_groups").get<int>();
  c.num_heads = j.at("attention_head_dim").get<int>();
  c.head_dim = 0;
  const UNet unet = UNet::load(w, c);

  const SafetensorsFile io = SafetensorsFile::open(data("models/sd15_tiny/unet_ref.safetensors"));
  const Tensor x = io.tensor("x");  // [2, 4, 16, 16] NCHW
  const Shape& s = x.shape();
  const Tensor xh = Tensor::from_floats(test::nchw_to_nhwc(x.to_floats(), s), {2, 16, 16, 4});
  const Tensor ctx = Tensor::from_floats(io.tensor("context").to_floats(), {2, 77, 32});
  const Tensor t0 = Tensor::from_floats(io.tensor("t0").to_floats(), {2});
  const Tensor eps = unet.forward(xh, t0, ctx);
  const SafetensorsFile ref = SafetensorsFile::open(data("lora/sd15_ref.safetensors"));
  const auto want = test::nchw_to_nhwc(ref.tensor("unet.out").to_floats(), s);
  const auto e = test::error_stats(eps.to_floats(), want);
  EXPECT_LE(e.max_abs, 1e-4) << "rms " << e.rms;
  // The LoRA must matter: the base UNet's output (unet_ref out0) is far from it.
  const auto base_out = test::nchw_to_nhwc(io.tensor("out0").to_floats(), s);
  EXPECT_GT(test::error_stats(base_out, want).max_abs, 1e-2);
}

TEST(Lora, LycorisDeltasMatchComfyFormulas) {
  const LoraFile lora = LoraFile::open(data("lora/lycoris.safetensors"),
                                       base_shapes(SafetensorsFile::open(kUnetFile)));
  EXPECT_TRUE(lora.unmatched().empty());
  const SafetensorsFile ref = SafetensorsFile::open(data("lora/lycoris_ref.safetensors"));
  ASSERT_EQ(lora.patches().size(), ref.tensors().size());
  for (const LoraPatch& p : lora.patches()) {
    const Tensor want = ref.tensor("delta." + p.target.name);
    const Tensor d = lora_delta(p, 1.0f);
    ASSERT_EQ(d.shape(), want.shape()) << p.module;
    double scale = 0;
    for (float v : want.to_floats()) scale = std::max(scale, static_cast<double>(std::fabs(v)));
    EXPECT_LE(max_abs_diff(d, want), 1e-5 * std::max(1.0, scale)) << p.module;
    // Strength multiplies the delta.
    const auto w = want.to_floats();
    const auto q = lora_delta(p, -0.25f).to_floats();
    for (size_t i = 0; i < w.size(); ++i)
      ASSERT_NEAR(q[i], -0.25 * w[i], 1e-5 * std::max(1.0, scale)) << p.module << " at " << i;
  }
  int kinds[3] = {0, 0, 0};
  for (const LoraPatch& p : lora.patches()) ++kinds[static_cast<int>(p.kind)];
  EXPECT_EQ(kinds[0], 1);  // LoCon + lora_mid
  EXPECT_EQ(kinds[1], 2);  // LoHa, LoHa Tucker
  EXPECT_EQ(kinds[2], 3);  // LoKr ×3
}

TEST(Lora, NoMatchingKeysGivesNoPatches) {
  // A UNet LoRA against a CLIP-only base.
  const LoraFile lora = LoraFile::open(data("lora/lycoris.safetensors"),
                                       base_shapes(SafetensorsFile::open(kClipFile)));
  EXPECT_TRUE(lora.patches().empty());
  EXPECT_EQ(lora.unmatched().size(),
            SafetensorsFile::open(data("lora/lycoris.safetensors")).tensors().size());
}

class LoraHostile : public ::testing::Test {
 protected:
  // One file per test and process: ctest runs these tests in parallel.
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("darkroom_lora_hostile_" +
              std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
              std::to_string(getpid()) + ".safetensors"))
                .string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string path_;
  void write(const std::vector<std::pair<std::string, Shape>>& tensors) {
    std::vector<std::pair<std::string, Tensor>> t;
    for (const auto& [name, shape] : tensors)
      t.emplace_back(name, Tensor::zeros(shape, DType::F32));
    write_safetensors(path_, t);
  }
  const std::string q_ = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q";  // [8, 8]
};

TEST_F(LoraHostile, RankMismatchBetweenUpAndDown) {
  write({{q_ + ".lora_up.weight", {8, 4}}, {q_ + ".lora_down.weight", {3, 8}}});
  test::expect_error([&] { LoraFile::open(path_, base_shapes(SafetensorsFile::open(kUnetFile))); },
                     "[lora]");
}

TEST_F(LoraHostile, DeltaShapeNotTheTargets) {
  write({{q_ + ".lora_up.weight", {8, 4}}, {q_ + ".lora_down.weight", {4, 32}}});
  test::expect_error([&] { LoraFile::open(path_, base_shapes(SafetensorsFile::open(kUnetFile))); },
                     "[lora]");
}

TEST_F(LoraHostile, MissingHalf) {
  write({{q_ + ".lora_up.weight", {8, 4}}});
  test::expect_error([&] { LoraFile::open(path_, base_shapes(SafetensorsFile::open(kUnetFile))); },
                     "[lora]");
}

TEST_F(LoraHostile, LohaRankMismatch) {
  write({{q_ + ".hada_w1_a", {8, 2}},
         {q_ + ".hada_w1_b", {3, 8}},
         {q_ + ".hada_w2_a", {8, 2}},
         {q_ + ".hada_w2_b", {2, 8}}});
  test::expect_error([&] { LoraFile::open(path_, base_shapes(SafetensorsFile::open(kUnetFile))); },
                     "[lora]");
}

TEST_F(LoraHostile, FactorThatIsNotAMatrix) {
  write({{q_ + ".lora_up.weight", {8}}, {q_ + ".lora_down.weight", {4, 8}}});
  test::expect_error([&] { LoraFile::open(path_, base_shapes(SafetensorsFile::open(kUnetFile))); },
                     "[lora]");
  write({{q_ + ".lora_up.weight", {8, 0}}, {q_ + ".lora_down.weight", {0, 8}}});
  test::expect_error([&] { LoraFile::open(path_, base_shapes(SafetensorsFile::open(kUnetFile))); },
                     "[lora]");
}

// DoRA is not supported: applying its up/down without the magnitude rescale would be
// silently wrong, so the whole module is reported as not loaded.
TEST_F(LoraHostile, DoraModuleIsReportedNotApplied) {
  write({{q_ + ".lora_up.weight", {8, 4}},
         {q_ + ".lora_down.weight", {4, 8}},
         {q_ + ".dora_scale", {8, 1}}});
  const LoraFile lora = LoraFile::open(path_, base_shapes(SafetensorsFile::open(kUnetFile)));
  EXPECT_TRUE(lora.patches().empty());
  EXPECT_EQ(lora.unmatched().size(), 3u);
}

TEST_F(LoraHostile, NotASafetensorsFile) {
  std::ofstream(path_) << "garbage";
  test::expect_error([&] { LoraFile::open(path_, {}); }, "[safetensors]");
}

}  // namespace
}  // namespace darkroom
