// Inpainting and masked image-to-image through the real executor (suite WorkflowInpaint):
// LoadImage (the mask in the PNG's alpha, or a second PNG) → VAEEncodeForInpaint /
// InpaintModelConditioning / VAEEncode + SetLatentNoiseMask → KSampler, on the 9-channel
// and the plain tiny SD 1.5 (tests/pipeline/inpaint_fixtures.h), against the golden runs of
// tools/fixtures/inpaint.py (diffusers' UNet and VAE, transformers' CLIP, k-diffusion's
// euler, ComfyUI's nodes, concat_cond and KSamplerX0Inpaint transcribed in PyTorch), and
// the nodes' declarations as nodes.py has them.
//
// Tolerances: the nodes' latents 1e-4 (f32 VAE, ops-level error), hard masks exactly, soft
// ones 1e-6 (bilinear in f32); 20-step latents 1e-3 (magnitude ~300; test_golden_sd15.cpp's
// tolerance), measured and printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "capture_node.h"
#include "io/safetensors.h"
#include "pipeline/inpaint_fixtures.h"
#include "pipeline/latent.h"
#include "run_prompt.h"
#include "test_util.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using test::captured;
using test::link;
namespace fs = std::filesystem;

const SafetensorsFile& golden() {
  static const SafetensorsFile f =
      SafetensorsFile::open(pipeline::test::inpaint_fixture("golden.safetensors"));
  return f;
}

using darkroom::test::max_abs_diff;

class WorkflowInpaint : public ::testing::Test {
 protected:
  void SetUp() override {
    pipeline::test::write_inpaint_checkpoint((env_.checkpoints() / "inpaint9.safetensors").string(),
                                             true);
    pipeline::test::write_inpaint_checkpoint((env_.checkpoints() / "plain.safetensors").string(),
                                             false);
    fs::create_directories(env_.paths().input_directory);
    for (const char* png : {"vae_inpaint.png", "model_cond.png", "model_cond_mask.png",
                            "noise_mask.png", "noise_mask_mask.png", "crop.png"})
      fs::copy_file(pipeline::test::inpaint_fixture(png),
                    fs::path(env_.paths().input_directory) / png);
    executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 32);
    captured().clear();
  }

  void run(const json& prompt) { test::run_prompt_ok(*executor_, env_.paths(), prompt); }

  static pipeline::Latent latent(const std::string& capture_id) {
    return captured().at(capture_id + ".latent").as<pipeline::Latent>();
  }

  // Checkpoint (4), prompts (6, 7), KSampler (3) on `latent_src` → capture 99.
  static json sampling_graph(const std::string& ckpt, const std::string& positive,
                             const std::string& negative, uint64_t seed, double cfg, double denoise,
                             json latent_src, json pos_src = link("6", 0),
                             json neg_src = link("7", 0)) {
    return json{
        {"4", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", ckpt}}}}},
        {"6",
         {{"class_type", "CLIPTextEncode"},
          {"inputs", {{"text", positive}, {"clip", link("4", 1)}}}}},
        {"7",
         {{"class_type", "CLIPTextEncode"},
          {"inputs", {{"text", negative}, {"clip", link("4", 1)}}}}},
        {"3", test::ksampler_node({seed, 20, cfg, "euler", "normal", denoise}, link("4", 0),
                                  std::move(pos_src), std::move(neg_src), std::move(latent_src))},
        {"99", {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("3", 0)}}}}}};
  }

  static json load_image(const std::string& file) {
    return {{"class_type", "LoadImage"}, {"inputs", {{"image", file}}}};
  }

  void expect_z(const std::string& run_name) {
    const double e = max_abs_diff(latent("99").samples, golden().tensor(run_name + ".z"));
    std::cout << run_name << " (workflow): max |dz| " << e << "\n";
    EXPECT_LE(e, 1e-3);
  }

  test::TempBase env_;
  std::unique_ptr<Executor> executor_;
};

