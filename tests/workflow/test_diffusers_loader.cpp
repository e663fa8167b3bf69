// DiffusersLoader through the real executor (suite WorkflowDiffusersLoader): the tiny SDXL
// diffusers folder (pipeline/diffusers_folder_fixture.h) under models/diffusers/, listed in
// model_path's values, runs sdxl_pipeline.py's golden "sdxl_euler" graph (CLIPTextEncode,
// KSampler euler / normal, VAEDecode) to its image at test_sdxl_workflow.cpp's tolerance;
// and the node's declaration as ComfyUI's nodes.py has it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "capture_node.h"
#include "io/safetensors.h"
#include "pipeline/diffusers_folder_fixture.h"
#include "pipeline/image.h"
#include "run_prompt.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using test::link;
namespace fs = std::filesystem;

using test::captured;

TEST(WorkflowDiffusersLoader, SdxlFolderMatchesTheGoldenRun) {
  test::TempBase env;
  const fs::path base = env.paths().model_folders.at("diffusers").front();
  pipeline::test::write_sdxl_diffusers_folder(base / "tiny" / "sdxl");
  fs::create_directories(base / "not_a_model");  // no model_index.json: not listed

  const json info = object_info("DiffusersLoader", env.paths())["DiffusersLoader"];
  EXPECT_EQ(info["input"]["required"]["model_path"][0], json::array({"tiny/sdxl"}));

  auto encode = [](const std::string& text) {
    return json{{"class_type", "CLIPTextEncode"},
                {"inputs", {{"text", text}, {"clip", link("4", 1)}}}};
  };
  // EmptyLatentImage divides by 8 and the tiny VAE doubles: 128×128 pixels is the golden
  // run's 16×16 latent (its 32×32 image), batch 2.
  const json prompt = {
      {"4", {{"class_type", "DiffusersLoader"}, {"inputs", {{"model_path", "tiny/sdxl"}}}}},
      {"5",
       {{"class_type", "EmptyLatentImage"},
        {"inputs", {{"width", 128}, {"height", 128}, {"batch_size", 2}}}}},
      {"6", encode("a photo of a (red:1.3) cat")},
      {"7", encode("blurry")},
      {"3", test::ksampler_node({42, 10, 5.0, "euler", "normal", 1.0}, link("4", 0), link("6", 0),
                                link("7", 0), link("5", 0))},
      {"8",
       {{"class_type", "VAEDecode"},
        {"inputs", {{"samples", link("3", 0)}, {"vae", link("4", 2)}}}}},
      {"99", {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"image", link("8", 0)}}}}}};
  captured().clear();
  Executor executor(env.paths(), -1, uint64_t{1} << 32);
  const ExecutionResult r = test::run_prompt(executor, env.paths(), prompt);
  ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);

  // The golden decoder output [-1, 1] as VAEDecode hands it on: clamp((x + 1) / 2, 0, 1).
  const SafetensorsFile golden =
      SafetensorsFile::open(pipeline::test::family_fixture("golden.safetensors"));
  const Tensor ref = golden.tensor("sdxl_euler.image");
  const Tensor& got = captured().at("99.image").as<pipeline::Image>();
  ASSERT_EQ(got.shape(), ref.shape());
  const std::vector<float> g = got.to_floats(), x = ref.to_floats();
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i)
    worst = std::max(worst, std::fabs(g[i] - std::clamp((x[i] + 1.0) / 2.0, 0.0, 1.0)));
  EXPECT_LE(worst, 1e-3);
}

TEST(WorkflowDiffusersLoader, DeclarationIsComfyUIs) {
  test::TempBase env;
  const json n = object_info("DiffusersLoader", env.paths())["DiffusersLoader"];
  EXPECT_EQ(n["display_name"], "DiffusersLoader");
  EXPECT_EQ(n["category"], "advanced/loaders/deprecated");
  EXPECT_EQ(n["python_module"], "nodes");
  EXPECT_EQ(n["output"], json::array({"MODEL", "CLIP", "VAE"}));
  EXPECT_EQ(n["output_name"], json::array({"MODEL", "CLIP", "VAE"}));
  EXPECT_EQ(n["input_order"]["required"], json::array({"model_path"}));
  EXPECT_EQ(n["input"]["required"]["model_path"][0], json::array());  // nothing there yet
  EXPECT_FALSE(n["output_node"].get<bool>());
}

}  // namespace
}  // namespace darkroom::workflow
