// Golden end-to-end runs of the SDXL, SDXL refiner and SD 2.x (v-prediction) families:
// single-file checkpoints in the original key names (sgm / ldm; OpenCLIP text towers in
// OpenCLIP's names) loaded by load_checkpoint (family detection, text encoders, UNet, VAE,
// latent scale, prediction), prompts encoded as ComfyUI's CLIPTextEncode /
// CLIPTextEncodeSDXL / CLIPTextEncodeSDXLRefiner do (pipeline/clip_encode.h), KSampler
// through pipeline::ksample with the UNet's vector input y built per entry (adm.h), then
// VAEDecode; against the same runs made by tools/fixtures/sdxl_pipeline.py from
// transformers' CLIP models, diffusers' UNets (text_time) and VAE, k-diffusion's samplers
// and ComfyUI's rules (data/pipeline/families/; see the script).
//
// The files lack the 49408-row token tables and the VAE: family_fixtures.h completes each
// into a temporary checkpoint file before it is loaded. The torch.save copies of the SDXL,
// refiner and SD 2.x files (tools/fixtures/family_ckpt.py) run the same goldens as .ckpt files.
//
// Tolerance: f32 on both sides; the brief's 1e-3 max abs on latents of magnitude ~400
// and on the images; the text side and y at 1e-4.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "pipeline/adm.h"
#include "pipeline/checkpoint.h"
#include "pipeline/checkpoint_loader.h"
#include "pipeline/clip_encode.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/ksampler.h"
#include "test_util.h"

namespace darkroom::pipeline {
namespace {

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/" + file;
}

const SafetensorsFile& golden() {
  static const SafetensorsFile f =
      SafetensorsFile::open(data("pipeline/families/golden.safetensors"));
  return f;
}

std::shared_ptr<const text::ClipTokenizer> tokenizer() {
  static const auto t = std::make_shared<const text::ClipTokenizer>(
      text::ClipTokenizer::load(std::string(DARKROOM_CLIP_DATA) + "/sd1_tokenizer",
                                std::string(DARKROOM_CLIP_DATA) + "/bpe_simple_vocab_16e6.txt.gz"));
  return t;
}

// The fixture completed into a loadable file (family_fixtures.h), in /tmp: "x.safetensors",
// or "x.ckpt" (the torch.save copy, written again as torch.save).
std::string complete_checkpoint(const std::string& name) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("darkroom_golden_" + std::to_string(::getpid()) + "_" + name))
                               .string();
  if (name.ends_with(".ckpt"))
    test::write_family_ckpt(name, path);
  else
    test::write_family_checkpoint(name, path);
  return path;
}

const LoadedCheckpoint& checkpoint(const std::string& name,
                                   const std::string& ext = ".safetensors") {
  static std::map<std::string, LoadedCheckpoint> cache;
  auto it = cache.find(name + ext);
  if (it == cache.end()) {
    const std::string path = complete_checkpoint(name + ext);
    it = cache.emplace(name + ext, load_checkpoint(path, tokenizer(), DType::F32)).first;
    std::filesystem::remove(path);
  }
  return it->second;
}

using darkroom::test::max_abs_diff;

struct Run {
  std::string model;
  std::string positive, negative;
  std::string text_g, text_l;  // CLIPTextEncodeSDXL when set
  SizeCond sizes;              // the positive's node numbers
  KSamplerParams params;
  int64_t batch = 1, latent_h = 16, latent_w = 16;
};

KSamplerParams params(const std::string& sampler, const std::string& scheduler, uint64_t seed,
                      double cfg, int steps) {
  KSamplerParams p;
  p.sampler = sampler;
  p.scheduler = scheduler;
  p.seed = seed;
  p.cfg = cfg;
  p.steps = steps;
  return p;
}

