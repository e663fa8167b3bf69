// UpscaleModelLoader and ImageUpscaleWithModel (suite UpscaleNodes) through the real
// executor: LoadImage → ImageUpscaleWithModel(UpscaleModelLoader) → SaveImage on the tiny
// RRDBNet fixtures of tools/fixtures/rrdbnet.py, the IMAGE compared with spandrel's
// descriptor call (which is what ComfyUI's node returns for an image within one 512 tile);
// their /object_info against comfy_extras/nodes_upscale_model.py.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "io/image_codec.h"
#include "io/png_writer.h"
#include "io/safetensors.h"
#include "models/weights.h"
#include "run_prompt.h"
#include "test_util.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using darkroom::test::max_abs_diff;

using test::link;
namespace fs = std::filesystem;

// The descriptor call in f32 against spandrel's, through the node's tiling (one tile) and
// clamp: measured ≤ 5e-7 (tests/models/test_rrdbnet.cpp); 1e-5 as there.
constexpr double kTol = 1e-5;

std::string rrdb_file(const std::string& name) {
  return std::string(DARKROOM_TEST_DATA) + "/models/rrdbnet/" + name;
}

Tensor fixture(const std::string& name) {
  static const auto file =
      std::make_shared<const SafetensorsFile>(SafetensorsFile::open(rrdb_file("ref.safetensors")));
  return Weights::from_file(file, "", kCpu, DType::F32).get(name);
}

std::map<std::string, Value>& captured() {
  static std::map<std::string, Value> values;
  return values;
}

const NodeRegistrar kCapture({.class_name = "DarkroomTestUpscaleCapture",
                              .display_name = "Test Upscale Capture",
                              .category = "testing",
                              .required = {link_input("image", "IMAGE")},
                              .outputs = {},
                              .output_node = true,
                              .run = [](const NodeInputs& in, NodeContext& ctx) -> NodeResult {
                                captured()[ctx.node_id] = in.get("image");
                                return {};
                              }});

// The fixture image [1, H, W, 3] on the 1/255 grid as an 8-bit PNG: LoadImage gives the
// same values back exactly.
void write_input_png(const fs::path& path, const Tensor& image) {
  const std::vector<float> v = image.to_floats();
  std::vector<uint8_t> rgb(v.size());
  for (size_t i = 0; i < v.size(); ++i) rgb[i] = static_cast<uint8_t>(std::lround(v[i] * 255.0f));
  write_png_rgb8(path.string(), rgb, static_cast<int>(image.dim(2)),
                 static_cast<int>(image.dim(1)));
}

json upscale_prompt(const std::string& model, const std::string& image) {
  return json{
      {"1", {{"class_type", "LoadImage"}, {"inputs", {{"image", image}}}}},
      {"2", {{"class_type", "UpscaleModelLoader"}, {"inputs", {{"model_name", model}}}}},
      {"3",
       {{"class_type", "ImageUpscaleWithModel"},
        {"inputs", {{"upscale_model", link("2", 0)}, {"image", link("1", 0)}}}}},
      {"4",
       {{"class_type", "SaveImage"},
        {"inputs", {{"filename_prefix", "up"}, {"images", link("3", 0)}}}}},
      {"5", {{"class_type", "DarkroomTestUpscaleCapture"}, {"inputs", {{"image", link("3", 0)}}}}}};
}

class UpscaleNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path models(env_.paths().model_folders.at("upscale_models").front());
    fs::create_directories(models / "esrgan");
    fs::copy_file(rrdb_file("x4.safetensors"), models / "RealESRGAN_x4plus_tiny.safetensors");
    fs::copy_file(rrdb_file("x2plus.pth"), models / "esrgan" / "x2plus_tiny.pth");
    for (const char* name : {"x4", "x2plus"})
      write_input_png(fs::path(env_.paths().input_directory) / (std::string(name) + ".png"),
                      fixture(std::string(name) + ".input"));
    executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 30);
    captured().clear();
  }

  ExecutionResult run(const json& prompt) {
    ExecutionEvents events;
    events.progress = [this](int value, int max, const std::string& id) {
      progress_.emplace_back(id, value, max);
    };
    return test::run_prompt(*executor_, env_.paths(), prompt, events);
  }

  test::TempBase env_;
  std::unique_ptr<Executor> executor_;
  std::vector<std::tuple<std::string, int, int>> progress_;
};