// VAEEncodeForInpaint (mask from the PNG's alpha, grown by 6) → KSampler on the 9-channel
// model: the noise mask both keeps the unmasked latent and is the UNet's mask channel.
TEST_F(WorkflowInpaint, VaeEncodeForInpaintMatchesGolden) {
  json p = sampling_graph("inpaint9.safetensors", "a red apple on a table", "blurry", 3, 6.0, 1.0,
                          link("10", 0));
  p["1"] = load_image("vae_inpaint.png");
  p["10"] = {{"class_type", "VAEEncodeForInpaint"},
             {"inputs",
              {{"pixels", link("1", 0)},
               {"vae", link("4", 2)},
               {"mask", link("1", 1)},
               {"grow_mask_by", 6}}}};
  p["20"] = {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("10", 0)}}}};
  run(p);
  const pipeline::Latent encoded = latent("20");
  EXPECT_LE(max_abs_diff(encoded.samples, golden().tensor("vae_inpaint.latent")), 1e-4);
  ASSERT_TRUE(encoded.noise_mask);
  EXPECT_EQ(max_abs_diff(*encoded.noise_mask, golden().tensor("vae_inpaint.noise_mask")), 0.0);
  expect_z("vae_inpaint");
  EXPECT_TRUE(latent("99").noise_mask);  // carried over, as ComfyUI's KSampler returns it
}

// InpaintModelConditioning with a mask at a quarter of the image's size (a second PNG's
// alpha): the conditioning carries the mask and the masked image's latent to the UNet; with
// noise_mask the latent also keeps the unmasked part, without it only the concat steers.
TEST_F(WorkflowInpaint, InpaintModelConditioningMatchesGolden) {
  for (const bool noise_mask : {true, false}) {
    json p = sampling_graph("inpaint9.safetensors", "a blue door", "", 17, 5.0, 1.0, link("10", 2),
                            link("10", 0), link("10", 1));
    p["1"] = load_image("model_cond.png");
    p["2"] = load_image("model_cond_mask.png");
    p["10"] = {{"class_type", "InpaintModelConditioning"},
               {"inputs",
                {{"positive", link("6", 0)},
                 {"negative", link("7", 0)},
                 {"vae", link("4", 2)},
                 {"pixels", link("1", 0)},
                 {"mask", link("2", 1)},
                 {"noise_mask", noise_mask}}}};
    p["20"] = {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("10", 2)}}}};
    captured().clear();
    run(p);
    const pipeline::Latent encoded = latent("20");
    EXPECT_LE(max_abs_diff(encoded.samples, golden().tensor("model_cond.latent")), 1e-4);
    ASSERT_EQ(encoded.noise_mask.has_value(), noise_mask);
    if (noise_mask) {
      // A soft mask resized 4× by bilinear: torch's and our f32 arithmetic differ by an ulp.
      EXPECT_LE(max_abs_diff(*encoded.noise_mask, golden().tensor("model_cond.noise_mask")), 1e-6);
    }
    expect_z(noise_mask ? "model_cond" : "model_cond_nomask");
  }
}

// An inpainting model without any mask: ComfyUI's all-ones mask and gray image channels.
TEST_F(WorkflowInpaint, InpaintingModelOnAnEmptyLatentMatchesGolden) {
  json p =
      sampling_graph("inpaint9.safetensors", "a lighthouse", "ugly", 29, 7.0, 1.0, link("5", 0));
  p["5"] = {{"class_type", "EmptyLatentImage"},
            {"inputs", {{"width", 128}, {"height", 128}, {"batch_size", 1}}}};  // a 16×16 latent
  run(p);
  expect_z("empty");
}

