// Inpainting models (suite Inpaint): 9-channel UNets load from single files and diffusers
// folders (SD 1.5 and SDXL), inpaint_concat is ComfyUI's BaseModel.concat_cond, and the
// sampler with those channels reproduces tools/fixtures/inpaint.py's golden runs
// (data/inpaint/golden.safetensors: diffusers' 9-channel UNet and VAE, transformers' CLIP,
// k-diffusion's euler, ComfyUI's preprocessing and concat_cond transcribed in PyTorch).
//
// Tolerances: concat_cond's values (bilinear resizes, rounding, copies) 1e-6; the nodes'
// VAE latents 1e-4 (ops-level f32 error); whole 20-step runs 1e-3 on latents of magnitude
// ~300, as test_golden_sd15.cpp (measured below, printed).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/clip_encode.h"
#include "pipeline/diffusers_folder_fixture.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/inpaint.h"
#include "pipeline/inpaint_fixtures.h"
#include "pipeline/inpaint_pixels.h"
#include "pipeline/ksampler.h"
#include "pipeline/vae_encode.h"
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

const SafetensorsFile& golden() {
  static const SafetensorsFile f =
      SafetensorsFile::open(test::inpaint_fixture("golden.safetensors"));
  return f;
}

using darkroom::test::max_abs_diff;

// A u8 [1, H, W, 3] tensor as IMAGE values (LoadImage: v / 255).
Tensor pixels_of(const Tensor& u8) {
  std::vector<float> v = u8.to_floats();
  for (float& e : v) e /= 255.0f;
  return Tensor::from_floats(v, u8.shape());
}

KSamplerParams euler(uint64_t seed, double cfg, double denoise) {
  KSamplerParams p;
  p.seed = seed;
  p.cfg = cfg;
  p.steps = 20;
  p.sampler = "euler";
  p.scheduler = "normal";
  p.denoise = denoise;
  return p;
}

class Inpaint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "darkroom-inpaint-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = new fs::path(tmpl);
    test::write_inpaint_checkpoint((*root_ / "inpaint9.safetensors").string(), true);
    sd15_ = new LoadedCheckpoint(load_checkpoint((*root_ / "inpaint9.safetensors").string(),
                                                 shared_tokenizer(), DType::F32));
  }
  static void TearDownTestSuite() {
    delete sd15_;
    std::error_code ec;
    fs::remove_all(*root_, ec);
    delete root_;
  }

  // vae_inpaint: VAEEncodeForInpaint's latent and noise mask (checked against the golden
  // in the workflow test) sampled with the 9-channel model.
  static double vae_inpaint_error(const LoadedCheckpoint& ck) {
    Latent latent;
    latent.samples = golden().tensor("vae_inpaint.latent");
    latent.noise_mask = golden().tensor("vae_inpaint.noise_mask");
    const Latent out = ksample(ck.model, {encode_text(ck.clip, "a red apple on a table")},
                               {encode_text(ck.clip, "blurry")}, latent, euler(3, 6.0, 1.0));
    return max_abs_diff(out.samples, golden().tensor("vae_inpaint.z"));
  }

  static fs::path* root_;
  static LoadedCheckpoint* sd15_;
};

fs::path* Inpaint::root_ = nullptr;
LoadedCheckpoint* Inpaint::sd15_ = nullptr;

TEST_F(Inpaint, NineChannelSingleFileIsAnSd15InpaintingModel) {
  EXPECT_EQ(sd15_->model.family, ModelFamily::Sd15);
  EXPECT_EQ(sd15_->model.unet->config().in_channels, 9);
  EXPECT_EQ(sd15_->model.unet->config().out_channels, 4);
  EXPECT_EQ(concat_channels(sd15_->model, 4), 5);
  const LoadedCheckpoint plain = [&] {
    test::write_inpaint_checkpoint((*root_ / "plain.safetensors").string(), false);
    return load_checkpoint((*root_ / "plain.safetensors").string(), shared_tokenizer(), DType::F32);
  }();
  EXPECT_EQ(concat_channels(plain.model, 4), 0);
  EXPECT_FALSE(inpaint_concat(plain.model, CondEntry{}, Tensor::zeros({1, 8, 8, 4}, DType::F32),
                              std::nullopt)
                   .defined());
  // A latent that fits neither way is refused with what the model takes.
  darkroom::test::expect_error([&] { concat_channels(sd15_->model, 3); },
                               "[KSampler] the latent has 3 channels but the model takes 9");
}

