// SDXL inpainting through the real executor (suite WorkflowInpaintSdxl): LoadImage →
// VAEEncodeForInpaint / InpaintModelConditioning (noise_mask true) → KSampler → VAEDecode on
// a 9-channel tiny SDXL (the family fixture's UNet with tools/fixtures/inpaint_sdxl.py's
// widened conv_in), against that generator's golden runs (diffusers' 9-channel
// UNet2DConditionModel with text_embeds / time_ids, transformers' CLIP-L and bigG-shaped
// text models, k-diffusion's euler, ComfyUI's nodes, concat_cond and KSamplerX0Inpaint
// transcribed in PyTorch, SDXL's latent scale 0.13025).
//
// Tolerances: the nodes' latents 1e-4 (f32 VAE, ops-level error), masks exactly / 1e-6
// (bilinear of a soft mask in f32); 20-step latents 1e-3 on values of magnitude ~460 (the
// tolerance of the SD 1.5 inpainting and golden runs: f32 summation-order differences
// grown over 20 steps, measured and printed); the decoded images 1e-4 (ops-level f32 error of
// the VAE on latents within 1e-3 of the golden ones; measured ≤ 3e-6, printed).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "capture_node.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/image.h"
#include "pipeline/inpaint_fixtures.h"
#include "pipeline/latent.h"
#include "workflow/executor.h"
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

double max_abs_diff(const Tensor& got, const Tensor& ref) {
  EXPECT_EQ(got.shape(), ref.shape());
  if (got.shape() != ref.shape()) return 1e30;
  const std::vector<float> g = got.to_floats(), r = ref.to_floats();
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double e = std::fabs(static_cast<double>(g[i]) - r[i]);
    worst = std::max(worst, std::isnan(e) ? 1e30 : e);
  }
  return worst;
}

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

class WorkflowInpaintSdxl : public ::testing::Test {
 protected:
  void SetUp() override {
    write_sdxl_inpaint_checkpoint((env_.checkpoints() / "sdxl_inpaint9.safetensors").string());
    fs::create_directories(env_.paths().input_directory);
    for (const char* png : {"vae_inpaint.png", "model_cond.png", "model_cond_mask.png"})
      fs::copy_file(pipeline::test::inpaint_fixture(png),
                    fs::path(env_.paths().input_directory) / png);
    executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 32);
    captured().clear();
  }

  void run(const json& prompt) {
    const Validation v = validate_prompt(prompt, env_.paths());
    ASSERT_TRUE(v.ok) << v.error.dump(1) << v.node_errors.dump(1);
    static const std::atomic<bool> never{false};
    const ExecutionResult r =
        executor_->execute("prompt-1", prompt, json::object(), v.outputs, {}, never);
    ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
  }

  static pipeline::Latent latent(const std::string& capture_id) {
    return captured().at(capture_id + ".latent").as<pipeline::Latent>();
  }

  // Checkpoint (4), KSampler (3) with euler / normal / 20 steps on `latent_src`, VAEDecode
  // (8); capture 99 holds the sampled latent and the image.
  static json sampling_graph(uint64_t seed, double cfg, json latent_src, json pos_src,
                             json neg_src) {
    return json{{"4",
                 {{"class_type", "CheckpointLoaderSimple"},
                  {"inputs", {{"ckpt_name", "sdxl_inpaint9.safetensors"}}}}},
                {"3",
                 {{"class_type", "KSampler"},
                  {"inputs",
                   {{"seed", seed},
                    {"steps", 20},
                    {"cfg", cfg},
                    {"sampler_name", "euler"},
                    {"scheduler", "normal"},
                    {"denoise", 1.0},
                    {"model", link("4", 0)},
                    {"positive", std::move(pos_src)},
                    {"negative", std::move(neg_src)},
                    {"latent_image", std::move(latent_src)}}}}},
                {"8",
                 {{"class_type", "VAEDecode"},
                  {"inputs", {{"samples", link("3", 0)}, {"vae", link("4", 2)}}}}},
                {"99",
                 {{"class_type", "DarkroomTestCapture"},
                  {"inputs", {{"latent", link("3", 0)}, {"image", link("8", 0)}}}}}};
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

// InpaintModelConditioning (noise_mask true) with a quarter-size mask from a second PNG:
// concat_mask and the masked image's latent ride on both conditionings, next to the
// CLIPTextEncodeSDXL sizes of the positive (1024×768, crop 16, 8, target 896×640); the
// negative's time_ids come from the 24×16 latent (192, 128, 0, 0, 192, 128).
TEST_F(WorkflowInpaintSdxl, InpaintModelConditioningMatchesGolden) {
  json p = sampling_graph(23, 5.0, link("10", 2), link("10", 0), link("10", 1));
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
               {"noise_mask", true}}}};
  p["20"] = {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("10", 2)}}}};
  run(p);
  const pipeline::Latent encoded = latent("20");
  EXPECT_LE(max_abs_diff(encoded.samples, golden().tensor("model_cond.latent")), 1e-4);
  ASSERT_TRUE(encoded.noise_mask);
  EXPECT_LE(max_abs_diff(*encoded.noise_mask, golden().tensor("model_cond.noise_mask")), 1e-6);
  expect_sampled("model_cond");
}

}  // namespace
}  // namespace darkroom::workflow
