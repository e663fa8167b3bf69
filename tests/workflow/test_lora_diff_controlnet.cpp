// A difference ControlNet on a MODEL that carries LoRAs (suite LoraDiffControlNet): ComfyUI's
// DiffControlNetLoader adds the file to the model's weights as the model holds them, LoRAs
// patched in. CheckpointLoaderSimple (the tiny SD 2.x checkpoint) → LoraLoaderModelOnly
// (data/lora/diff_cn_lora.safetensors at 0.9: four tensors the ControlNet shares and one it
// lacks) → DiffControlNetLoader (data/controlnet_sd2/sd2_diff.safetensors), run node by node
// as the executor runs them. Oracle: tools/fixtures/lora_diff_controlnet.py, diffusers'
// ControlNetModel whose shared weights are f16(diff + f16(unet + ΔW)), ΔW computed by torch
// from the LoRA file (diff_cn_lora_ref.safetensors: residuals on controlnet_sd2/
// sd2_ref.safetensors' inputs). Tolerance 1e-5 max abs on f32 residuals (ControlNetSd2's:
// summation order only).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "models/controlnet.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/model_cache.h"
#include "pipeline/model_handles.h"
#include "test_util.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

namespace fs = std::filesystem;

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/" + file;
}

Tensor nhwc(const Tensor& nchw) {
  const Shape& s = nchw.shape();
  return Tensor::from_floats(darkroom::test::nchw_to_nhwc(nchw.to_floats(), s),
                             {s[0], s[2], s[3], s[1]});
}

// down0 .. down8, then mid, NHWC f32, from a file of NCHW residuals.
std::vector<Tensor> residuals_of(const std::string& file) {
  const SafetensorsFile f = SafetensorsFile::open(data(file));
  std::vector<Tensor> out;
  for (int i = 0; f.find("down" + std::to_string(i)); ++i)
    out.push_back(nhwc(f.tensor("down" + std::to_string(i))));
  out.push_back(nhwc(f.tensor("mid")));
  return out;
}

std::vector<Tensor> residuals(const ControlNet& net) {
  const SafetensorsFile f = SafetensorsFile::open(data("controlnet_sd2/sd2_ref.safetensors"));
  auto f32 = [&](const char* n) {
    return Tensor::from_floats(f.tensor(n).to_floats(), f.tensor(n).shape());
  };
  ControlResiduals out =
      net.forward(nhwc(f.tensor("x")), nhwc(f.tensor("hint")), f32("t"), f32("context"));
  out.skips.push_back(out.middle);
  return out.skips;
}

double worst(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  EXPECT_EQ(got.size(), want.size());
  double w = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    EXPECT_EQ(got[i].shape(), want[i].shape()) << "residual " << i;
    if (got[i].shape() != want[i].shape()) return INFINITY;
    const std::vector<float> a = got[i].to_floats(), b = want[i].to_floats();
    for (size_t j = 0; j < a.size(); ++j) {
      const double e = std::fabs(static_cast<double>(a[j]) - b[j]);
      w = std::max(w, std::isnan(e) ? INFINITY : e);
    }
  }
  return w;
}

std::vector<Value> run_node(const std::string& class_name, const NodeInputs& in,
                            const FolderPaths& paths, pipeline::ModelCache& models) {
  const NodeDecl* decl = NodeRegistry::instance().find(class_name);
  EXPECT_NE(decl, nullptr) << class_name;
  const json prompt = json::object(), extra = nullptr;
  NodeContext ctx{.paths = paths, .models = models, .prompt = prompt, .extra_pnginfo = extra};
  return decl->run(in, ctx).outputs;
}

class LoraDiffControlNet : public ::testing::Test {
 protected:
  void SetUp() override {
    pipeline::test::write_family_checkpoint("sd2.safetensors",
                                            (env_.checkpoints() / "sd2.safetensors").string());
    const fs::path cn_dir(env_.paths().model_folders.at("controlnet").front());
    const fs::path lora_dir(env_.paths().model_folders.at("loras").front());
    fs::create_directories(cn_dir);
    fs::create_directories(lora_dir);
    fs::copy_file(data("controlnet_sd2/sd2_diff.safetensors"), cn_dir / "sd2_diff.safetensors");
    fs::copy_file(data("lora/diff_cn_lora.safetensors"), lora_dir / "diff_cn_lora.safetensors");
  }

  Value checkpoint() {
    NodeInputs ck;
    ck.set("ckpt_name", Value::literal("COMBO", "sd2.safetensors"));
    return run_node("CheckpointLoaderSimple", ck, env_.paths(), models_)[0];
  }

  Value with_lora(const Value& model, double strength) {
    NodeInputs in;
    in.set("model", model);
    in.set("lora_name", Value::literal("COMBO", "diff_cn_lora.safetensors"));
    in.set("strength_model", Value::literal("FLOAT", strength));
    return run_node("LoraLoaderModelOnly", in, env_.paths(), models_)[0];
  }

  std::shared_ptr<const ControlNet> diff_controlnet(const Value& model) {
    NodeInputs in;
    in.set("model", model);
    in.set("control_net_name", Value::literal("COMBO", "sd2_diff.safetensors"));
    return run_node("DiffControlNetLoader", in, env_.paths(), models_)[0]
        .as<std::shared_ptr<const ControlNet>>();
  }

  test::TempBase env_;
  pipeline::ModelCache models_{uint64_t{1} << 32};
};

TEST_F(LoraDiffControlNet, DifferenceIsAddedToTheLoraPatchedWeights) {
  const Value base = checkpoint();
  const Value lora = with_lora(base, 0.9);
  ASSERT_TRUE(lora.as<pipeline::ModelHandle>().deferred);  // merged when the loader needs it
  const std::vector<Tensor> got = residuals(*diff_controlnet(lora));
  const std::vector<Tensor> want = residuals_of("lora/diff_cn_lora_ref.safetensors");
  const std::vector<Tensor> plain = residuals_of("controlnet_sd2/sd2_ref.safetensors");
  const double err = worst(got, want);
  const double moved = worst(want, plain);
  // Without the LoRA: the plain ControlNet's residuals (ControlNetSd2's oracle).
  const double err_base = worst(residuals(*diff_controlnet(base)), plain);
  std::cout << "[ lora diff cn ] max |r - oracle| " << err << " (the LoRA moves r by " << moved
            << "); without the LoRA " << err_base << "\n";
  EXPECT_LE(err, 1e-5);
  EXPECT_LE(err_base, 1e-5);
  EXPECT_GT(moved, 1e-2);
  // The merged copies are the MODEL's (one merge, the model cache's): the same LoRA'd MODEL
  // gives the cached ControlNet, another strength another one.
  EXPECT_EQ(diff_controlnet(lora), diff_controlnet(lora));
  EXPECT_NE(diff_controlnet(with_lora(base, 0.5)), diff_controlnet(lora));
}

}  // namespace
}  // namespace darkroom::workflow