// concat_cond with a concat_mask / concat_latent_image of other sizes and batches (centre
// crop + bilinear, resize_to_batch_size), and with the sampler's noise mask and latent.
TEST_F(Inpaint, ConcatIsComfysConcatCond) {
  CondEntry e;
  e.concat_latent_image = golden().tensor("concat.concat_latent_image");  // [2, 12, 16, 4]
  e.concat_mask = golden().tensor("concat.concat_mask");                  // [2, 24, 32]
  const Tensor latent_in = golden().tensor("concat.latent_in");           // [3, 16, 16, 4]
  const Tensor a = inpaint_concat(sd15_->model, e, latent_in, std::nullopt);
  EXPECT_LE(max_abs_diff(a, golden().tensor("concat.out")), 1e-6);
  const Tensor b =
      inpaint_concat(sd15_->model, CondEntry{}, latent_in, golden().tensor("concat.noise_mask"));
  EXPECT_LE(max_abs_diff(b, golden().tensor("concat.out_denoise_mask")), 1e-6);
  // No mask anywhere: ones and the gray image's latent of blank_inpaint_image_like.
  const Tensor c = inpaint_concat(sd15_->model, CondEntry{}, latent_in, std::nullopt);
  ASSERT_EQ(c.shape(), Shape({3, 16, 16, 5}));
  const std::vector<float> v = c.to_floats();
  const float want[5] = {1.0f, 0.8223f, -0.6876f, 0.6364f, 0.1380f};
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], want[i % 5]) << i;
}

// The nodes' pixel preparation on a 27×35 image (both sides cropped): VAEEncodeForInpaint
// (the VAE's ratio, grow 5) and InpaintModelConditioning (multiples of 8, the whole image's
// latent), against ComfyUI's code transcribed in the generator.
TEST_F(Inpaint, PixelPreparationMatchesComfy) {
  const Tensor pixels = pixels_of(golden().tensor("crop.pixels"));
  const Tensor mask = golden().tensor("crop.mask");
  const VaeHandle& vae = sd15_->vae;
  const MaskedPixels a = mask_pixels(pixels, mask, vae.scale(), "test");
  EXPECT_EQ(max_abs_diff(grow_mask(a.mask, 5), golden().tensor("crop.noise_mask")), 0.0);
  EXPECT_LE(max_abs_diff(vae_encode(vae, a.pixels, "test"), golden().tensor("crop.latent")), 1e-4);
  const MaskedPixels b = mask_pixels(pixels, mask, 8, "test");
  EXPECT_EQ(max_abs_diff(b.mask, golden().tensor("crop.cond_mask")), 0.0);
  EXPECT_LE(max_abs_diff(vae_encode(vae, b.pixels, "test"), golden().tensor("crop.concat_latent")),
            1e-4);
  EXPECT_LE(max_abs_diff(vae_encode(vae, pixels, "test"), golden().tensor("crop.orig_latent")),
            1e-4);
  // Even kernels grow one pixel more down and right (padding 3 for 6): a single pixel
  // becomes rows/cols -2..+3 around it.
  std::vector<float> dot(10 * 10, 0.0f);
  dot[4 * 10 + 4] = 1.0f;
  const std::vector<float> g = grow_mask(Tensor::from_floats(dot, {1, 10, 10}), 6).to_floats();
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 10; ++x)
      EXPECT_EQ(g[y * 10 + x], (y >= 2 && y <= 7 && x >= 2 && x <= 7) ? 1.0f : 0.0f)
          << y << "," << x;
}

TEST_F(Inpaint, NineChannelRunMatchesGolden) {
  const double e = vae_inpaint_error(*sd15_);
  std::cout << "vae_inpaint (single file): max |dz| " << e << "\n";
  EXPECT_LE(e, 1e-3);
}

