// DiffControlNetLoader and SD 2.x ControlNets through the real executor (suite
// DiffControlNetNodes): CheckpointLoaderSimple (the tiny SD 2.x v-prediction checkpoint of
// tools/fixtures/sdxl_pipeline.py, completed by tests/pipeline/family_fixtures.h) →
// CLIPTextEncode ×2 → DiffControlNetLoader (the MODEL, the difference ControlNet
// data/controlnet_sd2/sd2_diff.safetensors) → LoadImage → ControlNetApplyAdvanced →
// KSampler (euler, 4 steps, cfg 5) → capture, against tools/fixtures/controlnet_sd2.py's
// golden run (data/controlnet_sd2/golden.safetensors): sdxl_pipeline.py's SD 2.x
// k-diffusion sampler with diffusers' ControlNetModel residuals (on the summed weights) ×
// strength added to the UNet for cond and uncond, the hint cut and resized as ComfyUI.
//
// Tolerance: 1e-4 max abs on the final latent (f32; measured 1.8e-5); |z| reaches 13.6 and
// the ControlNet moves it by up to 5.45 (z_plain, asserted to differ).
// Also: the same graph through ControlNetLoader with the plain file gives the same latent
// bit for bit; DiffControlNetLoader with a plain file loads it as ControlNetLoader does;
// ControlNetLoader refuses the difference file, naming the node to use; and the node's
// /object_info declaration is ComfyUI's nodes.py one.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "capture_node.h"
#include "io/safetensors.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/model_cache.h"
#include "pipeline/model_handles.h"
#include "run_prompt.h"
#include "test_util.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using test::captured;
using test::link;

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/" + file;
}

using darkroom::test::max_abs_diff;

class DiffControlNetNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    namespace fs = std::filesystem;
    pipeline::test::write_family_checkpoint("sd2.safetensors",
                                            (env_.checkpoints() / "sd2.safetensors").string());
    const fs::path cn_dir(env_.paths().model_folders.at("controlnet").front());
    fs::create_directories(cn_dir);
    for (const char* f : {"sd2_diff.safetensors", "sd2_ldm.safetensors"})
      fs::copy_file(data(std::string("controlnet_sd2/") + f), cn_dir / f);
    const fs::path input(env_.paths().input_directory);
    fs::create_directories(input);
    fs::copy_file(data("controlnet_pipeline/hint_a.png"), input / "hint_a.png");
    executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 32);
    captured().clear();
  }

  ExecutionResult execute(const json& prompt) {
    return test::run_prompt(*executor_, env_.paths(), prompt);
  }

  Tensor run(const json& prompt) {
    const ExecutionResult r = execute(prompt);
    EXPECT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
    return captured().at("99.latent").as<pipeline::Latent>().samples;
  }

  // The ControlNet (node "10": `loader` with `file`) applied at strength 0.8 over the
  // whole schedule, or none.
  static json graph(const std::string& loader, const std::string& file, bool control = true) {
    json g = {
        {"4",
         {{"class_type", "CheckpointLoaderSimple"},
          {"inputs", {{"ckpt_name", "sd2.safetensors"}}}}},
        {"5",
         {{"class_type", "EmptyLatentImage"},
          {"inputs", {{"width", 64}, {"height", 64}, {"batch_size", 1}}}}},
        {"6",
         {{"class_type", "CLIPTextEncode"},
          {"inputs", {{"text", "a snowy mountain"}, {"clip", link("4", 1)}}}}},
        {"7",
         {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", ""}, {"clip", link("4", 1)}}}}},
        {"3", test::ksampler_node({5, 4, 5.0, "euler", "normal", 1.0}, link("4", 0),
                                  control ? link("20", 0) : link("6", 0),
                                  control ? link("20", 1) : link("7", 0), link("5", 0))},
        {"99", {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("3", 0)}}}}}};
    if (!control) return g;
    json inputs = {{"control_net_name", file}};
    if (loader == "DiffControlNetLoader") inputs["model"] = link("4", 0);
    g["10"] = {{"class_type", loader}, {"inputs", inputs}};
    g["11"] = {{"class_type", "LoadImage"}, {"inputs", {{"image", "hint_a.png"}}}};
    g["20"] = {{"class_type", "ControlNetApplyAdvanced"},
               {"inputs",
                {{"positive", link("6", 0)},
                 {"negative", link("7", 0)},
                 {"control_net", link("10", 0)},
                 {"image", link("11", 0)},
                 {"strength", 0.8},
                 {"start_percent", 0.0},
                 {"end_percent", 1.0}}}};
    return g;
  }

  test::TempBase env_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(DiffControlNetNodes, DifferenceFileRunMatchesTheGoldenRun) {
  const Tensor diff = run(graph("DiffControlNetLoader", "sd2_diff.safetensors"));
  const Tensor plain = run(graph("ControlNetLoader", "sd2_ldm.safetensors"));
  const Tensor none = run(graph("", "", /*control=*/false));
  ASSERT_EQ(diff.shape(), (Shape{1, 8, 8, 4}));
  const SafetensorsFile golden = SafetensorsFile::open(data("controlnet_sd2/golden.safetensors"));
  const double err = max_abs_diff(diff, golden.tensor("z"));
  const double err_plain = max_abs_diff(none, golden.tensor("z_plain"));
  EXPECT_LE(err, 1e-4);
  EXPECT_LE(err_plain, 1e-4);
  EXPECT_GT(max_abs_diff(golden.tensor("z"), golden.tensor("z_plain")), 1.0);
  EXPECT_EQ(max_abs_diff(diff, plain), 0.0);
  std::cout << "[ golden ] DiffControlNetLoader run: max |z - oracle| " << err
            << ", without ControlNet " << err_plain << "\n";
  // A plain file through DiffControlNetLoader loads as through ControlNetLoader.
  EXPECT_EQ(max_abs_diff(run(graph("DiffControlNetLoader", "sd2_ldm.safetensors")), plain), 0.0);
}