// tools/fixtures/sdxl_pipeline.py's RUNS, parameter for parameter (pixels / 2 = latent).
std::map<std::string, Run> runs() {
  std::map<std::string, Run> m;
  Run a;
  a.model = "sdxl";
  a.positive = "a photo of a (red:1.3) cat";
  a.negative = "blurry";
  a.params = params("euler", "normal", 42, 5.0, 10);
  a.batch = 2;
  m["sdxl_euler"] = a;

  Run b;
  b.model = "sdxl";
  b.text_g = "a lighthouse at dusk";
  b.text_l = "oil painting, (detailed:1.2)";
  b.sizes.width = 1024;
  b.sizes.height = 768;
  b.sizes.crop_w = 16;
  b.sizes.crop_h = 8;
  b.sizes.target_width = 896;
  b.sizes.target_height = 640;
  b.negative = "";
  b.params = params("dpmpp_2m", "karras", 7, 6.0, 10);
  b.latent_h = 24;
  m["sdxl_nodes_dpmpp_2m"] = b;

  Run c;
  c.model = "sdxl_refiner";
  c.positive = "a castle on a hill";
  c.sizes.aesthetic_score = 7.5;
  c.sizes.width = 1024;
  c.sizes.height = 1024;
  c.negative = "low quality";
  c.params = params("euler", "normal", 11, 4.0, 8);
  m["refiner_euler"] = c;

  Run d;
  d.model = "sd2";
  d.positive = "a snowy mountain(, sunrise:1.1)";
  d.negative = "";
  d.params = params("euler", "normal", 5, 7.0, 10);
  m["sd2_v_euler"] = d;
  return m;
}

void check_run(const std::string& name, const std::string& ext = ".safetensors") {
  const Run r = runs().at(name);
  const LoadedCheckpoint& ck = checkpoint(r.model, ext);
  CondEntry pos = r.text_g.empty() ? encode_text(ck.clip, r.positive)
                                   : encode_text(ck.clip, r.text_g, r.text_l);
  pos.size = r.sizes;
  const CondEntry neg = encode_text(ck.clip, r.negative);

  EXPECT_LE(max_abs_diff(pos.context, golden().tensor(name + ".context")), 1e-4) << "context";
  if (golden().find(name + ".pooled") != nullptr) {
    EXPECT_LE(max_abs_diff(pos.pooled, golden().tensor(name + ".pooled")), 1e-4) << "pooled";
    const Tensor y = encode_adm(ck.model.family, pos, false, r.latent_h, r.latent_w);
    EXPECT_LE(max_abs_diff(y, golden().tensor(name + ".y")), 1e-4) << "y";
  } else {
    EXPECT_FALSE(pos.pooled.defined());
  }

  Latent latent;
  latent.samples = Tensor::zeros({r.batch, r.latent_h, r.latent_w, 4}, DType::F32);
  const Latent out = ksample(ck.model, {pos}, {neg}, latent, r.params);
  const Tensor image = ck.vae.vae->decode(out.samples);
  const double ez = max_abs_diff(out.samples, golden().tensor(name + ".z"));
  const double ei = max_abs_diff(image, golden().tensor(name + ".image"));
  std::cout << name << " (" << ext << "): max |dz| " << ez << ", max |dimage| " << ei << "\n";
  EXPECT_LE(ez, 1e-3);
  EXPECT_LE(ei, 1e-3);
}

TEST(GoldenFamilies, FilesAreDetectedAndLoadedAsTheirFamily) {
  const LoadedCheckpoint& xl = checkpoint("sdxl");
  EXPECT_EQ(xl.model.family, ModelFamily::Sdxl);
  EXPECT_EQ(xl.clip.family, ModelFamily::Sdxl);
  ASSERT_TRUE(xl.clip.encoder && xl.clip.open_clip);
  EXPECT_EQ(xl.clip.encoder->config().width, 32);
  EXPECT_EQ(xl.clip.open_clip->config().width, 48);
  EXPECT_EQ(xl.clip.open_clip->config().projection_dim, 32);
  EXPECT_EQ(xl.clip.clip_skip, 2);
  EXPECT_EQ(xl.model.unet->config().context_dim, 80);
  EXPECT_EQ(xl.model.unet->config().adm_in_channels, 32 + 6 * 256);
  EXPECT_FLOAT_EQ(xl.model.latent_scale, 0.13025f);
  EXPECT_EQ(xl.model.latent_format, "sdxl");
  EXPECT_EQ(xl.model.sampling.prediction, sampling::Prediction::Eps);

  const LoadedCheckpoint& rf = checkpoint("sdxl_refiner");
  EXPECT_EQ(rf.model.family, ModelFamily::SdxlRefiner);
  EXPECT_FALSE(rf.clip.encoder);
  ASSERT_TRUE(rf.clip.open_clip);
  EXPECT_EQ(rf.model.unet->config().adm_in_channels, 32 + 5 * 256);
  EXPECT_EQ(rf.model.unet->config().channel_mult, (std::vector<int>{1, 2, 3, 3}));
  EXPECT_EQ(rf.model.unet->config().transformer_depth, (std::vector<int>{0, 1, 1, 0}));
  EXPECT_FLOAT_EQ(rf.model.latent_scale, 0.13025f);

  const LoadedCheckpoint& sd2 = checkpoint("sd2");
  EXPECT_EQ(sd2.model.family, ModelFamily::Sd2);
  EXPECT_FALSE(sd2.clip.encoder);
  ASSERT_TRUE(sd2.clip.open_clip);
  EXPECT_TRUE(sd2.model.unet->config().linear_proj);
  EXPECT_EQ(sd2.model.unet->config().adm_in_channels, 0);
  EXPECT_EQ(sd2.model.sampling.prediction, sampling::Prediction::V);
  EXPECT_FLOAT_EQ(sd2.model.latent_scale, 0.18215f);
  EXPECT_EQ(sd2.model.latent_format, "sd15");
}

