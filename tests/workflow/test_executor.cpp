// The executor (suite WorkflowExecutor) on the tiny SD 1.5 model: ComfyUI's default
// workflow end to end against Sd15Pipeline (itself checked against diffusers fixtures),
// the cache across prompts (a new seed re-runs only KSampler and what follows), events,
// interrupts, errors, KSamplerAdvanced, ModelSamplingDiscrete (v-prediction against the
// formula on the UNet's raw output), area conditioning, noise masks; and the model cache's
// LRU budget (suite ModelCache).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <set>

#include "backend/device.h"
#include "capture_node.h"
#include "io/safetensors.h"
#include "pipeline/model_cache.h"
#include "pipeline/prompt_encoder.h"
#include "pipeline/sd15_pipeline.h"
#include "sampling/noise.h"
#include "sampling/schedule.h"
#include "test_util.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using test::default_prompt;
using test::DefaultParams;
using test::link;
namespace fs = std::filesystem;

using test::captured;

struct Recorder {
  std::vector<std::string> executing;
  std::vector<std::string> cached;
  std::vector<std::pair<std::string, json>> executed;
  std::vector<std::tuple<int, int, std::string>> progress;
  std::function<void(int, int)> on_progress;

  ExecutionEvents events() {
    ExecutionEvents e;
    e.cached = [this](const std::vector<std::string>& ids) { cached = ids; };
    e.executing = [this](const std::string& id) { executing.push_back(id); };
    e.executed = [this](const std::string& id, const json& out) { executed.emplace_back(id, out); };
    e.progress = [this](int v, int m, const std::string& id) {
      progress.emplace_back(v, m, id);
      if (on_progress) on_progress(v, m);
    };
    return e;
  }
};

std::set<std::string> as_set(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

// The default workflow with capture nodes on the latent (10) and the image (11).
json captured_prompt(const DefaultParams& p = {}) {
  json prompt = default_prompt(p);
  prompt["10"] = {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("3", 0)}}}};
  prompt["11"] = {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"image", link("8", 0)}}}};
  return prompt;
}

using darkroom::test::max_abs_diff;

