// SDXL-family workflows through the real executor (suite WorkflowFamilies):
// CheckpointLoaderSimple on the tiny SDXL / refiner / SD 2.x checkpoints, the
// CLIPTextEncodeSDXL and CLIPTextEncodeSDXLRefiner nodes, KSampler and VAEDecode, against
// the golden images of tools/fixtures/sdxl_pipeline.py (diffusers + transformers +
// k-diffusion with ComfyUI's rules), and the nodes' declarations as ComfyUI has them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "capture_node.h"
#include "io/safetensors.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/image.h"
#include "run_prompt.h"
#include "test_util.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using test::link;

using test::captured;

using darkroom::test::max_abs_diff;

// The golden decoder output [-1, 1] as VAEDecode hands it on: clamp((x + 1) / 2, 0, 1).
Tensor golden_image(const std::string& run) {
  static const SafetensorsFile f =
      SafetensorsFile::open(pipeline::test::family_fixture("golden.safetensors"));
  const Tensor t = f.tensor(run + ".image");
  std::vector<float> v = t.to_floats();
  for (float& x : v) x = std::clamp((x + 1.0f) / 2.0f, 0.0f, 1.0f);
  return Tensor::from_floats(v, t.shape());
}

class WorkflowFamilies : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"sdxl.safetensors", "sdxl_refiner.safetensors", "sd2.safetensors"})
      pipeline::test::write_family_checkpoint(name, (env_.checkpoints() / name).string());
    executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 32);
    captured().clear();
  }

  // Runs `prompt` (which must hold a capture node "99" on the image) and returns the image.
  Tensor run(const json& prompt) {
    test::run_prompt_ok(*executor_, env_.paths(), prompt);
    return captured().at("99.image").as<pipeline::Image>();
  }

  // KSampler → VAEDecode → capture, with the encoders at nodes 6 (positive), 7 (negative).
  static json graph(const std::string& ckpt, json positive, json negative, int width, int height,
                    uint64_t seed, int steps, double cfg, const std::string& sampler,
                    const std::string& scheduler) {
    return json{
        {"4", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", ckpt}}}}},
        {"5",
         {{"class_type", "EmptyLatentImage"},
          {"inputs", {{"width", width}, {"height", height}, {"batch_size", 1}}}}},
        {"6", std::move(positive)},
        {"7", std::move(negative)},
        {"3", test::ksampler_node({seed, steps, cfg, sampler, scheduler, 1.0}, link("4", 0),
                                  link("6", 0), link("7", 0), link("5", 0))},
        {"8",
         {{"class_type", "VAEDecode"},
          {"inputs", {{"samples", link("3", 0)}, {"vae", link("4", 2)}}}}},
        {"99", {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"image", link("8", 0)}}}}}};
  }

  static json text_encode(const std::string& text) {
    return {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", text}, {"clip", link("4", 1)}}}};
  }

  test::TempBase env_;
  std::unique_ptr<Executor> executor_;
};

// EmptyLatentImage divides by 8 and the tiny VAE doubles: 128×192 pixels is the golden
// run's 16×24 latent (its 32×48 image).
TEST_F(WorkflowFamilies, ClipTextEncodeSdxlMatchesTheGoldenRun) {
  const json positive = {{"class_type", "CLIPTextEncodeSDXL"},
                         {"inputs",
                          {{"clip", link("4", 1)},
                           {"width", 1024},
                           {"height", 768},
                           {"crop_w", 16},
                           {"crop_h", 8},
                           {"target_width", 896},
                           {"target_height", 640},
                           {"text_g", "a lighthouse at dusk"},
                           {"text_l", "oil painting, (detailed:1.2)"}}}};
  const Tensor image = run(graph("sdxl.safetensors", positive, text_encode(""), 128, 192, 7, 10,
                                 6.0, "dpmpp_2m", "karras"));
  EXPECT_LE(max_abs_diff(image, golden_image("sdxl_nodes_dpmpp_2m")), 1e-3);
}

TEST_F(WorkflowFamilies, ClipTextEncodeSdxlRefinerMatchesTheGoldenRun) {
  const json positive = {{"class_type", "CLIPTextEncodeSDXLRefiner"},
                         {"inputs",
                          {{"ascore", 7.5},
                           {"width", 1024},
                           {"height", 1024},
                           {"text", "a castle on a hill"},
                           {"clip", link("4", 1)}}}};
  const Tensor image = run(graph("sdxl_refiner.safetensors", positive, text_encode("low quality"),
                                 128, 128, 11, 8, 4.0, "euler", "normal"));
  EXPECT_LE(max_abs_diff(image, golden_image("refiner_euler")), 1e-3);
}