TEST(GoldenFamilies, SdxlClipTextEncodeEuler) {
  check_run("sdxl_euler");
}

TEST(GoldenFamilies, SdxlClipTextEncodeSdxlDpmpp2mKarras) {
  check_run("sdxl_nodes_dpmpp_2m");
}

TEST(GoldenFamilies, SdxlRefinerEuler) {
  check_run("refiner_euler");
}

TEST(GoldenFamilies, Sd2VPredictionEuler) {
  check_run("sd2_v_euler");
}

// The torch.save copies (tools/fixtures/family_ckpt.py: torch.save of the same tensors, f8
// widened to f16, the metadata as string entries of the state dict) hold what the
// .safetensors files hold, as the torch.save reader sees them ...
TEST(GoldenFamilies, CkptCopiesHoldTheSafetensorsTensors) {
  for (const std::string name : {"sdxl", "sdxl_refiner", "sd2"}) {
    const CheckpointFile ck = CheckpointFile::open(test::family_fixture(name + ".ckpt"));
    const SafetensorsFile st = SafetensorsFile::open(test::family_fixture(name + ".safetensors"));
    ASSERT_TRUE(ck.is_torch_save());
    ASSERT_EQ(ck.tensors().size(), st.tensors().size()) << name;
    const Weights w = ck.weights("", kCpu, DType::F32);
    for (const TensorInfo& t : st.tensors()) {
      ASSERT_TRUE(ck.has(t.name)) << name << ": " << t.name;
      EXPECT_EQ(max_abs_diff(w.get(t.name), st.tensor(t.name)), 0.0) << name << ": " << t.name;
    }
    for (const auto& [k, v] : st.metadata())
      if (k.starts_with("darkroom.")) EXPECT_EQ(ck.metadata().at(k), v) << name << ": " << k;
  }
}

// ... and load_checkpoint on the completed .ckpt runs the same goldens.
TEST(GoldenFamilies, CkptSdxlClipTextEncodeEuler) {
  check_run("sdxl_euler", ".ckpt");
}

TEST(GoldenFamilies, CkptSdxlRefinerEuler) {
  check_run("refiner_euler", ".ckpt");
}

TEST(GoldenFamilies, CkptSd2VPredictionEuler) {
  check_run("sd2_v_euler", ".ckpt");
}

// CLIPTextEncodeSDXL pads the shorter encoder's tokens with whole empty-prompt chunks: a
// text_l of two chunks against a one-chunk text_g gives 154 tokens on both, and the
// second chunk of G is G's encoding of "".
TEST(GoldenFamilies, SdxlPadsTheShorterTextWithEmptyChunks) {
  const ClipHandle& clip = checkpoint("sdxl").clip;
  std::string long_text;
  for (int i = 0; i < 90; ++i) long_text += "cat ";
  const CondEntry e = encode_text(clip, "a dog", long_text);
  ASSERT_EQ(e.context.shape(), Shape({1, 154, 80}));
  const CondEntry empty = encode_text(clip, "", "");
  const std::vector<float> v = e.context.to_floats(), z = empty.context.to_floats();
  double worst = 0;
  for (int64_t t = 0; t < 77; ++t)
    for (int64_t c = 32; c < 80; ++c)  // G's channels of the second chunk
      worst =
          std::max(worst, std::fabs(static_cast<double>(v[((77 + t) * 80) + c]) - z[(t * 80) + c]));
  EXPECT_LE(worst, 1e-5);
}

}  // namespace
}  // namespace darkroom::pipeline