class WorkflowExecutor : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_tiny_checkpoint((env_.checkpoints() / "tiny.safetensors").string());
    executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 32);
    captured().clear();
  }

  ExecutionResult run(const json& prompt, Recorder& rec,
                      const std::atomic<bool>* interrupt = nullptr) {
    const Validation v = validate_prompt(prompt, env_.paths());
    EXPECT_TRUE(v.ok) << v.error.dump(1) << v.node_errors.dump(1);
    static const std::atomic<bool> never{false};
    return executor_->execute("prompt-1", prompt, json::object(), v.outputs, rec.events(),
                              interrupt ? *interrupt : never);
  }

  // Sd15Pipeline on the same file, configured by hand as test_sd15_pipeline.cpp does.
  pipeline::Sd15Pipeline reference() const {
    const std::string path = (env_.checkpoints() / "tiny.safetensors").string();
    auto file = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path));
    const DType dtype = cpu_device().compute_dtype();
    const Weights uw = Weights::from_file(file, "model.diffusion_model.", kCpu, dtype);
    UNetConfig uc = UNetConfig::detect(uw);
    uc.groups = 4;
    uc.num_heads = 4;
    uc.head_dim = 0;
    const Weights vw = Weights::from_file(file, "first_stage_model.", kCpu, dtype);
    const Weights cw =
        Weights::from_file(file, "cond_stage_model.transformer.text_model.", kCpu, dtype);
    const std::string dir = DARKROOM_CLIP_DATA;
    return pipeline::Sd15Pipeline(
        text::ClipTokenizer::load(dir + "/sd1_tokenizer", dir + "/bpe_simple_vocab_16e6.txt.gz"),
        ClipTextEncoder::load(cw, ClipTextConfig::detect(cw, 2)), UNet::load(uw, uc),
        Vae::load(vw, VaeConfig::detect(vw, 8), false));
  }

  static pipeline::GenerateParams generate_params(const DefaultParams& d) {
    pipeline::GenerateParams p;
    p.prompt = d.positive;
    p.negative = d.negative;
    p.steps = d.steps;
    p.cfg = static_cast<float>(d.cfg);
    p.sampler = d.sampler;
    p.scheduler = d.scheduler;
    p.seed = d.seed;
    p.width = d.width / 8 * 2;  // same latent: EmptyLatentImage's /8, the tiny VAE's ×2
    p.height = d.height / 8 * 2;
    p.batch = d.batch;
    p.denoise = d.denoise;
    return p;
  }

  const Tensor& latent_of(const std::string& id) {
    return captured().at(id + ".latent").as<pipeline::Latent>().samples;
  }
  const Tensor& image_of(const std::string& id) {
    return captured().at(id + ".image").as<pipeline::Image>();
  }

  test::TempBase env_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(WorkflowExecutor, DefaultWorkflowMatchesSd15Pipeline) {
  DefaultParams d;
  d.batch = 2;
  d.height = 192;  // a 24×16 latent: not square
  std::string negative;
  for (int i = 0; i < 40; ++i) negative += "blurry, ";  // two 77-token chunks vs one
  d.negative = negative;
  Recorder rec;
  const ExecutionResult r = run(captured_prompt(d), rec);
  ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);

  const pipeline::Sd15Pipeline pipe = reference();
  const pipeline::GenerateParams gp = generate_params(d);
  const Tensor z = pipe.sample(gp);
  const Tensor& got_z = latent_of("10");
  ASSERT_EQ(got_z.shape(), Shape({2, 24, 16, 4}));
  EXPECT_LE(max_abs_diff(got_z, z), 1e-6);

  // VAEDecode's IMAGE is clamp((x + 1) / 2, 0, 1) of the decoder's output.
  std::vector<float> img = pipe.decode(z).to_floats();
  for (float& v : img) v = std::clamp((v + 1.0f) / 2.0f, 0.0f, 1.0f);
  const Tensor& got_img = image_of("11");
  ASSERT_EQ(got_img.shape(), Shape({2, 48, 32, 3}));
  EXPECT_LE(max_abs_diff(got_img, Tensor::from_floats(img, got_img.shape())), 1e-5);

  // SaveImage wrote both images and said so.
  ASSERT_TRUE(r.outputs.contains("9"));
  const json& images = r.outputs["9"]["images"];
  ASSERT_EQ(images.size(), 2u);
  EXPECT_TRUE(fs::exists(fs::path(env_.paths().output_directory) /
                         images[0]["filename"].get<std::string>()));
  ASSERT_EQ(rec.executed.size(), 1u);
  EXPECT_EQ(rec.executed[0].first, "9");

  // Events: every node once, inputs before their consumers, KSampler's progress per step.
  EXPECT_EQ(as_set(rec.executing),
            (std::set<std::string>{"3", "4", "5", "6", "7", "8", "9", "10", "11"}));
  EXPECT_EQ(rec.executing.size(), 9u);
  auto pos = [&](const std::string& id) {
    return std::find(rec.executing.begin(), rec.executing.end(), id) - rec.executing.begin();
  };
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{{"4", "6"},
                                                                                 {"4", "7"},
                                                                                 {"6", "3"},
                                                                                 {"7", "3"},
                                                                                 {"5", "3"},
                                                                                 {"3", "8"},
                                                                                 {"8", "9"},
                                                                                 {"3", "10"}})
    EXPECT_LT(pos(from), pos(to)) << from << " before " << to;
  // Output nodes run as soon as they are ready (ComfyUI's ux_friendly_pick_node).
  EXPECT_EQ(pos("10"), pos("3") + 1);
  EXPECT_TRUE(rec.cached.empty());
  EXPECT_EQ(rec.progress,
            (std::vector<std::tuple<int, int, std::string>>{{1, 2, "3"}, {2, 2, "3"}}));
  EXPECT_EQ(as_set(r.executed), as_set(rec.executing));
}

