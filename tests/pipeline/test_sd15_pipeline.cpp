// The text-to-image pipeline end to end on tiny models: the UNet and VAE fixtures of
// data/models/sd15_tiny/ and a small random CLIP with the real vocabulary (the fixture's
// CLIP is 64 wide with 256 tokens, which fits neither the tiny UNet's 32-wide context nor
// real prompts). Not golden tests: they check the wiring — sizes, finiteness, that one
// Euler step is the CFG formula assembled by hand, and the prompt-weight rule.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "pipeline/demo_weights.h"
#include "pipeline/prompt_encoder.h"
#include "pipeline/sd15_pipeline.h"
#include "sampling/noise.h"
#include "sampling/schedule.h"

namespace darkroom::pipeline {
namespace {

constexpr int64_t kClipWidth = 32;  // the tiny UNet's context width
constexpr int64_t kVocab = 49408;   // CLIP's

std::string fixture(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/" + file;
}

text::ClipTokenizer tokenizer() {
  const std::string dir = DARKROOM_CLIP_DATA;
  return text::ClipTokenizer::load(dir + "/sd1_tokenizer", dir + "/bpe_simple_vocab_16e6.txt.gz");
}

ClipTextEncoder tiny_clip() {
  const std::map<std::string, Shape> shapes = {
      {"embeddings.token_embedding.weight", {kVocab, kClipWidth}},
      {"embeddings.position_embedding.weight", {77, kClipWidth}},
      {"encoder.layers.0.layer_norm1.weight", {kClipWidth}},
      {"encoder.layers.0.layer_norm1.bias", {kClipWidth}},
      {"encoder.layers.0.layer_norm2.weight", {kClipWidth}},
      {"encoder.layers.0.layer_norm2.bias", {kClipWidth}},
      {"encoder.layers.0.self_attn.q_proj.weight", {kClipWidth, kClipWidth}},
      {"encoder.layers.0.self_attn.q_proj.bias", {kClipWidth}},
      {"encoder.layers.0.self_attn.k_proj.weight", {kClipWidth, kClipWidth}},
      {"encoder.layers.0.self_attn.k_proj.bias", {kClipWidth}},
      {"encoder.layers.0.self_attn.v_proj.weight", {kClipWidth, kClipWidth}},
      {"encoder.layers.0.self_attn.v_proj.bias", {kClipWidth}},
      {"encoder.layers.0.self_attn.out_proj.weight", {kClipWidth, kClipWidth}},
      {"encoder.layers.0.self_attn.out_proj.bias", {kClipWidth}},
      {"encoder.layers.0.mlp.fc1.weight", {2 * kClipWidth, kClipWidth}},
      {"encoder.layers.0.mlp.fc1.bias", {2 * kClipWidth}},
      {"encoder.layers.0.mlp.fc2.weight", {kClipWidth, 2 * kClipWidth}},
      {"encoder.layers.0.mlp.fc2.bias", {kClipWidth}},
      {"final_layer_norm.weight", {kClipWidth}},
      {"final_layer_norm.bias", {kClipWidth}},
  };
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, shape] : shapes) tensors[name] = demo_tensor(name, shape, 11, DType::F32);
  const Weights w = Weights::from_tensors(std::move(tensors), "", kCpu, DType::F32);
  return ClipTextEncoder::load(w, ClipTextConfig::detect(w, /*heads=*/2));
}

// What the tiny fixtures' shapes cannot tell comes from tools/fixtures/*.py: UNet GroupNorm
// 4 groups and 4 heads, VAE 8 groups.
const Sd15Pipeline& tiny_pipeline() {
  static const Sd15Pipeline p = [] {
    auto unet_file =
        std::make_shared<const SafetensorsFile>(SafetensorsFile::open(fixture("unet.safetensors")));
    const Weights uw = Weights::from_file(unet_file, "model.diffusion_model.", kCpu, DType::F32);
    UNetConfig uc = UNetConfig::detect(uw);
    uc.groups = 4;
    uc.num_heads = 4;
    uc.head_dim = 0;
    auto vae_file = std::make_shared<const SafetensorsFile>(
        SafetensorsFile::open(fixture("clip_vae.safetensors")));
    const Weights vw = Weights::from_file(vae_file, "first_stage_model.", kCpu, DType::F32);
    return Sd15Pipeline(tokenizer(), tiny_clip(), UNet::load(uw, uc),
                        Vae::load(vw, VaeConfig::detect(vw, 8), false));
  }();
  return p;
}

