// Demo weights: the init rule of demo_weights.h checked with statistics computed here in
// double, determinism, and a written file read back with the safetensors reader.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "pipeline/demo_weights.h"

namespace darkroom::pipeline {
namespace {

struct Stats {
  double mean = 0, std = 0, max_abs = 0;
};

Stats stats(const Tensor& t) {
  const std::vector<float> v = t.to_floats();
  Stats s;
  for (float x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (float x : v) {
    s.std += (x - s.mean) * (x - s.mean);
    s.max_abs = std::max(s.max_abs, std::fabs(static_cast<double>(x)));
  }
  s.std = std::sqrt(s.std / static_cast<double>(v.size()));
  return s;
}

TEST(DemoWeights, ConvWeightsAreScaledByFanIn) {
  // 1280 × 1280·9: fan_in 11520, std 1/sqrt(11520) ≈ 0.00932.
  const Tensor w = demo_tensor("model.diffusion_model.middle_block.0.in_layers.2.weight",
                               {1280, 1280, 3, 3}, 7, DType::F32);
  const Stats s = stats(w);
  const double expected = 1.0 / std::sqrt(11520.0);
  EXPECT_NEAR(s.mean, 0.0, 0.002 * expected);
  EXPECT_NEAR(s.std, expected, 0.01 * expected);
  // Irwin–Hall of 4 uniforms is bounded by 2·sqrt(3) standard deviations.
  EXPECT_LE(s.max_abs, 2.0 * std::sqrt(3.0) * expected + 1e-9);
  EXPECT_GE(s.max_abs, 2.5 * expected);  // but not squeezed to a box either
}

TEST(DemoWeights, LinearAndEmbeddingScale) {
  const Tensor w = demo_tensor("x.mlp.fc1.weight", {3072, 768}, 1, DType::F16);
  EXPECT_EQ(w.dtype(), DType::F16);
  EXPECT_NEAR(stats(w).std, 1.0 / std::sqrt(768.0), 0.01 / std::sqrt(768.0));
}

TEST(DemoWeights, BiasesZeroNormsOne) {
  for (float v : demo_tensor("a.bias", {320}, 3, DType::BF16).to_floats()) ASSERT_EQ(v, 0.0f);
  for (float v : demo_tensor("a.norm1.weight", {320}, 3, DType::F16).to_floats())
    ASSERT_EQ(v, 1.0f);
  // A rank-1 weight that is not a norm does not exist in SD; a 4-D bias would be zero.
  for (float v : demo_tensor("a.bias", {2, 3, 3, 3}, 3, DType::F32).to_floats()) ASSERT_EQ(v, 0.0f);
}

TEST(DemoWeights, SeededAndIndependentPerName) {
  const std::vector<float> a = demo_tensor("w.weight", {64, 300}, 5, DType::F32).to_floats();
  const std::vector<float> b = demo_tensor("w.weight", {64, 300}, 5, DType::F32).to_floats();
  const std::vector<float> c = demo_tensor("w.weight", {64, 300}, 6, DType::F32).to_floats();
  const std::vector<float> d = demo_tensor("v.weight", {64, 300}, 5, DType::F32).to_floats();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
}

TEST(DemoWeights, WritesACheckpointWithTheDemoMark) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("darkroom_demo_" + std::to_string(::getpid()) + ".safetensors"))
                               .string();
  write_demo_checkpoint(path, {{"a.weight", Shape{4, 8}}, {"a.bias", Shape{4}}}, 9, DType::F16,
                        {{"extra", "1"}});
  const SafetensorsFile f = SafetensorsFile::open(path);
  std::filesystem::remove(path);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].name, "a.weight");
  EXPECT_EQ(f.tensors()[0].dtype, DType::F16);
  EXPECT_EQ(f.tensors()[0].shape, Shape({4, 8}));
  EXPECT_EQ(f.metadata().at("darkroom.demo"), "random weights — images are noise");
  EXPECT_EQ(f.metadata().at("extra"), "1");
  EXPECT_EQ(f.tensor("a.weight").to_floats(),
            demo_tensor("a.weight", {4, 8}, 9, DType::F16).to_floats());
}

}  // namespace
}  // namespace darkroom::pipeline
