// The SD 1.5 UNet against diffusers' UNet2DConditionModel: a tiny model with SD 1.5's
// block structure and random weights, written with diffusers' outputs by
// tools/fixtures/unet.py into data/models/sd15_tiny/ (unet.safetensors under ldm
// names, diffusers/unet/ as saved by diffusers, unet_ref.safetensors).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/unet.h"
#include "models/unet_diffusers_names.h"
#include "models/weights.h"
#include "test_util.h"

namespace darkroom {
namespace {

using test::error_stats;
using test::ErrorStats;
using test::nchw_to_nhwc;

std::string fixture(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/" + file;
}

std::shared_ptr<const SafetensorsFile> open_file(const std::string& path) {
  return std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path));
}

struct Reference {
  Tensor x;                                // [2, 16, 16, 4] NHWC
  Tensor context;                          // [2, 77, 32]
  Tensor t[2];                             // [2] each
  std::vector<float> out[2], out_bf16[2];  // NHWC values
};

Reference load_reference() {
  const SafetensorsFile f = SafetensorsFile::open(fixture("unet_ref.safetensors"));
  Reference r;
  const Tensor x = f.tensor("x");
  const Shape& s = x.shape();
  r.x = Tensor::from_floats(nchw_to_nhwc(x.to_floats(), s), {s[0], s[2], s[3], s[1]});
  const Tensor ctx = f.tensor("context");
  r.context = Tensor::from_floats(ctx.to_floats(), ctx.shape());
  for (int k = 0; k < 2; ++k) {
    const std::string i = std::to_string(k);
    r.t[k] = Tensor::from_floats(f.tensor("t" + i).to_floats(), {2});
    r.out[k] = nchw_to_nhwc(f.tensor("out" + i).to_floats(), s);
    r.out_bf16[k] = nchw_to_nhwc(f.tensor("out" + i + "_bf16").to_floats(), s);
  }
  return r;
}

// What the shapes cannot tell, from the diffusers config that goes with the weights:
// GroupNorm groups, and the head count (which diffusers' SD 1.x configs call
// attention_head_dim).
UNetConfig tiny_config(const Weights& w) {
  UNetConfig c = UNetConfig::detect(w);
  std::ifstream in(fixture("diffusers/unet/config.json"));
  const nlohmann::json j = nlohmann::json::parse(in);
  c.groups = j.at("norm_num_groups").get<int>();
  c.num_heads = j.at("attention_head_dim").get<int>();
  c.head_dim = 0;
  return c;
}

void expect_matches_diffusers_f32(const UNet& unet, const Reference& r) {
  for (int k = 0; k < 2; ++k) {
    const Tensor eps = unet.forward(r.x, r.t[k], r.context);  // [2, 16, 16, 4]
    ASSERT_EQ(eps.shape(), (Shape{2, 16, 16, 4}));
    ASSERT_EQ(eps.dtype(), DType::F32);
    const ErrorStats e = error_stats(eps.to_floats(), r.out[k]);
    EXPECT_LE(e.max_abs, 1e-4) << "run " << k << ", rms error " << e.rms;
  }
}

TEST(Sd15Unet, DetectsTheTinyConfigFromShapes) {
  auto file = open_file(fixture("unet.safetensors"));
  const Weights w = Weights::from_file(file, "model.diffusion_model.", kCpu, DType::F32);
  const UNetConfig c = UNetConfig::detect(w);
  // tools/fixtures/unet.py: block_out_channels (8, 16, 32, 32), cross_attention_dim 32.
  EXPECT_EQ(c.in_channels, 4);
  EXPECT_EQ(c.out_channels, 4);
  EXPECT_EQ(c.model_channels, 8);
  EXPECT_EQ(c.channel_mult, (std::vector<int>{1, 2, 4, 4}));
  EXPECT_EQ(c.num_res_blocks, 2);
  EXPECT_EQ(c.transformer_depth, (std::vector<int>{1, 1, 1, 0}));
  EXPECT_EQ(c.transformer_depth_middle, 1);
  EXPECT_EQ(c.context_dim, 32);
  EXPECT_FALSE(c.linear_proj);
  EXPECT_EQ(c.adm_in_channels, 0);
}

TEST(Sd15Unet, MatchesDiffusersF32) {
  const Reference r = load_reference();
  auto file = open_file(fixture("unet.safetensors"));
  const Weights w = Weights::from_file(file, "model.diffusion_model.", kCpu, DType::F32);
  const UNet unet = UNet::load(w, tiny_config(w));
  EXPECT_EQ(w.used().size(), file->tensors().size());  // every tensor of the file is used
  expect_matches_diffusers_f32(unet, r);
}