bool all_finite(const Tensor& t) {
  for (float v : t.to_floats())
    if (!std::isfinite(v)) return false;
  return true;
}

TEST(Sd15Pipeline, TwoStepsGiveImagesOfTheRequestedSize) {
  const Sd15Pipeline& pipe = tiny_pipeline();
  ASSERT_EQ(pipe.vae_scale(), 2);      // the tiny VAE has 2 levels
  ASSERT_EQ(pipe.size_multiple(), 2);  // any latent size (odd sides: test_golden_sd15)
  GenerateParams p;
  p.prompt = "a (red:1.3) cat on a [mat]";
  std::string negative;
  for (int i = 0; i < 40; ++i) negative += "blurry, ";  // > 75 tokens: 2 chunks vs 1
  p.negative = negative;
  p.steps = 2;
  p.cfg = 5.0f;
  p.width = 32;
  p.height = 48;
  p.batch = 2;
  p.seed = 42;
  std::vector<std::pair<int, int>> progress;
  const Tensor z = pipe.sample(p, [&](int s, int n) { progress.emplace_back(s, n); });
  EXPECT_EQ(progress, (std::vector<std::pair<int, int>>{{1, 2}, {2, 2}}));
  ASSERT_EQ(z.shape(), Shape({2, 24, 16, 4}));
  EXPECT_EQ(z.dtype(), DType::F32);
  ASSERT_TRUE(all_finite(z));
  const std::vector<float> v = z.to_floats();
  const size_t half = v.size() / 2;
  EXPECT_NE(std::vector<float>(v.begin(), v.begin() + half),
            std::vector<float>(v.begin() + half, v.end()))
      << "the two images of a batch must get different noise";

  const Tensor image = pipe.decode(z);
  ASSERT_EQ(image.shape(), Shape({2, 48, 32, 3}));
  ASSERT_TRUE(all_finite(image));
  const std::vector<RgbImage> rgb = Sd15Pipeline::to_rgb8(image);
  ASSERT_EQ(rgb.size(), 2u);
  EXPECT_EQ(rgb[1].width, 32);
  EXPECT_EQ(rgb[1].height, 48);
  EXPECT_EQ(rgb[1].pixels.size(), 32u * 48u * 3u);
}

TEST(Sd15Pipeline, OneEulerStepIsTheCfgFormula) {
  // One Euler step from σ_max to 0 lands on D(x0, σ_max); with x0 = noise·sqrt(1 + σ²)
  // (the max-denoise start) and c_in = 1/sqrt(1 + σ²) the UNet sees the noise itself.
  const Sd15Pipeline& pipe = tiny_pipeline();
  GenerateParams p;
  p.prompt = "a photo of a dog";
  p.negative = "cartoon";
  p.steps = 1;
  p.cfg = 3.0f;
  p.width = p.height = 32;
  p.seed = 7;
  const Tensor z = pipe.sample(p);

  const auto schedule = sampling::DiscreteSchedule::scaled_linear();
  const double sigma = schedule.sigma_max();
  ASSERT_EQ(schedule.timestep(schedule.sigma_max()), 999.0f);
  const int64_t nchw[4] = {1, 4, 16, 16};
  const Tensor noise = sampling::prepare_noise(nchw, 7);
  const Tensor t = Tensor::from_floats(std::vector<float>{999.0f}, {1});
  const std::vector<float> eps_c =
      pipe.unet()
          .forward(noise, t, encode_prompt(pipe.tokenizer(), pipe.clip(), p.prompt))
          .to_floats();
  const std::vector<float> eps_u =
      pipe.unet()
          .forward(noise, t, encode_prompt(pipe.tokenizer(), pipe.clip(), p.negative))
          .to_floats();
  const std::vector<float> n = noise.to_floats(), got = z.to_floats();
  ASSERT_EQ(got.size(), n.size());
  double largest = 0, worst = 0;
  for (size_t i = 0; i < n.size(); ++i) {
    const double x0 = n[i] * std::sqrt(1.0 + sigma * sigma);
    const double eps = eps_u[i] + (static_cast<double>(eps_c[i]) - eps_u[i]) * p.cfg;
    const double expected = (x0 - sigma * eps) / 0.18215;
    largest = std::max(largest, std::fabs(expected));
    worst = std::max(worst, std::fabs(expected - got[i]));
  }
  EXPECT_LE(worst, 1e-4 * largest) << "largest |z| " << largest;
}