TEST_F(DiffControlNetNodes, ControlNetLoaderRefusesADifferenceFile) {
  const ExecutionResult r = execute(graph("ControlNetLoader", "sd2_diff.safetensors"));
  ASSERT_EQ(r.status, ExecutionResult::Status::Error);
  EXPECT_EQ(r.error.value("node_id", ""), "10");
  const std::string message = r.error.value("exception_message", "");
  EXPECT_NE(message.find("difference ControlNet"), std::string::npos) << message;
  EXPECT_NE(message.find("DiffControlNetLoader"), std::string::npos) << message;
}

// A MODEL that keeps no UNet weights (no unet_source): a difference file is refused
// clearly, a plain one loads.
TEST_F(DiffControlNetNodes, ModelWithoutSourceWeights) {
  const NodeDecl* decl = NodeRegistry::instance().find("DiffControlNetLoader");
  ASSERT_NE(decl, nullptr);
  pipeline::ModelCache models{0};
  const json prompt = nullptr, extra = nullptr;
  NodeContext ctx{
      .paths = env_.paths(), .models = models, .prompt = prompt, .extra_pnginfo = extra};
  pipeline::ModelHandle model;
  model.source = "no-weights.safetensors";
  NodeInputs in;
  in.set("model", Value::of("MODEL", model));
  in.set("control_net_name", Value::literal("COMBO", "sd2_diff.safetensors"));
  try {
    decl->run(in, ctx);
    ADD_FAILURE() << "a difference file loaded without the model's weights";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("[DiffControlNetLoader] ", 0), 0u) << what;
    EXPECT_NE(what.find("no-weights.safetensors"), std::string::npos) << what;
    EXPECT_NE(what.find("keeps no UNet weights"), std::string::npos) << what;
  }
  in.set("control_net_name", Value::literal("COMBO", "sd2_ldm.safetensors"));
  const NodeResult r = decl->run(in, ctx);
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_TRUE(r.outputs[0].as<std::shared_ptr<const ControlNet>>());
}

// nodes.py: INPUT_TYPES {"required": {"model": ("MODEL",), "control_net_name":
// (folder_paths.get_filename_list("controlnet"),)}}, RETURN_TYPES ("CONTROL_NET",),
// CATEGORY "loaders"; NODE_DISPLAY_NAME_MAPPINGS "Load ControlNet Model (diff)".
TEST_F(DiffControlNetNodes, ObjectInfoIsComfyUis) {
  const json info = object_info("DiffControlNetLoader", env_.paths());
  ASSERT_TRUE(info.contains("DiffControlNetLoader")) << info.dump(1);
  const json& n = info["DiffControlNetLoader"];
  EXPECT_EQ(n["input"]["required"]["model"], json::array({"MODEL"}));
  const json files = n["input"]["required"]["control_net_name"][0];
  EXPECT_EQ(files, json::array({"sd2_diff.safetensors", "sd2_ldm.safetensors"}));
  EXPECT_EQ(n["input_order"]["required"], json::array({"model", "control_net_name"}));
  EXPECT_FALSE(n["input"].contains("optional") && !n["input"]["optional"].empty());
  EXPECT_EQ(n["output"], json::array({"CONTROL_NET"}));
  EXPECT_EQ(n["output_name"], json::array({"CONTROL_NET"}));
  EXPECT_EQ(n["name"], "DiffControlNetLoader");
  EXPECT_EQ(n["display_name"], "Load ControlNet Model (diff)");
  EXPECT_EQ(n["category"], "loaders");
  EXPECT_EQ(n["output_node"], false);
  EXPECT_EQ(n["python_module"], "nodes");
}

}  // namespace
}  // namespace darkroom::workflow
