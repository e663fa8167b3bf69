// ControlNetApply and ControlNetApplyAdvanced through the real executor (suite
// ControlNetNodes): CheckpointLoaderSimple → CLIPTextEncode ×2 → ControlNetLoader →
// LoadImage → the apply nodes → KSampler (12 euler steps, cfg 6, a batch of 2) →
// capture, against tools/fixtures/controlnet_pipeline.py's golden runs
// (tests/data/controlnet_pipeline/golden.safetensors): k-diffusion's euler around
// diffusers' ControlNetModel and UNet2DConditionModel with ComfyUI's ControlNet rules
// (hint cut and resized nearest-exact to 8× the latent, residuals × strength, applied only
// for σ within the link's percent range, a chain summed, cond and uncond both controlled).
//
// Models: the tiny SD 1.5 of tools/fixtures/pipeline_golden.py (32-wide CLIP with its
// token table redrawn by darkroom's torch.randn, the sd15_tiny UNet and VAE) as one
// checkpoint file, and the tiny ControlNet tests/data/controlnet/sd15.safetensors
// (tools/fixtures/controlnet.py, diffusers names) through ControlNetLoader.
//
// Tolerance: the brief's 1e-3 max abs on the final latent (f32); |z| reaches ~300, and the
// ControlNet moves it by up to 31 .. 42 (the runs' z_plain, asserted to differ).
// Also: the nodes' declarations, strength 0, and how links are shared and chained.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "capture_node.h"
#include "golden_checkpoint.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "pipeline/control.h"
#include "pipeline/controlnet_loader.h"
#include "pipeline/model_cache.h"
#include "run_prompt.h"
#include "sampling/torch_rng.h"
#include "test_util.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using test::captured;
using test::link;

constexpr double kTolerance = 1e-3;

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/" + file;
}

const SafetensorsFile& golden() {
  static const std::unique_ptr<SafetensorsFile> f = std::make_unique<SafetensorsFile>(
      SafetensorsFile::open(data("controlnet_pipeline/golden.safetensors")));
  return *f;
}

using darkroom::test::max_abs_diff;

using test::write_golden_checkpoint;

class ControlNetNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    namespace fs = std::filesystem;
    write_golden_checkpoint((env_.checkpoints() / "golden.safetensors").string());
    const fs::path cn_dir(env_.paths().model_folders.at("controlnet").front());
    fs::create_directories(cn_dir);
    fs::copy_file(data("controlnet/sd15.safetensors"), cn_dir / "tiny_cn.safetensors");
    const fs::path input(env_.paths().input_directory);
    fs::create_directories(input);
    for (const char* hint : {"hint_a.png", "hint_b.png"})
      fs::copy_file(data(std::string("controlnet_pipeline/") + hint), input / hint);
    executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 32);
    captured().clear();
  }

  // Runs `prompt` (capture node "99" on the KSampler's latent) and returns the latent.
  Tensor run(const json& prompt) {
    test::run_prompt_ok(*executor_, env_.paths(), prompt);
    return captured().at("99.latent").as<pipeline::Latent>().samples;
  }

  // controlnet_pipeline.py's COMMON; the sampler reads its conditioning from
  // `positive` / `negative` (node links).
  static json graph(json positive, json negative) {
    return json{
        {"4",
         {{"class_type", "CheckpointLoaderSimple"},
          {"inputs", {{"ckpt_name", "golden.safetensors"}}}}},
        {"5",
         {{"class_type", "EmptyLatentImage"},
          {"inputs", {{"width", 128}, {"height", 128}, {"batch_size", 2}}}}},
        {"6",
         {{"class_type", "CLIPTextEncode"},
          {"inputs", {{"text", "a photo of a (red:1.3) cat"}, {"clip", link("4", 1)}}}}},
        {"7",
         {{"class_type", "CLIPTextEncode"},
          {"inputs", {{"text", "blurry, low quality"}, {"clip", link("4", 1)}}}}},
        {"10",
         {{"class_type", "ControlNetLoader"},
          {"inputs", {{"control_net_name", "tiny_cn.safetensors"}}}}},
        {"11", {{"class_type", "LoadImage"}, {"inputs", {{"image", "hint_a.png"}}}}},
        {"12", {{"class_type", "LoadImage"}, {"inputs", {{"image", "hint_b.png"}}}}},
        {"3", test::ksampler_node({31, 12, 6.0, "euler", "normal", 1.0}, link("4", 0),
                                  std::move(positive), std::move(negative), link("5", 0))},
        {"99", {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("3", 0)}}}}}};
  }

  static json advanced(json positive, json negative, const std::string& image, double strength,
                       double start, double end) {
    return {{"class_type", "ControlNetApplyAdvanced"},
            {"inputs",
             {{"positive", std::move(positive)},
              {"negative", std::move(negative)},
              {"control_net", link("10", 0)},
              {"image", link(image, 0)},
              {"strength", strength},
              {"start_percent", start},
              {"end_percent", end}}}};
  }

  void expect_golden(const Tensor& z, const std::string& run) {
    const Tensor want = golden().tensor(run + ".z");
    const double diff = max_abs_diff(z, want);
    EXPECT_LE(diff, kTolerance) << run;
    // The ControlNet mattered: the run without one is far away.
    EXPECT_GT(max_abs_diff(z, golden().tensor(run + ".z_plain")), 1.0) << run;
    std::cout << "[ golden ] " << run << ": max |z - diffusers| " << diff << "\n";
  }

  test::TempBase env_;
  std::unique_ptr<Executor> executor_;
};