// Masked image-to-image on the plain model: VAEEncode → SetLatentNoiseMask (a soft 8×8
// mask) → KSampler with denoise 0.7 (KSamplerX0Inpaint).
TEST_F(WorkflowInpaint, SetLatentNoiseMaskMatchesGolden) {
  json p = sampling_graph("plain.safetensors", "a green hill", "fog", 41, 6.0, 0.7, link("11", 0));
  p["1"] = load_image("noise_mask.png");
  p["2"] = load_image("noise_mask_mask.png");
  p["10"] = {{"class_type", "VAEEncode"},
             {"inputs", {{"pixels", link("1", 0)}, {"vae", link("4", 2)}}}};
  p["11"] = {{"class_type", "SetLatentNoiseMask"},
             {"inputs", {{"samples", link("10", 0)}, {"mask", link("2", 1)}}}};
  run(p);
  expect_z("noise_mask");
}

// Both nodes on a 27×35 image: VAEEncodeForInpaint crops to the VAE's ratio (grow 5, an odd
// kernel); InpaintModelConditioning's latent is the whole image's (the VAE crops it).
TEST_F(WorkflowInpaint, NodesCropLikeComfy) {
  json p = {
      {"1", load_image("crop.png")},
      {"4",
       {{"class_type", "CheckpointLoaderSimple"},
        {"inputs", {{"ckpt_name", "inpaint9.safetensors"}}}}},
      {"6", {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", ""}, {"clip", link("4", 1)}}}}},
      {"10",
       {{"class_type", "VAEEncodeForInpaint"},
        {"inputs",
         {{"pixels", link("1", 0)},
          {"vae", link("4", 2)},
          {"mask", link("1", 1)},
          {"grow_mask_by", 5}}}}},
      {"11",
       {{"class_type", "InpaintModelConditioning"},
        {"inputs",
         {{"positive", link("6", 0)},
          {"negative", link("6", 0)},
          {"vae", link("4", 2)},
          {"pixels", link("1", 0)},
          {"mask", link("1", 1)},
          {"noise_mask", true}}}}},
      {"20", {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("10", 0)}}}}},
      {"21", {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("11", 2)}}}}}};
  run(p);
  const pipeline::Latent a = latent("20");
  EXPECT_LE(max_abs_diff(a.samples, golden().tensor("crop.latent")), 1e-4);
  ASSERT_TRUE(a.noise_mask);
  EXPECT_EQ(max_abs_diff(*a.noise_mask, golden().tensor("crop.noise_mask")), 0.0);
  const pipeline::Latent b = latent("21");
  EXPECT_LE(max_abs_diff(b.samples, golden().tensor("crop.orig_latent")), 1e-4);
  ASSERT_TRUE(b.noise_mask);
  EXPECT_EQ(max_abs_diff(*b.noise_mask, golden().tensor("crop.cond_mask")), 0.0);
}

// /object_info as nodes.py declares them.
TEST_F(WorkflowInpaint, DeclarationsMatchNodesPy) {
  const NodeDecl* v = NodeRegistry::instance().find("VAEEncodeForInpaint");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->category, "latent/inpaint");
  ASSERT_EQ(v->required.size(), 4u);
  EXPECT_EQ(v->required[3].name, "grow_mask_by");
  EXPECT_EQ(v->required[3].options, json({{"default", 6}, {"min", 0}, {"max", 64}, {"step", 1}}));
  ASSERT_EQ(v->outputs.size(), 1u);
  EXPECT_EQ(v->outputs[0].type, "LATENT");
  const NodeDecl* c = NodeRegistry::instance().find("InpaintModelConditioning");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->category, "conditioning/inpaint");
  std::vector<std::string> names;
  for (const InputSpec& s : c->required) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"positive", "negative", "vae", "pixels", "mask",
                                             "noise_mask"}));
  EXPECT_EQ(c->required[5].options.at("default"), true);
  ASSERT_EQ(c->outputs.size(), 3u);
  EXPECT_EQ(c->outputs[0].name, "positive");
  EXPECT_EQ(c->outputs[1].name, "negative");
  EXPECT_EQ(c->outputs[2].name, "latent");
  EXPECT_EQ(c->outputs[2].type, "LATENT");
}

}  // namespace
}  // namespace darkroom::workflow