// bf16 weights and activations against diffusers' f32 output. The yardstick is torch's
// own bf16 run of the same model (out*_bf16 in the fixture): both round the weights and
// inputs to bf16 (8 significant bits, 2^-9 ≈ 0.2% per rounding) and round activations
// between layers, some 60 layers deep here; darkroom keeps f32 inside each kernel but rounds
// at different places (fused GroupNorm+SiLU, attention), so its error may differ from
// torch's by chance, not by kind: allow twice torch's error, in max and in RMS.
TEST(Sd15Unet, Bf16WithinTwiceTorchsBf16Error) {
  const Reference r = load_reference();
  auto file = open_file(fixture("unet.safetensors"));
  const Weights w = Weights::from_file(file, "model.diffusion_model.", kCpu, DType::BF16);
  const UNet unet = UNet::load(w, tiny_config(w));
  for (int k = 0; k < 2; ++k) {
    const Tensor eps = unet.forward(r.x, r.t[k], r.context);  // f32 in, f32 out
    ASSERT_EQ(eps.dtype(), DType::F32);
    const ErrorStats ours = error_stats(eps.to_floats(), r.out[k]);
    const ErrorStats torch = error_stats(r.out_bf16[k], r.out[k]);
    // torch's bf16 error here is ~1.5e-2 max on outputs of std 0.33: a sanity bound on
    // the yardstick itself, so that a broken fixture cannot widen the tolerance.
    ASSERT_LT(torch.max_abs, 0.05);
    ASSERT_GT(torch.max_abs, 0.0);
    EXPECT_LE(ours.max_abs, 2 * torch.max_abs) << "run " << k;
    EXPECT_LE(ours.rms, 2 * torch.rms) << "run " << k;
  }
}

TEST(Sd15Unet, DiffusersFolderRenamesToTheSameModel) {
  auto ldm_file = open_file(fixture("unet.safetensors"));
  auto file = open_file(fixture("diffusers/unet/diffusion_pytorch_model.safetensors"));
  std::vector<std::string> names;
  for (const TensorInfo& t : file->tensors()) names.push_back(t.name);
  // The renaming gives exactly the single file's names (written by the Python renaming).
  std::set<std::string> renamed, expected;
  for (const auto& [from, to] : unet_ldm_names_from_diffusers(names))
    renamed.insert("model.diffusion_model." + to);
  for (const TensorInfo& t : ldm_file->tensors()) expected.insert(t.name);
  EXPECT_TRUE(renamed == expected);

  const Reference r = load_reference();
  const Weights w = unet_weights_from_diffusers(file, kCpu, DType::F32);
  const UNet unet = UNet::load(w, tiny_config(w));
  EXPECT_EQ(w.used().size(), names.size());
  expect_matches_diffusers_f32(unet, r);
}

TEST(Sd15Unet, DiffusersRenamingRejectsUnknownNames) {
  const std::vector<std::string> names = {
      "down_blocks.0.resnets.0.conv1.weight", "down_blocks.0.resnets.1.conv1.weight",
      "up_blocks.0.resnets.2.conv1.weight", "up_blocks.0.resnets.0.conv9.weight"};
  EXPECT_THROW(unet_ldm_names_from_diffusers(names), Error);
  EXPECT_THROW(unet_ldm_names_from_diffusers({"conv_in.weight"}), Error);  // no blocks
}

TEST(Sd15Unet, ForwardRejectsBadShapes) {
  auto file = open_file(fixture("unet.safetensors"));
  const Weights w = Weights::from_file(file, "model.diffusion_model.", kCpu, DType::F32);
  const UNet unet = UNet::load(w, tiny_config(w));
  const Tensor t = Tensor::zeros({1}, DType::F32);
  const Tensor ctx = Tensor::zeros({1, 77, 32}, DType::F32);
  EXPECT_THROW(unet.forward(Tensor::zeros({1, 16, 16, 3}, DType::F32), t, ctx), Error);
  EXPECT_THROW(unet.forward(Tensor::zeros({1, 0, 16, 4}, DType::F32), t, ctx), Error);
  EXPECT_THROW(unet.forward(Tensor::zeros({1, 16, 16, 4}, DType::F32), t,
                            Tensor::zeros({1, 77, 768}, DType::F32)),
               Error);
}

}  // namespace
}  // namespace darkroom