TEST_F(WorkflowExecutor, NewSeedRerunsOnlyTheSamplerAndWhatFollows) {
  DefaultParams d;
  Recorder first;
  ASSERT_EQ(run(captured_prompt(d), first).status, ExecutionResult::Status::Success);
  const Tensor first_z = latent_of("10");

  d.seed = 7;
  Recorder second;
  const ExecutionResult r = run(captured_prompt(d), second);
  ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
  EXPECT_EQ(as_set(second.executing), (std::set<std::string>{"3", "8", "9", "10", "11"}));
  EXPECT_EQ(as_set(second.cached), (std::set<std::string>{"4", "5", "6", "7"}));
  EXPECT_GT(max_abs_diff(latent_of("10"), first_z), 1e-3) << "a new seed must change the latent";
  // ...and still equals the pipeline for that seed.
  EXPECT_LE(max_abs_diff(latent_of("10"), reference().sample(generate_params(d))), 1e-6);

  // The same prompt again: everything cached, nothing runs, SaveImage's UI is sent again.
  Recorder third;
  const ExecutionResult again = run(captured_prompt(d), third);
  ASSERT_EQ(again.status, ExecutionResult::Status::Success);
  EXPECT_TRUE(third.executing.empty());
  EXPECT_EQ(third.cached.size(), 9u);
  ASSERT_EQ(third.executed.size(), 1u);
  EXPECT_EQ(third.executed[0].second, r.outputs["9"]);

  // String and number spellings of a value are one cache key (validation's int()).
  json spelled = captured_prompt(d);
  spelled["3"]["inputs"]["steps"] = "2";
  Recorder fourth;
  ASSERT_EQ(run(spelled, fourth).status, ExecutionResult::Status::Success);
  EXPECT_TRUE(fourth.executing.empty());

  // free_memory drops cached outputs: all runs again.
  executor_->free_memory(true, true);
  Recorder fifth;
  ASSERT_EQ(run(captured_prompt(d), fifth).status, ExecutionResult::Status::Success);
  EXPECT_EQ(fifth.executing.size(), 9u);
}

TEST_F(WorkflowExecutor, InterruptStopsTheSamplerAndTheNextRunResumes) {
  std::atomic<bool> interrupt{false};
  Recorder rec;
  rec.on_progress = [&](int value, int) {
    if (value == 1) interrupt = true;
  };
  DefaultParams d;
  d.steps = 3;
  const ExecutionResult r = run(captured_prompt(d), rec, &interrupt);
  ASSERT_EQ(r.status, ExecutionResult::Status::Interrupted);
  EXPECT_EQ(r.error["node_id"], "3");
  EXPECT_EQ(r.error["node_type"], "KSampler");
  EXPECT_EQ(rec.progress.size(), 1u);
  EXPECT_EQ(as_set(r.error["executed"].get<std::vector<std::string>>()),
            (std::set<std::string>{"4", "5", "6", "7"}));

  // Interrupted before any node: the first one to start is named, and does not run.
  Recorder early;
  ExecutionResult r2 = run(captured_prompt(d), early, &interrupt);
  EXPECT_EQ(r2.status, ExecutionResult::Status::Interrupted);
  EXPECT_EQ(early.executing, std::vector<std::string>{"3"});
  EXPECT_EQ(r2.error["node_id"], "3");
  EXPECT_TRUE(early.progress.empty());

  interrupt = false;
  Recorder resumed;
  ASSERT_EQ(run(captured_prompt(d), resumed, &interrupt).status, ExecutionResult::Status::Success);
  EXPECT_EQ(as_set(resumed.executing), (std::set<std::string>{"3", "8", "9", "10", "11"}));
}

TEST_F(WorkflowExecutor, NodeErrorIsReportedAndTheExecutorKeepsGoing) {
  std::ofstream(env_.checkpoints() / "broken.safetensors") << "this is not a safetensors file";
  DefaultParams bad;
  bad.ckpt = "broken.safetensors";
  Recorder rec;
  const ExecutionResult r = run(captured_prompt(bad), rec);
  ASSERT_EQ(r.status, ExecutionResult::Status::Error);
  EXPECT_EQ(r.error["node_id"], "4");
  EXPECT_EQ(r.error["node_type"], "CheckpointLoaderSimple");
  EXPECT_EQ(r.error["exception_type"], "RuntimeError");
  EXPECT_NE(r.error["exception_message"].get<std::string>().find("broken.safetensors"),
            std::string::npos)
      << r.error["exception_message"];
  EXPECT_EQ(r.error["current_inputs"]["ckpt_name"], json::array({"broken.safetensors"}));
  for (const char* key : {"executed", "traceback", "current_outputs"})
    EXPECT_TRUE(r.error.contains(key));

  Recorder ok;
  EXPECT_EQ(run(captured_prompt(), ok).status, ExecutionResult::Status::Success);
}