// The same inpainting UNet as a StableDiffusionInpaintPipeline folder (unet/ with
// in_channels 9, the CLIP as a transformers CLIPTextModel file) gives the same run.
TEST_F(Inpaint, DiffusersInpaintFolderMatchesGolden) {
  const fs::path dir = *root_ / "sd15_inpaint";
  const std::string tiny = std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/diffusers/";
  fs::create_directories(dir / "text_encoder");
  fs::create_directories(dir / "unet");
  fs::copy(tiny + "vae", dir / "vae", fs::copy_options::recursive);
  std::ofstream(dir / "model_index.json") << R"({"_class_name": "StableDiffusionInpaintPipeline",
      "text_encoder": ["transformers", "CLIPTextModel"], "unet": ["diffusers", "UNet2DConditionModel"],
      "vae": ["diffusers", "AutoencoderKL"]})";
  std::ifstream config_in(tiny + "unet/config.json");
  std::string config((std::istreambuf_iterator<char>(config_in)), std::istreambuf_iterator<char>());
  const std::string four = "\"in_channels\": 4";
  ASSERT_NE(config.find(four), std::string::npos);
  config.replace(config.find(four), four.size(), "\"in_channels\": 9");
  std::ofstream(dir / "unet" / "config.json") << config;
  const SafetensorsFile unet =
      SafetensorsFile::open(tiny + "unet/diffusion_pytorch_model.safetensors");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorInfo& t : unet.tensors())
    tensors.emplace_back(
        t.name, t.name == "conv_in.weight" ? test::inpaint_conv_in(t.name) : unet.tensor(t.name));
  write_safetensors((dir / "unet" / "diffusion_pytorch_model.safetensors").string(), tensors);
  std::ofstream(dir / "text_encoder" / "config.json")
      << R"({"architectures": ["CLIPTextModel"], "hidden_act": "quick_gelu", "hidden_size": 32,
             "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": 49408})";
  const SafetensorsFile clip =
      SafetensorsFile::open(std::string(DARKROOM_TEST_DATA) + "/pipeline/clip32.safetensors");
  const std::string prefix = "cond_stage_model.transformer.";  // → "text_model.*"
  tensors.clear();
  for (const TensorInfo& t : clip.tensors())
    if (t.name.starts_with(prefix))
      tensors.emplace_back(t.name.substr(prefix.size()), clip.tensor(t.name));
  sampling::TorchGenerator gen(20240611);
  tensors.emplace_back("text_model.embeddings.token_embedding.weight", gen.randn({49408, 32}));
  write_safetensors((dir / "text_encoder" / "model.safetensors").string(), tensors);

  const LoadedCheckpoint ck = load_checkpoint(dir.string(), shared_tokenizer(), DType::F32);
  EXPECT_EQ(ck.model.family, ModelFamily::Sd15);
  EXPECT_EQ(ck.model.unet->config().in_channels, 9);
  const double e = vae_inpaint_error(ck);
  std::cout << "vae_inpaint (diffusers folder): max |dz| " << e << "\n";
  EXPECT_LE(e, 1e-3);
}

// SDXL inpainting (diffusers/stable-diffusion-xl-1.0-inpainting-0.1 has the same 9-channel
// conv_in): the tiny SDXL of tools/fixtures/sdxl_pipeline.py with its conv_in widened.
// With the 5 new input channels' weights zero the widened model must sample exactly as
// the plain one (the inpainting channels reach the UNet next to the latent and nothing
// else changes); with random ones it must not.
class InpaintSdxl : public Inpaint {
 protected:
  // The completed tiny SDXL checkpoint with conv_in [C, 4, 3, 3] widened to 9 channels:
  // zeros, or seeded random values.
  static std::string plain_path() {
    const std::string plain = (*root_ / "sdxl.safetensors").string();
    if (!fs::exists(plain)) test::write_family_checkpoint("sdxl.safetensors", plain);
    return plain;
  }

