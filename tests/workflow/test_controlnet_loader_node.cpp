// ControlNetLoader (suite ControlNetLoaderNode) through the real executor: a file of the
// "controlnet" models folder → CONTROL_NET, handed to a test capture node; the network is
// the one load_controlnet gives (same residuals on the fixture's inputs, see
// tests/models/test_controlnet.cpp for those against diffusers), cached across prompts;
// /object_info as nodes.py declares the node.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/device.h"
#include "io/safetensors.h"
#include "models/controlnet.h"
#include "pipeline/controlnet_loader.h"
#include "run_prompt.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using test::link;
namespace fs = std::filesystem;

std::string cn_file(const std::string& name) {
  return std::string(DARKROOM_TEST_DATA) + "/controlnet/" + name;
}

std::map<std::string, std::shared_ptr<const ControlNet>>& captured_nets() {
  static std::map<std::string, std::shared_ptr<const ControlNet>> nets;
  return nets;
}

const NodeRegistrar kCapture({.class_name = "DarkroomTestControlNetCapture",
                              .display_name = "Test ControlNet Capture",
                              .category = "testing",
                              .required = {link_input("control_net", "CONTROL_NET")},
                              .outputs = {},
                              .output_node = true,
                              .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
                                captured_nets()[ctx.node_id] = in.control_net("control_net");
                                return {};
                              }});

json loader_prompt(const std::string& name) {
  return json{{"1", {{"class_type", "ControlNetLoader"}, {"inputs", {{"control_net_name", name}}}}},
              {"2",
               {{"class_type", "DarkroomTestControlNetCapture"},
                {"inputs", {{"control_net", link("1", 0)}}}}}};
}

class ControlNetLoaderNode : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path models(env_.paths().model_folders.at("controlnet").front());
    fs::create_directories(models / "sd15");
    fs::copy_file(cn_file("sdxl_diffusers.pth"), models / "sdxl_tiny_diffusion_pytorch_model.bin");
    fs::copy_file(cn_file("sd15_mini_ldm.pth"), models / "sd15" / "control_tiny.pth");
    executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 30);
    captured_nets().clear();
  }

  ExecutionResult run(const json& prompt) {
    return test::run_prompt(*executor_, env_.paths(), prompt);
  }

  test::TempBase env_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(ControlNetLoaderNode, LoadsTheFileAsLoadControlnetDoes) {
  const ExecutionResult r = run(loader_prompt("sd15/control_tiny.pth"));
  ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
  ASSERT_TRUE(captured_nets().contains("2"));
  const auto net = captured_nets()["2"];
  ASSERT_TRUE(net);
  const DType dtype = device_for(kCpu).compute_dtype();
  EXPECT_EQ(net->dtype(), dtype);
  EXPECT_EQ(net->config().model_channels, 4);
  EXPECT_EQ(net->hint_channels(), 3);
  // The same residuals as the network load_controlnet gives for that file.
  const auto direct = pipeline::load_controlnet(cn_file("sd15_mini_ldm.pth"), kCpu, dtype);
  const SafetensorsFile ref = SafetensorsFile::open(cn_file("sd15_mini_ref.safetensors"));
  const Tensor x = Tensor::zeros({2, 2, 3, 4}, DType::F32);
  const Tensor hint =
      Tensor::from_floats(std::vector<float>(2 * 16 * 24 * 3, 0.5f), {2, 16, 24, 3});
  const Tensor t = Tensor::from_floats(ref.tensor("t").to_floats(), {2});
  const Tensor context =
      Tensor::from_floats(ref.tensor("context").to_floats(), ref.tensor("context").shape());
  const ControlResiduals a = net->forward(x, hint, t, context);
  const ControlResiduals b = direct->forward(x, hint, t, context);
  ASSERT_EQ(a.skips.size(), 12u);
  for (size_t i = 0; i < a.skips.size(); ++i)
    EXPECT_EQ(a.skips[i].to_floats(), b.skips[i].to_floats()) << i;
  EXPECT_EQ(a.middle.to_floats(), b.middle.to_floats());
}

// The loader runs again (node outputs dropped, as POST /free {"free_memory": true} does)
// and finds the network in the model cache.
TEST_F(ControlNetLoaderNode, ModelCacheKeepsTheNetworkAcrossPrompts) {
  ASSERT_EQ(run(loader_prompt("sdxl_tiny_diffusion_pytorch_model.bin")).status,
            ExecutionResult::Status::Success);
  const auto first = captured_nets()["2"];
  ASSERT_TRUE(first);
  EXPECT_EQ(first->config().adm_in_channels, 16);
  captured_nets().clear();
  executor_->free_memory(/*unload_models=*/false, /*free_cached_outputs=*/true);
  ASSERT_EQ(run(loader_prompt("sdxl_tiny_diffusion_pytorch_model.bin")).status,
            ExecutionResult::Status::Success);
  EXPECT_EQ(captured_nets()["2"].get(), first.get());
  // Unloading the models makes the next prompt load a new one.
  captured_nets().clear();
  executor_->free_memory(/*unload_models=*/true, /*free_cached_outputs=*/true);
  ASSERT_EQ(run(loader_prompt("sdxl_tiny_diffusion_pytorch_model.bin")).status,
            ExecutionResult::Status::Success);
  ASSERT_TRUE(captured_nets()["2"]);
  EXPECT_NE(captured_nets()["2"].get(), first.get());
}

TEST_F(ControlNetLoaderNode, MissingFileFailsValidation) {
  const Validation v = validate_prompt(loader_prompt("nope.safetensors"), env_.paths());
  EXPECT_FALSE(v.ok);
  ASSERT_TRUE(v.node_errors.contains("1")) << v.node_errors.dump(1);
  EXPECT_EQ(v.node_errors["1"]["errors"][0]["type"], "value_not_in_list");
}

TEST_F(ControlNetLoaderNode, ObjectInfoAsComfy) {
  const json all = object_info(env_.paths());
  const json& loader = all.at("ControlNetLoader");
  EXPECT_EQ(loader["display_name"], "Load ControlNet Model");
  EXPECT_EQ(loader["category"], "loaders");
  EXPECT_EQ(loader["python_module"], "nodes");
  EXPECT_EQ(loader["input"]["required"]["control_net_name"][0],
            (json{"sd15/control_tiny.pth", "sdxl_tiny_diffusion_pytorch_model.bin"}));
  EXPECT_EQ(loader["output"], json::array({"CONTROL_NET"}));
  EXPECT_EQ(loader["output_name"], json::array({"CONTROL_NET"}));
}

}  // namespace
}  // namespace darkroom::workflow