TEST_F(WorkflowExecutor, KSamplerAdvancedInTwoHalvesEqualsOneRun) {
  // KSamplerAdvanced 0..2 with leftover noise, then 2..4 without adding noise: the
  // same sigmas as one 4-step KSampler (euler is deterministic), so the same latent.
  DefaultParams d;
  d.steps = 4;
  Recorder one;
  ASSERT_EQ(run(captured_prompt(d), one).status, ExecutionResult::Status::Success);
  const Tensor whole = latent_of("10");

  json p = captured_prompt(d);
  json a = {{"class_type", "KSamplerAdvanced"},
            {"inputs",
             {{"model", link("4", 0)},
              {"add_noise", "enable"},
              {"noise_seed", d.seed},
              {"steps", 4},
              {"cfg", d.cfg},
              {"sampler_name", "euler"},
              {"scheduler", "normal"},
              {"positive", link("6", 0)},
              {"negative", link("7", 0)},
              {"latent_image", link("5", 0)},
              {"start_at_step", 0},
              {"end_at_step", 2},
              {"return_with_leftover_noise", "enable"}}}};
  json b = a;
  b["inputs"]["add_noise"] = "disable";
  b["inputs"]["latent_image"] = link("20", 0);
  b["inputs"]["start_at_step"] = 2;
  b["inputs"]["end_at_step"] = 10000;
  b["inputs"]["return_with_leftover_noise"] = "disable";
  p["20"] = a;
  p["21"] = b;
  p["10"]["inputs"]["latent"] = link("21", 0);
  Recorder two;
  ASSERT_EQ(run(p, two).status, ExecutionResult::Status::Success);
  // Equal up to the float round trip z/scale·scale between the halves (latents here
  // reach tens; a wrong split of the sigmas moves them by whole units).
  EXPECT_LE(max_abs_diff(latent_of("10"), whole), 1e-3);
}

TEST_F(WorkflowExecutor, VPredictionUsesTheVFormula) {
  // One euler step from σ_max to 0 returns D(x_T, σ_max). With cfg 1 only the positive
  // runs, so D = x/(σ²+1) - out·σ/sqrt(σ²+1) of the UNet's raw output on c_in·x.
  DefaultParams d;
  d.steps = 1;
  d.cfg = 1.0;
  json p = captured_prompt(d);
  p["12"] = {{"class_type", "ModelSamplingDiscrete"},
             {"inputs", {{"model", link("4", 0)}, {"sampling", "v_prediction"}, {"zsnr", false}}}};
  p["3"]["inputs"]["model"] = link("12", 0);
  Recorder rec;
  ASSERT_EQ(run(p, rec).status, ExecutionResult::Status::Success);
  const Tensor& got = latent_of("10");  // VAE space: D / 0.18215

  const pipeline::Sd15Pipeline pipe = reference();
  const sampling::DiscreteSchedule schedule = sampling::DiscreteSchedule::scaled_linear();
  const double sigma = schedule.sigma_max();
  const int64_t nchw[4] = {1, 4, 16, 16};
  const Tensor noise = sampling::prepare_noise(nchw, d.seed);  // [1, 16, 16, 4]
  std::vector<float> x = noise.to_floats();
  // max_denoise start: x_T = sqrt(1 + σ²)·noise.
  for (float& v : x) v = static_cast<float>(v * std::sqrt(1.0 + sigma * sigma));
  std::vector<float> xin(x);
  for (float& v : xin) v = static_cast<float>(v / std::sqrt(sigma * sigma + 1.0));
  const Tensor ctx = pipeline::encode_prompt(pipe.tokenizer(), pipe.clip(), d.positive);
  const Tensor out = pipe.unet().forward(
      Tensor::from_floats(xin, {1, 16, 16, 4}),
      Tensor::from_floats(std::vector<float>{schedule.timestep(static_cast<float>(sigma))}, {1}),
      ctx);
  const std::vector<float> o = out.to_floats();
  std::vector<double> want(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    want[i] =
        (x[i] / (sigma * sigma + 1.0) - o[i] * sigma / std::sqrt(sigma * sigma + 1.0)) / 0.18215;
  const std::vector<float> g = got.to_floats();
  ASSERT_EQ(g.size(), want.size());
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i)
    worst = std::max(worst, std::fabs(g[i] - want[i]) / (1 + std::fabs(want[i])));
  EXPECT_LE(worst, 1e-4);
}

