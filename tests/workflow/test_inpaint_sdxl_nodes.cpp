// SDXL inpainting through the real executor (suite WorkflowInpaintSdxl): LoadImage →
// VAEEncodeForInpaint / InpaintModelConditioning (noise_mask true and false) → KSampler →
// VAEDecode on a 9-channel tiny SDXL (the family fixture's UNet with
// tools/fixtures/inpaint_sdxl.py's widened conv_in), as a single file and as a
// StableDiffusionXLInpaintPipeline diffusers folder through DiffusersLoader; the 9-channel
// model on an empty latent (no mask anywhere); VAEEncode → SetLatentNoiseMask → KSampler
// (denoise 0.7) on the plain 4-channel tiny SDXL; against that generator's golden runs (diffusers'
// 9-channel UNet2DConditionModel with text_embeds / time_ids, transformers' CLIP-L and bigG-shaped
// text models, k-diffusion's euler, ComfyUI's nodes, concat_cond and KSamplerX0Inpaint
// transcribed in PyTorch, SDXL's latent scale 0.13025).
//
// Tolerances: the nodes' latents 1e-4 (f32 VAE, ops-level error), masks exactly / 1e-6
// (bilinear of a soft mask in f32); 20-step latents 1e-3 on values of magnitude ~460 (the
// tolerance of the SD 1.5 inpainting and golden runs: f32 summation-order differences
// grown over 20 steps, measured and printed); the decoded images 1e-4 (ops-level f32 error of
// the VAE on latents within 1e-3 of the golden ones; measured ≤ 3e-6, printed). Measured
// max |dz|: 3.4e-4 (vae_inpaint), 2.7e-4 (model_cond, its folder form, model_cond_nomask,
// empty), 4.2e-5 (noise_mask: denoise 0.7 starts 20 steps at a lower sigma, values ~70).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "capture_node.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "pipeline/diffusers_folder_fixture.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/image.h"
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

std::string fixture(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/inpaint_sdxl/" + file;
}

const SafetensorsFile& golden() {
  static const SafetensorsFile f = SafetensorsFile::open(fixture("golden.safetensors"));
  return f;
}

using darkroom::test::max_abs_diff;

// The tiny SDXL single file (sgm names) with its conv_in [8, 4, 3, 3] replaced by the
// generator's 9-channel one [8, 9, 3, 3], completed like every family checkpoint.
void write_sdxl_inpaint_checkpoint(const std::string& path) {
  const std::string conv_in = "model.diffusion_model.input_blocks.0.0.weight";
  const SafetensorsFile f =
      SafetensorsFile::open(pipeline::test::family_fixture("sdxl.safetensors"));
  const SafetensorsFile widened = SafetensorsFile::open(fixture("conv_in.safetensors"));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorInfo& t : f.tensors())
    tensors.emplace_back(t.name, t.name == conv_in ? widened.tensor(conv_in) : f.tensor(t.name));
  pipeline::test::add_token_tables_and_vae(tensors, f.metadata());
  write_safetensors(path, tensors, f.metadata());
}

// The same model as a diffusers folder in StableDiffusionXLInpaintPipeline's layout: the tiny
// SDXL folder (diffusers_folder_fixture.h, the same weights as sdxl.safetensors, vae/ the tiny
// VAE) with unet/'s conv_in.weight [8, 4, 3, 3] replaced by the 9-channel one [8, 9, 3, 3]
// and the pipeline's model_index.json. `dir` must not exist yet.
void write_sdxl_inpaint_folder(const fs::path& dir) {
  pipeline::test::write_sdxl_diffusers_folder(dir);
  const fs::path weights = dir / "unet" / "diffusion_pytorch_model.safetensors";
  const Tensor conv_in = SafetensorsFile::open(fixture("conv_in.safetensors"))
                             .tensor("model.diffusion_model.input_blocks.0.0.weight");
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> meta;
  {
    const SafetensorsFile f = SafetensorsFile::open(weights.string());
    meta = f.metadata();
    for (const TensorInfo& t : f.tensors()) {
      if (t.name == "conv_in.weight") EXPECT_EQ(t.shape, (Shape{8, 4, 3, 3}));
      tensors.emplace_back(t.name, t.name == "conv_in.weight" ? conv_in : f.tensor(t.name));
    }
  }
  write_safetensors(weights.string(), tensors, meta);
  // unet/config.json says what the weights now are.
  const fs::path config = dir / "unet" / "config.json";
  json cfg = json::parse(std::ifstream(config));
  cfg["in_channels"] = 9;
  std::ofstream(config) << cfg.dump(2);
  json index = json::parse(std::ifstream(dir / "model_index.json"));
  index["_class_name"] = "StableDiffusionXLInpaintPipeline";
  std::ofstream(dir / "model_index.json") << index.dump(2);
}