// Two ControlNetApplyAdvanced in a chain: strength 0.7 over 0.2 .. 0.8 with hint_a, then
// strength 0.5 over 0.0 .. 0.6 with hint_b.
TEST_F(ControlNetNodes, AdvancedChainMatchesTheGoldenRun) {
  json prompt = graph(link("21", 0), link("21", 1));
  prompt["20"] = advanced(link("6", 0), link("7", 0), "11", 0.7, 0.2, 0.8);
  prompt["21"] = advanced(link("20", 0), link("20", 1), "12", 0.5, 0.0, 0.6);
  expect_golden(run(prompt), "advanced_chain");
}

// ControlNetApply on the positive only: the sampler controls the negative with the same
// chain (ComfyUI's control_apply_to_uncond).
TEST_F(ControlNetNodes, ApplyOldMatchesTheGoldenRun) {
  json prompt = graph(link("20", 0), link("7", 0));
  prompt["20"] = {{"class_type", "ControlNetApply"},
                  {"inputs",
                   {{"conditioning", link("6", 0)},
                    {"control_net", link("10", 0)},
                    {"image", link("11", 0)},
                    {"strength", 0.9}}}};
  expect_golden(run(prompt), "apply_old");
}

// ---- declarations and conditioning-level behaviour -------------------------------------

NodeResult run_node(const std::string& class_name, const NodeInputs& in) {
  const NodeDecl* decl = NodeRegistry::instance().find(class_name);
  EXPECT_NE(decl, nullptr) << class_name;
  FolderPaths paths;
  pipeline::ModelCache models{0};
  const json prompt = nullptr, extra = nullptr;
  NodeContext ctx{.paths = paths, .models = models, .prompt = prompt, .extra_pnginfo = extra};
  return decl->run(in, ctx);
}

pipeline::Conditioning two_entries() {
  pipeline::CondEntry e;
  e.context = Tensor::zeros({1, 77, 8}, DType::F32);
  return {e, e};
}

NodeInputs apply_inputs(const std::shared_ptr<const ControlNet>& net, double strength) {
  NodeInputs in;
  in.set("control_net", Value::of("CONTROL_NET", net));
  in.set("image", Value::of("IMAGE", Tensor::zeros({1, 8, 8, 3}, DType::F32)));
  in.set("strength", Value::literal("FLOAT", strength));
  return in;
}