TEST_F(WorkflowExecutor, AreaOverTheWholeLatentIsThePlainPrompt) {
  // An area at (0, 0) as large as the latent has no edge inside it, so no feathering:
  // the weights are all `strength` and divide out.
  DefaultParams d;
  Recorder plain;
  ASSERT_EQ(run(captured_prompt(d), plain).status, ExecutionResult::Status::Success);
  const Tensor want = latent_of("10");
  json p = captured_prompt(d);
  p["12"] = {{"class_type", "ConditioningSetArea"},
             {"inputs",
              {{"conditioning", link("6", 0)},
               {"width", d.width},
               {"height", d.height},
               {"x", 0},
               {"y", 0},
               {"strength", 1.0}}}};
  p["3"]["inputs"]["positive"] = link("12", 0);
  Recorder area;
  ASSERT_EQ(run(p, area).status, ExecutionResult::Status::Success);
  EXPECT_EQ(max_abs_diff(latent_of("10"), want), 0.0);

  // Two prompts each on half of the latent (feathered at the seam) differ from it.
  p["13"] = p["12"];
  p["12"]["inputs"]["width"] = d.width / 2;
  p["13"]["inputs"]["width"] = d.width / 2;
  p["13"]["inputs"]["x"] = d.width / 2;
  p["13"]["inputs"]["conditioning"] = link("7", 0);
  p["14"] = {{"class_type", "ConditioningCombine"},
             {"inputs", {{"conditioning_1", link("12", 0)}, {"conditioning_2", link("13", 0)}}}};
  p["3"]["inputs"]["positive"] = link("14", 0);
  Recorder halves;
  ASSERT_EQ(run(p, halves).status, ExecutionResult::Status::Success);
  EXPECT_GT(max_abs_diff(latent_of("10"), want), 1e-4);
}

TEST_F(WorkflowExecutor, NoiseMaskKeepsTheUnmaskedLatent) {
  // mask 0: KSamplerX0Inpaint returns the input latent everywhere (here the empty one);
  // mask 1: the plain run.
  DefaultParams d;
  Recorder plain;
  ASSERT_EQ(run(captured_prompt(d), plain).status, ExecutionResult::Status::Success);
  const Tensor want = latent_of("10");
  for (double value : {0.0, 1.0}) {
    json p = captured_prompt(d);
    p["12"] = {{"class_type", "SolidMask"},
               {"inputs", {{"value", value}, {"width", 128}, {"height", 128}}}};
    p["13"] = {{"class_type", "SetLatentNoiseMask"},
               {"inputs", {{"samples", link("5", 0)}, {"mask", link("12", 0)}}}};
    p["3"]["inputs"]["latent_image"] = link("13", 0);
    Recorder rec;
    ASSERT_EQ(run(p, rec).status, ExecutionResult::Status::Success);
    if (value == 0.0) {
      // Euler's last step x + (x - D)/σ·(0 - σ) with D = 0 rounds to within an ulp of 0.
      for (float v : latent_of("10").to_floats()) ASSERT_LE(std::fabs(v), 1e-5f);
    } else {
      EXPECT_EQ(max_abs_diff(latent_of("10"), want), 0.0);
    }
  }
}