  static std::string widened(const std::string& name, bool random_extra) {
    const SafetensorsFile f = SafetensorsFile::open(plain_path());
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const TensorInfo& t : f.tensors()) {
      Tensor v = f.tensor(t.name);
      if (t.name == "model.diffusion_model.input_blocks.0.0.weight") v = widen(v, random_extra);
      tensors.emplace_back(t.name, v);
    }
    const std::string path = (*root_ / name).string();
    write_safetensors(path, tensors, f.metadata());
    return path;
  }

  static Tensor widen(const Tensor& w4, bool random_extra) {
    const int64_t co = w4.dim(0), k = w4.dim(2) * w4.dim(3);
    const std::vector<float> src = w4.to_floats();
    const std::vector<float> extra =
        darkroom::test::random_tensor({co * 5 * k}, DType::F32, 77, -0.3f, 0.3f).to_floats();
    std::vector<float> out(static_cast<size_t>(co * 9 * k), 0.0f);
    for (int64_t o = 0; o < co; ++o)
      for (int64_t i = 0; i < 9; ++i)
        for (int64_t j = 0; j < k; ++j)
          out[static_cast<size_t>((o * 9 + i) * k + j)] =
              i < 4 ? src[static_cast<size_t>((o * 4 + i) * k + j)]
                    : (random_extra ? extra[static_cast<size_t>((o * 5 + i - 4) * k + j)] : 0.0f);
    return Tensor::from_floats(out, {co, 9, w4.dim(2), w4.dim(3)});
  }

  static Tensor sample(const LoadedCheckpoint& ck) {
    Latent latent;
    latent.samples = Tensor::zeros({1, 16, 16, 4}, DType::F32);
    std::vector<float> m(16 * 16, 0.0f);
    for (int y = 4; y < 12; ++y)
      for (int x = 2; x < 9; ++x) m[y * 16 + x] = 1.0f;
    latent.noise_mask = Tensor::from_floats(m, {1, 16, 16});
    KSamplerParams p = euler(5, 5.0, 1.0);
    p.steps = 4;
    return ksample(ck.model, {encode_text(ck.clip, "a cat")}, {encode_text(ck.clip, "")}, latent, p)
        .samples;
  }
};

TEST_F(InpaintSdxl, NineChannelSdxlLoadsAndTakesTheInpaintingChannels) {
  const LoadedCheckpoint plain = load_checkpoint(plain_path(), shared_tokenizer(), DType::F32);
  const LoadedCheckpoint zero =
      load_checkpoint(widened("sdxl9_zero.safetensors", false), shared_tokenizer(), DType::F32);
  EXPECT_EQ(zero.model.family, ModelFamily::Sdxl);
  EXPECT_EQ(zero.model.unet->config().in_channels, 9);
  EXPECT_EQ(concat_channels(zero.model, 4), 5);
  const Tensor want = sample(plain);
  const double e = max_abs_diff(sample(zero), want);
  std::cout << "SDXL 9-channel (zero extra weights) vs plain: max |dz| " << e << "\n";
  EXPECT_LE(e, 1e-3);
  const LoadedCheckpoint rnd =
      load_checkpoint(widened("sdxl9_rand.safetensors", true), shared_tokenizer(), DType::F32);
  EXPECT_GT(max_abs_diff(sample(rnd), want), 1e-2);
}

TEST_F(InpaintSdxl, SdxlInpaintDiffusersFolderLoads) {
  const fs::path dir = *root_ / "sdxl_inpaint";
  test::write_sdxl_diffusers_folder(dir);
  const fs::path weights = dir / "unet" / "diffusion_pytorch_model.safetensors";
  std::vector<std::pair<std::string, Tensor>> tensors;
  {
    const SafetensorsFile f = SafetensorsFile::open(weights.string());
    for (const TensorInfo& t : f.tensors()) {
      Tensor v = f.tensor(t.name);
      tensors.emplace_back(t.name, t.name == "conv_in.weight" ? widen(v, false) : v);
    }
  }
  write_safetensors(weights.string() + ".tmp", tensors);
  fs::rename(weights.string() + ".tmp", weights);
  std::ofstream(dir / "model_index.json") << R"({"_class_name": "StableDiffusionXLInpaintPipeline",
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})";
  const LoadedCheckpoint ck = load_checkpoint(dir.string(), shared_tokenizer(), DType::F32);
  EXPECT_EQ(ck.model.family, ModelFamily::Sdxl);
  EXPECT_EQ(ck.model.unet->config().in_channels, 9);
  const LoadedCheckpoint plain = load_checkpoint(plain_path(), shared_tokenizer(), DType::F32);
  const double e = max_abs_diff(sample(ck), sample(plain));
  std::cout << "SDXL inpainting folder (zero extra weights) vs plain file: max |dz| " << e << "\n";
  EXPECT_LE(e, 1e-3);
}

}  // namespace
}  // namespace darkroom::pipeline