class WorkflowInpaintSdxl : public ::testing::Test {
 protected:
  void SetUp() override {
    write_sdxl_inpaint_checkpoint((env_.checkpoints() / "sdxl_inpaint9.safetensors").string());
    pipeline::test::write_family_checkpoint(
        "sdxl.safetensors", (env_.checkpoints() / "sdxl_plain.safetensors").string());
    fs::create_directories(env_.paths().input_directory);
    for (const char* png : {"vae_inpaint.png", "model_cond.png", "model_cond_mask.png",
                            "noise_mask.png", "noise_mask_mask.png"})
      fs::copy_file(pipeline::test::inpaint_fixture(png),
                    fs::path(env_.paths().input_directory) / png);
    executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 32);
    captured().clear();
  }

  void run(const json& prompt) { test::run_prompt_ok(*executor_, env_.paths(), prompt); }

  static pipeline::Latent latent(const std::string& capture_id) {
    return captured().at(capture_id + ".latent").as<pipeline::Latent>();
  }

  // Checkpoint (4: `loader`, by default the 9-channel single file), KSampler (3) with
  // euler / normal / 20 steps on `latent_src`, VAEDecode (8); capture 99 holds the sampled
  // latent and the image.
  static json sampling_graph(uint64_t seed, double cfg, json latent_src, json pos_src, json neg_src,
                             double denoise = 1.0,
                             json loader = checkpoint("sdxl_inpaint9.safetensors")) {
    return json{
        {"4", std::move(loader)},
        {"3", test::ksampler_node({seed, 20, cfg, "euler", "normal", denoise}, link("4", 0),
                                  std::move(pos_src), std::move(neg_src), std::move(latent_src))},
        {"8",
         {{"class_type", "VAEDecode"},
          {"inputs", {{"samples", link("3", 0)}, {"vae", link("4", 2)}}}}},
        {"99",
         {{"class_type", "DarkroomTestCapture"},
          {"inputs", {{"latent", link("3", 0)}, {"image", link("8", 0)}}}}}};
  }

  static json checkpoint(const std::string& file) {
    return {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", file}}}};
  }

  static json text_encode(const std::string& text) {
    return {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", text}, {"clip", link("4", 1)}}}};
  }

  static json load_image(const std::string& file) {
    return {{"class_type", "LoadImage"}, {"inputs", {{"image", file}}}};
  }

  void expect_sampled(const std::string& run_name) {
    const double ez = max_abs_diff(latent("99").samples, golden().tensor(run_name + ".z"));
    const double ei = max_abs_diff(captured().at("99.image").as<pipeline::Image>(),
                                   golden().tensor(run_name + ".image"));
    std::cout << "SDXL " << run_name << " (workflow): max |dz| " << ez << ", max |dimage| " << ei
              << "\n";
    EXPECT_LE(ez, 1e-3);
    EXPECT_LE(ei, 1e-4);
  }

  // InpaintModelConditioning of model_cond.png with the quarter-size MASK of
  // model_cond_mask.png → KSampler (seed 23, cfg 5) on `loader`'s model: the positive from
  // CLIPTextEncodeSDXL (1024×768, crop 16, 8, target 896×640), the negative from
  // CLIPTextEncode (time_ids from the 24×16 latent: 192, 128, 0, 0, 192, 128); capture 20 holds
  // the node's LATENT.
  static json model_cond_graph(bool noise_mask, json loader) {
    json p = sampling_graph(23, 5.0, link("10", 2), link("10", 0), link("10", 1), 1.0,
                            std::move(loader));
    p["1"] = load_image("model_cond.png");
    p["2"] = load_image("model_cond_mask.png");
    p["6"] = {{"class_type", "CLIPTextEncodeSDXL"},
              {"inputs",
               {{"clip", link("4", 1)},
                {"width", 1024},
                {"height", 768},
                {"crop_w", 16},
                {"crop_h", 8},
                {"target_width", 896},
                {"target_height", 640},
                {"text_g", "a blue door"},
                {"text_l", "a wooden (door:1.2)"}}}};
    p["7"] = text_encode("");
    p["10"] = {{"class_type", "InpaintModelConditioning"},
               {"inputs",
                {{"positive", link("6", 0)},
                 {"negative", link("7", 0)},
                 {"vae", link("4", 2)},
                 {"pixels", link("1", 0)},
                 {"mask", link("2", 1)},
                 {"noise_mask", noise_mask}}}};
    p["20"] = {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("10", 2)}}}};
    return p;
  }

  test::TempBase env_;
  std::unique_ptr<Executor> executor_;
};