// A value that only exists at run time (here a loaded image) over the server's pixel cap
// fails its prompt before the next node uses it; the executor serves the next prompt.
TEST_F(WorkflowExecutor, ValuesOverThePixelLimitFailOnlyTheirPrompt) {
  fs::create_directories(env_.paths().input_directory);
  fs::copy_file(std::string(DARKROOM_TEST_DATA) + "/images/rgb.png",  // 13 × 7 pixels
                fs::path(env_.paths().input_directory) / "rgb.png");
  const json prompt = {
      {"1", {{"class_type", "LoadImage"}, {"inputs", {{"image", "rgb.png"}}}}},
      {"2",
       {{"class_type", "SaveImage"},
        {"inputs", {{"images", test::link("1", 0)}, {"filename_prefix", "limit"}}}}}};
  const Validation v = validate_prompt(prompt, env_.paths(), ResourceLimits{90, 0});
  ASSERT_TRUE(v.ok) << v.node_errors.dump(1);  // nothing literal to check
  static const std::atomic<bool> never{false};
  Recorder rec;
  Executor tight(env_.paths(), -1, uint64_t{1} << 30, {}, ResourceLimits{90, 0});
  ExecutionResult r = tight.execute("p1", prompt, json::object(), v.outputs, rec.events(), never);
  ASSERT_EQ(r.status, ExecutionResult::Status::Error);
  EXPECT_EQ(r.error["node_id"], "2");
  EXPECT_NE(r.error["exception_message"].get<std::string>().find(
                "input 'images': an image of 1 × 7 × 13 (91 pixels) is over this server's "
                "limit of 90 pixels"),
            std::string::npos)
      << r.error["exception_message"];
  Executor enough(env_.paths(), -1, uint64_t{1} << 30, {}, ResourceLimits{91, 0});
  r = enough.execute("p2", prompt, json::object(), v.outputs, rec.events(), never);
  EXPECT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
}

// CLIPTextEncode reads "embedding:name" from the server's embeddings folder (the
// vectors themselves are checked against transformers in test_prompt_embeddings.cpp):
// with the file there the sampled latent changes; without it the words stay text.
TEST_F(WorkflowExecutor, ClipTextEncodeUsesTheEmbeddingsFolder) {
  DefaultParams p;
  p.positive = "a photo of embedding:style in a garden";
  Recorder rec;
  ASSERT_EQ(run(captured_prompt(p), rec).status, ExecutionResult::Status::Success);
  const Tensor as_text = latent_of("10");
  const fs::path folder = fs::path(env_.paths().model_folders.at("embeddings").at(0));
  fs::create_directories(folder);
  fs::copy_file(std::string(DARKROOM_TEST_DATA) + "/pipeline/embeddings/style.safetensors",
                folder / "style.safetensors");
  executor_->free_memory(false, true);  // the file is not part of the cache key
  Recorder again;
  ASSERT_EQ(run(captured_prompt(p), again).status, ExecutionResult::Status::Success);
  EXPECT_GT(max_abs_diff(latent_of("10"), as_text), 1e-3);
}

TEST(ModelCache, EvictsLeastRecentlyUsedPastTheBudget) {
  pipeline::ModelCache cache(100);
  int loads = 0;
  auto get = [&](const std::string& key, uint64_t bytes) {
    return *cache.get_or_load<std::string>(
        key, [&]() -> std::pair<std::shared_ptr<const std::string>, uint64_t> {
          ++loads;
          return {std::make_shared<const std::string>(key), bytes};
        });
  };
  EXPECT_EQ(get("a", 60), "a");
  EXPECT_EQ(get("b", 30), "b");
  EXPECT_EQ(get("a", 60), "a");  // hit; a is now the most recent
  EXPECT_EQ(loads, 2);
  EXPECT_EQ(get("c", 30), "c");  // 120 > 100: b (least recent) goes
  EXPECT_TRUE(cache.contains("a"));
  EXPECT_FALSE(cache.contains("b"));
  EXPECT_TRUE(cache.contains("c"));
  EXPECT_EQ(cache.bytes(), 90u);
  EXPECT_EQ(get("huge", 500), "huge");  // larger than the budget: kept alone
  EXPECT_EQ(cache.size(), 1u);
  cache.clear();
  EXPECT_EQ(cache.bytes(), 0u);
}

}  // namespace
}  // namespace darkroom::workflow