TEST_F(WorkflowFamilies, Sd2VPredictionMatchesTheGoldenRun) {
  const Tensor image = run(graph("sd2.safetensors", text_encode("a snowy mountain(, sunrise:1.1)"),
                                 text_encode(""), 128, 128, 5, 10, 7.0, "euler", "normal"));
  EXPECT_LE(max_abs_diff(image, golden_image("sd2_v_euler")), 1e-3);
}

// SDXL-Turbo's graph: SDTurboScheduler (2 steps) → SamplerCustom (cfg 1, euler_ancestral
// from KSamplerSelect) on the tiny SDXL.
TEST_F(WorkflowFamilies, SdTurboSchedulerAndSamplerCustomMatchTheGoldenRun) {
  json prompt = graph("sdxl.safetensors", text_encode("a cinematic shot of a fox"), text_encode(""),
                      128, 128, 0, 1, 1.0, "euler", "normal");
  prompt.erase("3");
  prompt["20"] = {{"class_type", "KSamplerSelect"},
                  {"inputs", {{"sampler_name", "euler_ancestral"}}}};
  prompt["21"] = {{"class_type", "SDTurboScheduler"},
                  {"inputs", {{"model", link("4", 0)}, {"steps", 2}, {"denoise", 1.0}}}};
  prompt["3"] = {{"class_type", "SamplerCustom"},
                 {"inputs",
                  {{"model", link("4", 0)},
                   {"add_noise", true},
                   {"noise_seed", 3},
                   {"cfg", 1.0},
                   {"positive", link("6", 0)},
                   {"negative", link("7", 0)},
                   {"sampler", link("20", 0)},
                   {"sigmas", link("21", 0)},
                   {"latent_image", link("5", 0)}}}};
  const Tensor image = run(prompt);
  EXPECT_LE(max_abs_diff(image, golden_image("sdxl_turbo")), 1e-3);
}

// comfy_extras/nodes_clip_sdxl.py: inputs in order, with their defaults and ranges.
TEST(WorkflowFamiliesDecl, SdxlTextNodesAreDeclaredAsInComfyUi) {
  const NodeDecl* sdxl = NodeRegistry::instance().find("CLIPTextEncodeSDXL");
  ASSERT_NE(sdxl, nullptr);
  std::vector<std::string> names;
  for (const InputSpec& i : sdxl->required) names.push_back(i.name);
  EXPECT_EQ(names, (std::vector<std::string>{"clip", "width", "height", "crop_w", "crop_h",
                                             "target_width", "target_height", "text_g", "text_l"}));
  EXPECT_EQ(sdxl->category, "advanced/conditioning");
  EXPECT_EQ(sdxl->python_module, "comfy_extras.nodes_clip_sdxl");
  const NodeDecl* refiner = NodeRegistry::instance().find("CLIPTextEncodeSDXLRefiner");
  ASSERT_NE(refiner, nullptr);
  names.clear();
  for (const InputSpec& i : refiner->required) names.push_back(i.name);
  EXPECT_EQ(names, (std::vector<std::string>{"ascore", "width", "height", "text", "clip"}));
}

// comfy_extras/nodes_custom_sampler.py.
TEST(WorkflowFamiliesDecl, TurboNodesAreDeclaredAsInComfyUi) {
  const NodeDecl* sched = NodeRegistry::instance().find("SDTurboScheduler");
  ASSERT_NE(sched, nullptr);
  const InputSpec* steps = sched->find_input("steps");
  ASSERT_NE(steps, nullptr);
  EXPECT_EQ(steps->options.at("default"), 1);
  EXPECT_EQ(steps->options.at("max"), 10);
  EXPECT_EQ(sched->outputs.at(0).type, "SIGMAS");
  EXPECT_EQ(sched->category, "sampling/custom_sampling/schedulers");
  const NodeDecl* custom = NodeRegistry::instance().find("SamplerCustom");
  ASSERT_NE(custom, nullptr);
  std::vector<std::string> names;
  for (const InputSpec& i : custom->required) names.push_back(i.name);
  EXPECT_EQ(names, (std::vector<std::string>{"model", "add_noise", "noise_seed", "cfg", "positive",
                                             "negative", "sampler", "sigmas", "latent_image"}));
  ASSERT_EQ(custom->outputs.size(), 2u);
  EXPECT_EQ(custom->outputs[0].name, "output");
  EXPECT_EQ(custom->outputs[1].name, "denoised_output");
  ASSERT_NE(NodeRegistry::instance().find("KSamplerSelect"), nullptr);
}

}  // namespace
}  // namespace darkroom::workflow