// The tiny ControlNet (the nodes only pass it on here).
std::shared_ptr<const ControlNet> dummy_net() {
  return pipeline::load_controlnet(data("controlnet/sd15.safetensors"), kCpu, DType::F32);
}

TEST(ControlNetApplyNodes, AdvancedSharesOneLinkPerPreviousChain) {
  const auto net = dummy_net();
  NodeInputs in = apply_inputs(net, 0.7);
  in.set("positive", Value::of("CONDITIONING", two_entries()));
  in.set("negative", Value::of("CONDITIONING", two_entries()));
  in.set("start_percent", Value::literal("FLOAT", 0.2));
  in.set("end_percent", Value::literal("FLOAT", 0.8));
  const NodeResult r = run_node("ControlNetApplyAdvanced", in);
  ASSERT_EQ(r.outputs.size(), 2u);
  const auto& pos = r.outputs[0].as<pipeline::Conditioning>();
  const auto& neg = r.outputs[1].as<pipeline::Conditioning>();
  ASSERT_EQ(pos.size(), 2u);
  ASSERT_EQ(neg.size(), 2u);
  const auto& link0 = pos[0].control;
  ASSERT_TRUE(link0);
  for (const auto* c : {&pos, &neg})
    for (const pipeline::CondEntry& e : *c) {
      EXPECT_EQ(e.control, link0);  // one object: positive and negative batch together
      EXPECT_FALSE(e.control_apply_to_uncond);
    }
  EXPECT_EQ(link0->net, net);
  EXPECT_FLOAT_EQ(link0->strength, 0.7f);
  EXPECT_DOUBLE_EQ(link0->start_percent, 0.2);
  EXPECT_DOUBLE_EQ(link0->end_percent, 0.8);
  EXPECT_EQ(link0->previous, nullptr);

  // Applied again on entries with different earlier chains: one new link per chain.
  pipeline::Conditioning mixed = pos;
  mixed[1].control = nullptr;
  NodeInputs again = apply_inputs(net, 0.5);
  again.set("positive", Value::of("CONDITIONING", mixed));
  again.set("negative", Value::of("CONDITIONING", neg));
  again.set("start_percent", Value::literal("FLOAT", 0.0));
  again.set("end_percent", Value::literal("FLOAT", 1.0));
  const NodeResult r2 = run_node("ControlNetApplyAdvanced", again);
  const auto& pos2 = r2.outputs[0].as<pipeline::Conditioning>();
  const auto& neg2 = r2.outputs[1].as<pipeline::Conditioning>();
  EXPECT_EQ(pos2[0].control->previous, link0);
  EXPECT_EQ(pos2[1].control->previous, nullptr);
  EXPECT_NE(pos2[0].control, pos2[1].control);
  EXPECT_EQ(neg2[0].control, pos2[0].control);
  EXPECT_EQ(neg2[1].control, pos2[0].control);
}

