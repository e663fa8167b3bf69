// The UNet with SDXL's layout against diffusers' UNet2DConditionModel: a tiny model with
// SDXL's block structure (no attention on the top level, a transformer depth per level,
// Linear projections, the "text_time" vector condition = ldm's label_emb) and random
// weights, written with diffusers' outputs by tools/fixtures/sdxl_unet.py into
// data/models/sdxl_tiny/ (diffusers/unet/ as saved by diffusers, loaded here through
// darkroom's diffusers→ldm renaming; unet_ref.safetensors). Also: the tensor list
// UNetConfig::tensor_shapes() gives for SD 1.5 and SDXL against the reference lists of
// the real checkpoints (data/reference/*.tsv).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
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
  return std::string(DARKROOM_TEST_DATA) + "/models/sdxl_tiny/" + file;
}

std::shared_ptr<const SafetensorsFile> open_file(const std::string& path) {
  return std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path));
}

std::shared_ptr<const SafetensorsFile> unet_file() {
  return open_file(fixture("diffusers/unet/diffusion_pytorch_model.safetensors"));
}

struct Reference {
  Tensor x;                                // [2, 16, 16, 4] NHWC
  Tensor context;                          // [2, 77, 32]
  Tensor text_embeds, time_ids, y;         // [2, 32], [2, 6], [2, 80]
  Tensor t[2];                             // [2] each
  std::vector<float> out[2], out_bf16[2];  // NHWC values
};

Tensor f32_copy(const Tensor& t) {
  return Tensor::from_floats(t.to_floats(), t.shape());
}

Reference load_reference() {
  const SafetensorsFile f = SafetensorsFile::open(fixture("unet_ref.safetensors"));
  Reference r;
  const Tensor x = f.tensor("x");
  const Shape& s = x.shape();
  r.x = Tensor::from_floats(nchw_to_nhwc(x.to_floats(), s), {s[0], s[2], s[3], s[1]});
  r.context = f32_copy(f.tensor("context"));
  r.text_embeds = f32_copy(f.tensor("text_embeds"));
  r.time_ids = f32_copy(f.tensor("time_ids"));
  r.y = f32_copy(f.tensor("y"));
  for (int k = 0; k < 2; ++k) {
    const std::string i = std::to_string(k);
    r.t[k] = f32_copy(f.tensor("t" + i));
    r.out[k] = nchw_to_nhwc(f.tensor("out" + i).to_floats(), s);
    r.out_bf16[k] = nchw_to_nhwc(f.tensor("out" + i + "_bf16").to_floats(), s);
  }
  return r;
}

// What the shapes cannot tell, from the diffusers config of the weights: GroupNorm
// groups and the head width (diffusers' attention_head_dim is the head COUNT per level).
UNetConfig tiny_config(const Weights& w) {
  UNetConfig c = UNetConfig::detect(w);
  std::ifstream in(fixture("diffusers/unet/config.json"));
  const nlohmann::json j = nlohmann::json::parse(in);
  c.groups = j.at("norm_num_groups").get<int>();
  const int width = j.at("block_out_channels")[1].get<int>();
  const int heads = j.at("attention_head_dim")[1].get<int>();
  c.num_heads = 0;
  c.head_dim = width / heads;
  return c;
}