TEST(Sd15Pipeline, CfgOneSkipsTheNegativePrompt) {
  // ComfyUI runs no uncond pass at cfg 1: the negative prompt cannot matter.
  const Sd15Pipeline& pipe = tiny_pipeline();
  GenerateParams p;
  p.prompt = "a tree";
  p.cfg = 1.0f;
  p.steps = 1;
  p.width = p.height = 16;
  p.negative = "one thing";
  const std::vector<float> a = pipe.sample(p).to_floats();
  p.negative = "something else entirely";
  EXPECT_EQ(a, pipe.sample(p).to_floats());
}

TEST(Sd15Pipeline, RejectsSizesTheUNetCannotTake) {
  GenerateParams p;
  p.width = 25;  // not a multiple of the tiny VAE's scale 2
  p.height = 32;
  EXPECT_THROW(tiny_pipeline().sample(p), Error);
  p.width = 32;
  p.sampler = "no_such_sampler";
  EXPECT_THROW(tiny_pipeline().sample(p), Error);
}

TEST(PromptEncoder, WeightsMoveTokensAwayFromTheEmptyPrompt) {
  const Sd15Pipeline& pipe = tiny_pipeline();
  const text::ClipTokenizer& tok = pipe.tokenizer();
  const Tensor got = encode_prompt(tok, pipe.clip(), "(red apple:1.5)");
  ASSERT_EQ(got.shape(), Shape({1, 77, kClipWidth}));
  // By hand: the plain chunk and the empty prompt through CLIP, then e + (z - e)·1.5 at
  // the prompt's own positions (1 .. k).
  const std::vector<int32_t> words = tok.encode("red apple");
  std::vector<int32_t> ids(2 * 77, tok.end_token());
  ids[0] = ids[77] = tok.start_token();
  for (size_t i = 0; i < words.size(); ++i) ids[1 + i] = words[i];
  Tensor id_tensor = Tensor::empty({2, 77}, DType::I32);
  std::copy(ids.begin(), ids.end(), id_tensor.data<int32_t>());
  const std::vector<float> z = pipe.clip().encode(id_tensor, 1).hidden.to_floats();
  const std::vector<float> g = got.to_floats();
  double worst = 0;
  for (int64_t pos = 0; pos < 77; ++pos) {
    const bool weighted = pos >= 1 && pos <= static_cast<int64_t>(words.size());
    for (int64_t c = 0; c < kClipWidth; ++c) {
      const double zi = z[static_cast<size_t>(pos * kClipWidth + c)];
      const double ei = z[static_cast<size_t>((77 + pos) * kClipWidth + c)];
      const double expected = weighted ? ei + (zi - ei) * 1.5 : zi;
      worst = std::max(worst, std::fabs(expected - g[static_cast<size_t>(pos * kClipWidth + c)]));
    }
  }
  EXPECT_LE(worst, 1e-5);
}

TEST(PromptEncoder, LongPromptsBecomeSeveralChunks) {
  const Sd15Pipeline& pipe = tiny_pipeline();
  std::string prompt;
  for (int i = 0; i < 100; ++i) prompt += "word ";
  const Tensor got = encode_prompt(pipe.tokenizer(), pipe.clip(), prompt);
  EXPECT_EQ(got.shape(), Shape({1, 154, kClipWidth}));
  const Tensor twice = repeat_tokens(encode_prompt(pipe.tokenizer(), pipe.clip(), "x"), 154);
  const std::vector<float> v = twice.to_floats();
  ASSERT_EQ(v.size(), 154u * kClipWidth);
  for (size_t i = 0; i < 77u * kClipWidth; ++i) ASSERT_EQ(v[i], v[i + 77u * kClipWidth]);
}

}  // namespace
}  // namespace darkroom::pipeline