TEST_F(UpscaleNodes, LoadUpscaleSaveMatchesSpandrel) {
  const ExecutionResult r = run(upscale_prompt("RealESRGAN_x4plus_tiny.safetensors", "x4.png"));
  ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
  ASSERT_TRUE(captured().contains("5"));
  const Tensor& image = captured()["5"].as<pipeline::Image>();
  EXPECT_EQ(image.shape(), Shape({1, 32, 40, 3}));
  EXPECT_LE(max_abs_diff(image, fixture("x4.call")), kTol);
  // One tile, reported as ComfyUI's progress bar would.
  EXPECT_EQ(progress_, (std::vector<std::tuple<std::string, int, int>>{{"3", 1, 1}}));
  // SaveImage wrote the 4× image.
  const json& saved = r.outputs.at("4").at("images");
  ASSERT_EQ(saved.size(), 1u);
  const fs::path png =
      fs::path(env_.paths().output_directory) / saved[0]["filename"].get<std::string>();
  std::ifstream f(png, std::ios::binary);
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(f), {}};
  const DecodedImage decoded = decode_image(bytes, png.string());
  EXPECT_EQ(decoded.width, 40);
  EXPECT_EQ(decoded.height, 32);
}

TEST_F(UpscaleNodes, RealEsrganX2PlusPthInASubfolder) {
  const ExecutionResult r = run(upscale_prompt("esrgan/x2plus_tiny.pth", "x2plus.png"));
  ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
  const Tensor& image = captured()["5"].as<pipeline::Image>();
  EXPECT_EQ(image.shape(), Shape({1, 18, 22, 3}));
  EXPECT_LE(max_abs_diff(image, fixture("x2plus.call")), kTol);
}

TEST_F(UpscaleNodes, MissingModelFailsValidation) {
  const Validation v = validate_prompt(upscale_prompt("nope.pth", "x4.png"), env_.paths());
  EXPECT_FALSE(v.ok);
  ASSERT_TRUE(v.node_errors.contains("2")) << v.node_errors.dump(1);
  EXPECT_EQ(v.node_errors["2"]["errors"][0]["type"], "value_not_in_list");
}

TEST_F(UpscaleNodes, ObjectInfoAsComfy) {
  const json all = object_info(env_.paths());
  const json& loader = all.at("UpscaleModelLoader");
  EXPECT_EQ(loader["display_name"], "Load Upscale Model");
  EXPECT_EQ(loader["category"], "loaders");
  EXPECT_EQ(loader["python_module"], "comfy_extras.nodes_upscale_model");
  EXPECT_EQ(loader["input"]["required"]["model_name"][0],
            (json{"RealESRGAN_x4plus_tiny.safetensors", "esrgan/x2plus_tiny.pth"}));
  EXPECT_EQ(loader["output"], json::array({"UPSCALE_MODEL"}));
  EXPECT_EQ(loader["output_name"], json::array({"UPSCALE_MODEL"}));
  const json& up = all.at("ImageUpscaleWithModel");
  EXPECT_EQ(up["display_name"], "Upscale Image (using Model)");
  EXPECT_EQ(up["category"], "image/upscaling");
  EXPECT_EQ(up["python_module"], "comfy_extras.nodes_upscale_model");
  EXPECT_EQ(up["input"]["required"]["upscale_model"][0], "UPSCALE_MODEL");
  EXPECT_EQ(up["input"]["required"]["image"][0], "IMAGE");
  EXPECT_EQ(up["input_order"], (json{{"required", {"upscale_model", "image"}}}));
  EXPECT_EQ(up["output"], json::array({"IMAGE"}));
}

}  // namespace
}  // namespace darkroom::workflow