// VAEEncodeForInpaint (the PNG's alpha, grown by 6) → KSampler: the noise mask is
// KSamplerX0Inpaint's mask and the UNet's mask channel, the sampler's latent its masked
// image; CLIPTextEncode on both sides (time_ids from the 16×16 latent: 128, 128, 0, 0, 128, 128).
TEST_F(WorkflowInpaintSdxl, VaeEncodeForInpaintMatchesGolden) {
  json p = sampling_graph(8, 6.0, link("10", 0), link("6", 0), link("7", 0));
  p["1"] = load_image("vae_inpaint.png");
  p["6"] = text_encode("a red apple on a table");
  p["7"] = text_encode("blurry");
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
  expect_sampled("vae_inpaint");
}

// noise_mask true: concat_mask and the masked image's latent ride on both conditionings,
// the LATENT keeps the mask (KSamplerX0Inpaint).
TEST_F(WorkflowInpaintSdxl, InpaintModelConditioningMatchesGolden) {
  run(model_cond_graph(true, checkpoint("sdxl_inpaint9.safetensors")));
  const pipeline::Latent encoded = latent("20");
  EXPECT_LE(max_abs_diff(encoded.samples, golden().tensor("model_cond.latent")), 1e-4);
  ASSERT_TRUE(encoded.noise_mask);
  EXPECT_LE(max_abs_diff(*encoded.noise_mask, golden().tensor("model_cond.noise_mask")), 1e-6);
  expect_sampled("model_cond");
}

// noise_mask false: the LATENT has no mask, so no KSamplerX0Inpaint; the conditioning's
// concat alone steers the UNet.
TEST_F(WorkflowInpaintSdxl, InpaintModelConditioningWithoutNoiseMaskMatchesGolden) {
  run(model_cond_graph(false, checkpoint("sdxl_inpaint9.safetensors")));
  const pipeline::Latent encoded = latent("20");
  EXPECT_LE(max_abs_diff(encoded.samples, golden().tensor("model_cond.latent")), 1e-4);
  EXPECT_FALSE(encoded.noise_mask);
  expect_sampled("model_cond_nomask");
}

// The same 9-channel SDXL as a diffusers folder (StableDiffusionXLInpaintPipeline's layout:
// model_index.json, unet/ with in_channels 9, text_encoder/, text_encoder_2/, vae/) under
// models/diffusers, through DiffusersLoader: the model_cond run's golden.
TEST_F(WorkflowInpaintSdxl, DiffusersFolderMatchesTheSingleFileGolden) {
  const fs::path base = env_.paths().model_folders.at("diffusers").front();
  write_sdxl_inpaint_folder(base / "sdxl_inpaint");
  const json info = object_info("DiffusersLoader", env_.paths())["DiffusersLoader"];
  EXPECT_EQ(info["input"]["required"]["model_path"][0], json::array({"sdxl_inpaint"}));
  run(model_cond_graph(
      true, {{"class_type", "DiffusersLoader"}, {"inputs", {{"model_path", "sdxl_inpaint"}}}}));
  expect_sampled("model_cond");
}

// An inpainting model on EmptyLatentImage (128×128: a 16×16 latent), no mask anywhere:
// ComfyUI's all-ones mask channel and blank_inpaint_image_like's image channels.
TEST_F(WorkflowInpaintSdxl, InpaintingModelOnAnEmptyLatentMatchesGolden) {
  json p = sampling_graph(31, 7.0, link("5", 0), link("6", 0), link("7", 0));
  p["5"] = {{"class_type", "EmptyLatentImage"},
            {"inputs", {{"width", 128}, {"height", 128}, {"batch_size", 1}}}};
  p["6"] = text_encode("a lighthouse");
  p["7"] = text_encode("ugly");
  run(p);
  EXPECT_FALSE(latent("99").noise_mask);
  expect_sampled("empty");
}

// Masked image-to-image on the plain 4-channel SDXL: VAEEncode → SetLatentNoiseMask (the soft
// 8×8 MASK of noise_mask_mask.png) → KSampler with denoise 0.7 (KSamplerX0Inpaint).
TEST_F(WorkflowInpaintSdxl, SetLatentNoiseMaskOnThePlainModelMatchesGolden) {
  json p = sampling_graph(43, 6.0, link("11", 0), link("6", 0), link("7", 0), 0.7,
                          checkpoint("sdxl_plain.safetensors"));
  p["1"] = load_image("noise_mask.png");
  p["2"] = load_image("noise_mask_mask.png");
  p["6"] = text_encode("a green hill");
  p["7"] = text_encode("fog");
  p["10"] = {{"class_type", "VAEEncode"},
             {"inputs", {{"pixels", link("1", 0)}, {"vae", link("4", 2)}}}};
  p["11"] = {{"class_type", "SetLatentNoiseMask"},
             {"inputs", {{"samples", link("10", 0)}, {"mask", link("2", 1)}}}};
  p["20"] = {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("10", 0)}}}};
  run(p);
  EXPECT_LE(max_abs_diff(latent("20").samples, golden().tensor("noise_mask.latent")), 1e-4);
  expect_sampled("noise_mask");
}

}  // namespace
}  // namespace darkroom::workflow