TEST(ControlNetApplyNodes, ApplyChainsEachEntryAndMarksItForTheNegative) {
  const auto net = dummy_net();
  NodeInputs in = apply_inputs(net, 1.5);
  pipeline::Conditioning cond = two_entries();
  auto earlier = std::make_shared<pipeline::ControlLink>();
  cond[1].control = earlier;
  in.set("conditioning", Value::of("CONDITIONING", cond));
  const NodeResult r = run_node("ControlNetApply", in);
  const auto& out = r.outputs[0].as<pipeline::Conditioning>();
  ASSERT_EQ(out.size(), 2u);
  for (const pipeline::CondEntry& e : out) {
    ASSERT_TRUE(e.control);
    EXPECT_TRUE(e.control_apply_to_uncond);
    EXPECT_FLOAT_EQ(e.control->strength, 1.5f);
    EXPECT_DOUBLE_EQ(e.control->start_percent, 0.0);
    EXPECT_DOUBLE_EQ(e.control->end_percent, 1.0);
  }
  EXPECT_EQ(out[0].control->previous, nullptr);
  EXPECT_EQ(out[1].control->previous, earlier);

  // The sampler's rule: a negative without ControlNet takes the positive's chains in turn.
  pipeline::Conditioning negative = two_entries();
  negative.resize(3);
  negative[2].area = pipeline::CondArea{8, 8, 0, 0};  // entries with an area are left alone
  const pipeline::Conditioning neg = pipeline::control_to_uncond(out, negative);
  EXPECT_EQ(neg[0].control, out[0].control);
  EXPECT_EQ(neg[1].control, out[1].control);
  EXPECT_EQ(neg[2].control, nullptr);
  // ... and a negative with a ControlNet of its own keeps it and takes none.
  negative[1].control = earlier;
  const pipeline::Conditioning kept = pipeline::control_to_uncond(out, negative);
  EXPECT_EQ(kept[0].control, nullptr);
  EXPECT_EQ(kept[1].control, earlier);
}

TEST(ControlNetApplyNodes, StrengthZeroReturnsTheInputs) {
  const auto net = dummy_net();
  NodeInputs in = apply_inputs(net, 0.0);
  in.set("conditioning", Value::of("CONDITIONING", two_entries()));
  in.set("positive", Value::of("CONDITIONING", two_entries()));
  in.set("negative", Value::of("CONDITIONING", two_entries()));
  in.set("start_percent", Value::literal("FLOAT", 0.0));
  in.set("end_percent", Value::literal("FLOAT", 1.0));
  for (const std::string name : {"ControlNetApply", "ControlNetApplyAdvanced"}) {
    const NodeResult r = run_node(name, in);
    for (const Value& v : r.outputs)
      for (const pipeline::CondEntry& e : v.as<pipeline::Conditioning>())
        EXPECT_EQ(e.control, nullptr) << name;
  }
}

TEST(ControlNetApplyNodes, DeclarationsAreComfyUis) {
  const NodeDecl* old = NodeRegistry::instance().find("ControlNetApply");
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->category, "conditioning/controlnet");
  std::vector<std::string> names;
  for (const InputSpec& s : old->required) names.push_back(s.name + ":" + s.type);
  EXPECT_EQ(names, (std::vector<std::string>{"conditioning:CONDITIONING", "control_net:CONTROL_NET",
                                             "image:IMAGE", "strength:FLOAT"}));
  EXPECT_EQ(old->required[3].options,
            (json{{"default", 1.0}, {"min", 0.0}, {"max", 10.0}, {"step", 0.01}}));

  const NodeDecl* adv = NodeRegistry::instance().find("ControlNetApplyAdvanced");
  ASSERT_NE(adv, nullptr);
  names.clear();
  for (const InputSpec& s : adv->required) names.push_back(s.name + ":" + s.type);
  EXPECT_EQ(names,
            (std::vector<std::string>{"positive:CONDITIONING", "negative:CONDITIONING",
                                      "control_net:CONTROL_NET", "image:IMAGE", "strength:FLOAT",
                                      "start_percent:FLOAT", "end_percent:FLOAT"}));
  EXPECT_EQ(adv->required[5].options,
            (json{{"default", 0.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.001}}));
  EXPECT_EQ(adv->required[6].options,
            (json{{"default", 1.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.001}}));
  ASSERT_EQ(adv->optional.size(), 1u);
  EXPECT_EQ(adv->optional[0].name, "vae");
  ASSERT_EQ(adv->outputs.size(), 2u);
  EXPECT_EQ(adv->outputs[0].name, "positive");
  EXPECT_EQ(adv->outputs[1].name, "negative");
}

}  // namespace
}  // namespace darkroom::workflow