TEST(SdxlUnet, DetectsTheTinyConfigFromShapes) {
  const Weights w = unet_weights_from_diffusers(unet_file(), kCpu, DType::F32);
  const UNetConfig c = UNetConfig::detect(w);
  // tools/fixtures/sdxl_unet.py: block_out_channels (16, 32, 48), transformer depths
  // (-, 1, 2) with no attention on level 0, 2 in the middle, context 32, y of 32 + 6·8.
  EXPECT_EQ(c.in_channels, 4);
  EXPECT_EQ(c.out_channels, 4);
  EXPECT_EQ(c.model_channels, 16);
  EXPECT_EQ(c.channel_mult, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(c.num_res_blocks, 2);
  EXPECT_EQ(c.transformer_depth, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(c.transformer_depth_middle, 2);
  EXPECT_EQ(c.context_dim, 32);
  EXPECT_TRUE(c.linear_proj);
  EXPECT_EQ(c.adm_in_channels, 80);
}

TEST(SdxlUnet, MatchesDiffusersF32) {
  const Reference r = load_reference();
  auto file = unet_file();
  const Weights w = unet_weights_from_diffusers(file, kCpu, DType::F32);
  const UNet unet = UNet::load(w, tiny_config(w));
  EXPECT_EQ(w.used().size(), file->tensors().size());  // every tensor of the file is used
  for (int k = 0; k < 2; ++k) {
    const Tensor eps = unet.forward(r.x, r.t[k], r.context, r.y);  // [2, 16, 16, 4]
    ASSERT_EQ(eps.shape(), (Shape{2, 16, 16, 4}));
    ASSERT_EQ(eps.dtype(), DType::F32);
    const ErrorStats e = error_stats(eps.to_floats(), r.out[k]);
    EXPECT_LE(e.max_abs, 1e-4) << "run " << k << ", rms error " << e.rms;
  }
}

// bf16 weights and activations against diffusers' f32 output, with torch's own bf16 run
// of the same model as the yardstick (see Sd15Unet.Bf16WithinTwiceTorchsBf16Error).
TEST(SdxlUnet, Bf16WithinTwiceTorchsBf16Error) {
  const Reference r = load_reference();
  const Weights w = unet_weights_from_diffusers(unet_file(), kCpu, DType::BF16);
  const UNet unet = UNet::load(w, tiny_config(w));
  for (int k = 0; k < 2; ++k) {
    const Tensor eps = unet.forward(r.x, r.t[k], r.context, r.y);
    ASSERT_EQ(eps.dtype(), DType::F32);
    const ErrorStats ours = error_stats(eps.to_floats(), r.out[k]);
    const ErrorStats torch = error_stats(r.out_bf16[k], r.out[k]);
    // torch's bf16 error is ~1.5e-2 max on outputs of std 0.46 here.
    ASSERT_LT(torch.max_abs, 0.05);
    ASSERT_GT(torch.max_abs, 0.0);
    EXPECT_LE(ours.max_abs, 2 * torch.max_abs) << "run " << k;
    EXPECT_LE(ours.rms, 2 * torch.rms) << "run " << k;
  }
}

// y from the pooled text embedding and the six size numbers, against diffusers'
// cat(text_embeds, add_time_proj(time_ids)). Both compute the sinusoids in f32 from
// arguments t·f up to 1344: rounding the argument (half an f32 ulp at 1344 is 6e-5) and
// the frequency (relative 6e-8, times 1344) moves sin/cos by at most ~1.5e-4.
TEST(SdxlUnet, VectorYMatchesDiffusers) {
  const Reference r = load_reference();
  const std::vector<float> ids = r.time_ids.to_floats();
  std::vector<std::array<float, 6>> sizes(2);
  for (size_t b = 0; b < 2; ++b)
    for (size_t i = 0; i < 6; ++i) sizes[b][i] = ids[b * 6 + i];
  const Tensor y = sdxl_vector_y(r.text_embeds, sizes, 8);
  ASSERT_EQ(y.shape(), (Shape{2, 80}));
  const ErrorStats e = error_stats(y.to_floats(), r.y.to_floats());
  EXPECT_LE(e.max_abs, 3e-4) << "rms " << e.rms;
  EXPECT_THROW(sdxl_vector_y(r.text_embeds, {sizes[0]}, 8), Error);  // one size row for 2
}

TEST(SdxlUnet, ForwardNeedsTheVectorCondition) {
  const Reference r = load_reference();
  const Weights w = unet_weights_from_diffusers(unet_file(), kCpu, DType::F32);
  const UNet unet = UNet::load(w, tiny_config(w));
  EXPECT_THROW(unet.forward(r.x, r.t[0], r.context), Error);  // no y
  EXPECT_THROW(unet.forward(r.x, r.t[0], r.context, Tensor::zeros({2, 79}, DType::F32)), Error);
  EXPECT_THROW(unet.forward(r.x, r.t[0], r.context, Tensor::zeros({1, 80}, DType::F32)), Error);
}

// "name<TAB>[d0, d1, ...]" lines of a reference list, those under the UNet's prefix.
std::map<std::string, Shape> reference_unet(const std::string& file) {
  const std::string prefix = "model.diffusion_model.";
  std::ifstream in(std::string(DARKROOM_TEST_DATA) + "/reference/" + file);
  EXPECT_TRUE(in) << file;
  std::map<std::string, Shape> shapes;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind(prefix, 0) != 0) continue;
    const size_t tab = line.find('\t');
    std::string dims = line.substr(tab + 1);
    for (char& ch : dims)
      if (ch == '[' || ch == ']' || ch == ',') ch = ' ';
    std::istringstream ds(dims);
    std::vector<int64_t> v;
    for (int64_t d; ds >> d;) v.push_back(d);
    shapes.emplace(line.substr(prefix.size(), tab - prefix.size()), Shape(v));
  }
  return shapes;
}

void expect_same_tensors(const UNetConfig& c, const std::map<std::string, Shape>& ref) {
  std::map<std::string, Shape> got;
  for (const auto& [name, shape] : c.tensor_shapes())
    EXPECT_TRUE(got.emplace(name, shape).second) << "twice: " << name;
  for (const auto& [name, shape] : ref) {
    auto it = got.find(name);
    if (it == got.end()) {
      ADD_FAILURE() << "missing " << name;
      continue;
    }
    EXPECT_EQ(it->second, shape) << name;
  }
  for (const auto& [name, shape] : got) EXPECT_TRUE(ref.count(name)) << "extra " << name;
}

TEST(UNetTensorShapes, Sd15IsTheCheckpointsList) {
  const auto ref = reference_unet("sd15-ldm-tensors.tsv");
  ASSERT_EQ(ref.size(), 686u);
  expect_same_tensors(UNetConfig::sd15(), ref);
}

TEST(UNetTensorShapes, SdxlIsTheCheckpointsList) {
  const auto ref = reference_unet("sdxl-sgm-tensors.tsv");
  ASSERT_EQ(ref.size(), 1680u);
  expect_same_tensors(UNetConfig::sdxl(), ref);
  // And the preset is what detection reads from those shapes.
  const UNetConfig d = UNetConfig::detect(Weights::from_shapes(ref, ""));
  const UNetConfig x = UNetConfig::sdxl();
  EXPECT_EQ(d.model_channels, x.model_channels);
  EXPECT_EQ(d.channel_mult, x.channel_mult);
  EXPECT_EQ(d.transformer_depth, x.transformer_depth);
  EXPECT_EQ(d.transformer_depth_middle, x.transformer_depth_middle);
  EXPECT_EQ(d.context_dim, x.context_dim);
  EXPECT_EQ(d.linear_proj, x.linear_proj);
  EXPECT_EQ(d.adm_in_channels, x.adm_in_channels);
  EXPECT_EQ(d.head_dim, x.head_dim);
}

}  // namespace
}  // namespace darkroom
