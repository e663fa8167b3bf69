// LoraLoader and LoraLoaderModelOnly (suite LoraNodes) through the real executor:
// CheckpointLoaderSimple → LoraLoader → LoraLoader → CLIPTextEncode ×2 → KSampler →
// VAEDecode → capture on pipeline_golden.py's tiny SD 1.5 (the sd15_tiny UNet and VAE and
// the seeded 32-wide CLIP, clip32.safetensors + its torch.randn token table), against
// tools/fixtures/lora_pipeline.py's goldens (data/lora/pipe_golden.safetensors): the same
// 4-step euler runs with the LoRA stacks fused by diffusers (set_adapters + fuse_lora) into
// the UNet and by PEFT (set_scale + merge) into the CLIP.
//
// LoRA files (data/lora/pipe_*.safetensors): a1 kohya names, f16, alpha (scale 2);
// a2 diffusers/PEFT names, f32, no alpha, patching two of a1's tensors again; b kohya
// LoCon on 3×3 convs, alpha 1 of rank 2.
//
// Tolerance: 1e-3 on z (f32, |z| up to ~310), as the golden SD 1.x runs
// (test_golden_sd15.cpp: float rounding order only, measured ≤ 4.3e-4 over 20 steps), and
// 1e-3 on the decoded image in [0, 1]. The LoRAs move z by 16 .. 67 (generator's log), so
// a wrong strength, a lost module or a base left patched is far outside it.
// Assumes the CPU computes in f32 (no native bf16), as the other golden workflow tests do.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backend/ops.h"
#include "capture_node.h"
#include "golden_checkpoint.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/image.h"
#include "pipeline/latent.h"
#include "pipeline/model_cache.h"
#include "sampling/torch_rng.h"
#include "test_util.h"
#include "workflow/executor.h"
#include "workflow/node.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

using test::captured;
using test::link;
namespace fs = std::filesystem;

constexpr double kTol = 1e-3;

std::string data(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/" + file;
}

const SafetensorsFile& lora_golden() {
  static const SafetensorsFile f = SafetensorsFile::open(data("lora/pipe_golden.safetensors"));
  return f;
}

const SafetensorsFile& sd15_golden() {
  static const SafetensorsFile f = SafetensorsFile::open(data("pipeline/golden.safetensors"));
  return f;
}

// The golden decoder output [-1, 1] as VAEDecode hands it on: clamp((x + 1) / 2, 0, 1).
Tensor as_image(const Tensor& t) {
  std::vector<float> v = t.to_floats();
  for (float& x : v) x = std::clamp((x + 1.0f) / 2.0f, 0.0f, 1.0f);
  return Tensor::from_floats(v, t.shape());
}

using darkroom::test::max_abs_diff;

using test::write_golden_checkpoint;

// One LoRA node of a chain: LoraLoader (clip strength given) or LoraLoaderModelOnly.
struct Lora {
  std::string name;
  double model = 1.0;
  std::optional<double> clip;
};

struct Sample {
  std::string positive = "a red cat in the snow";
  std::string negative = "blurry, ugly";
  uint64_t seed = 7;
  int steps = 4;
  double cfg = 5.0;
  int size = 128;  // EmptyLatentImage pixels: a 16×16 latent, a 32×32 image
  int batch = 1;
};

// CheckpointLoaderSimple "4" → LoRA nodes "10", "11", … → CLIPTextEncode "6" / "7" →
// KSampler "3" (euler, normal) → VAEDecode "8" → capture "99".
json lora_prompt(const std::vector<Lora>& loras, const Sample& s = {}) {
  json p;
  p["4"] = {{"class_type", "CheckpointLoaderSimple"},
            {"inputs", {{"ckpt_name", "golden.safetensors"}}}};
  json model = link("4", 0), clip = link("4", 1);
  for (size_t i = 0; i < loras.size(); ++i) {
    const std::string id = std::to_string(10 + i);
    const Lora& l = loras[i];
    json in = {{"model", model}, {"lora_name", l.name}, {"strength_model", l.model}};
    if (l.clip) {
      in["clip"] = clip;
      in["strength_clip"] = *l.clip;
      p[id] = {{"class_type", "LoraLoader"}, {"inputs", in}};
      clip = link(id, 1);
    } else {
      p[id] = {{"class_type", "LoraLoaderModelOnly"}, {"inputs", in}};
    }
    model = link(id, 0);
  }
  p["5"] = {{"class_type", "EmptyLatentImage"},
            {"inputs", {{"width", s.size}, {"height", s.size}, {"batch_size", s.batch}}}};
  p["6"] = {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", s.positive}, {"clip", clip}}}};
  p["7"] = {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", s.negative}, {"clip", clip}}}};
  p["3"] = test::ksampler_node({s.seed, s.steps, s.cfg, "euler", "normal", 1.0}, model,
                               link("6", 0), link("7", 0), link("5", 0));
  p["8"] = {{"class_type", "VAEDecode"},
            {"inputs", {{"samples", link("3", 0)}, {"vae", link("4", 2)}}}};
  p["99"] = {{"class_type", "DarkroomTestCapture"},
             {"inputs", {{"latent", link("3", 0)}, {"image", link("8", 0)}}}};
  return p;
}

const std::vector<Lora> kStack = {{"pipe_a1.safetensors", 0.8, 0.6},
                                  {"sub/pipe_a2.safetensors", 1.0, 1.0}};
const std::vector<Lora> kB = {{"pipe_b.safetensors", -0.7, 1.0}};
const std::vector<Lora> kModelOnly = {{"pipe_a1.safetensors", 1.0, std::nullopt}};

class LoraNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    write_golden_checkpoint((env_.checkpoints() / "golden.safetensors").string());
    const fs::path loras(env_.paths().model_folders.at("loras").front());
    fs::create_directories(loras / "sub");
    for (const char* name : {"pipe_a1", "pipe_b"})
      fs::copy_file(data(std::string("lora/") + name + ".safetensors"),
                    loras / (std::string(name) + ".safetensors"));
    fs::copy_file(data("lora/pipe_a2.safetensors"), loras / "sub" / "pipe_a2.safetensors");
    // Modules that no SD 1.x checkpoint has: every key is "not loaded".
    const Tensor down = Tensor::from_floats(std::vector<float>(8, 0.5f), {2, 4});
    const Tensor up = Tensor::from_floats(std::vector<float>(8, 0.5f), {4, 2});
    write_safetensors((loras / "nothing.safetensors").string(),
                      {{"lora_unet_no_such_block_proj.lora_down.weight", down},
                       {"lora_unet_no_such_block_proj.lora_up.weight", up},
                       {"lora_te2_text_model_encoder_layers_5_mlp_fc1.lora_down.weight", down},
                       {"lora_te2_text_model_encoder_layers_5_mlp_fc1.lora_up.weight", up}},
                      {});
    executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 32);
    captured().clear();
  }

  // Runs a validated `prompt`; the latent and image are in latent_ / image_.
  ExecutionResult run(const json& prompt) {
    const Validation v = validate_prompt(prompt, env_.paths());
    EXPECT_TRUE(v.ok) << v.error.dump(1) << v.node_errors.dump(1);
    return run_unvalidated(prompt);
  }

  ExecutionResult run_unvalidated(const json& prompt) {
    static const std::atomic<bool> never{false};
    captured().clear();
    cached_.clear();
    ExecutionEvents events;
    events.cached = [this](const std::vector<std::string>& ids) { cached_ = ids; };
    ExecutionResult r =
        executor_->execute("prompt-lora", prompt, json::object(), {"99"}, events, never);
    if (r.status == ExecutionResult::Status::Success) {
      latent_ = captured().at("99.latent").as<pipeline::Latent>().samples;
      image_ = captured().at("99.image").as<pipeline::Image>();
    }
    return r;
  }

  // z and image of `prompt` against lora_pipeline.py's run `golden`.
  void expect_golden(const json& prompt, const std::string& golden) {
    SCOPED_TRACE(golden);
    const ExecutionResult r = run(prompt);
    ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
    EXPECT_LE(max_abs_diff(latent_, lora_golden().tensor(golden + ".z")), kTol);
    EXPECT_LE(max_abs_diff(image_, as_image(lora_golden().tensor(golden + ".image"))), kTol);
  }

  test::TempBase env_;
  std::unique_ptr<Executor> executor_;
  std::vector<std::string> cached_;
  Tensor latent_, image_;
};

// One executor, as a server would: stack (i), another set (ii), (i) again (the LoRA nodes
// run again on the cached checkpoint: its base weights were not written), model only
// (iii), and no LoRA at all.
TEST_F(LoraNodes, StacksSwitchSetsAndLeaveTheBaseAsIs) {
  expect_golden(lora_prompt(kStack), "stack");
  const Tensor first = latent_;
  expect_golden(lora_prompt(kB), "b_negative");
  expect_golden(lora_prompt(kStack), "stack");
  EXPECT_EQ(max_abs_diff(latent_, first), 0.0);  // bit for bit the first run
  // The checkpoint came from the cache; both LoRA nodes ran again.
  EXPECT_NE(std::find(cached_.begin(), cached_.end(), "4"), cached_.end());
  EXPECT_EQ(std::find(cached_.begin(), cached_.end(), "10"), cached_.end());
  EXPECT_EQ(std::find(cached_.begin(), cached_.end(), "11"), cached_.end());
  expect_golden(lora_prompt(kModelOnly), "model_only");
  expect_golden(lora_prompt({}), "base");
}

// The same checkpoint without LoRA through the executor reproduces pipeline_golden.py's
// own 20-step run "euler_normal" (batch 2, a weighted prompt), so the goldens above sit
// on the model the SD 1.x goldens check.
TEST_F(LoraNodes, NoLoraMatchesPipelineGolden) {
  Sample s;
  s.positive = "a photo of a (red:1.3) cat";
  s.negative = "blurry, low quality";
  s.seed = 42;
  s.steps = 20;
  s.cfg = 6.0;
  s.batch = 2;
  const ExecutionResult r = run(lora_prompt({}, s));
  ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
  EXPECT_LE(max_abs_diff(latent_, sd15_golden().tensor("euler_normal.z")), kTol);
  EXPECT_LE(max_abs_diff(image_, as_image(sd15_golden().tensor("euler_normal.image"))), kTol);
}

// Strength 0 returns the inputs: no LoRA effect, even stacked on a LoRA that has one
// elsewhere in the graph; a zero on one side only leaves that side alone.
TEST_F(LoraNodes, StrengthZeroPassesThrough) {
  expect_golden(lora_prompt({{"pipe_a1.safetensors", 0.0, 0.0}}), "base");
  expect_golden(lora_prompt({{"pipe_b.safetensors", 0.0, std::nullopt}}), "base");
  // a1 on the model only, through LoraLoader with strength_clip 0 = LoraLoaderModelOnly.
  expect_golden(lora_prompt({{"pipe_a1.safetensors", 1.0, 0.0}}), "model_only");
  expect_golden(lora_prompt({{"pipe_a1.safetensors", 0.8, 0.6},
                             {"pipe_b.safetensors", 0.0, 0.0},
                             {"sub/pipe_a2.safetensors", 1.0, 1.0}}),
                "stack");
}

// ComfyUI: validation rejects a name not in the loras list; past validation the node
// fails with folder_paths.get_full_path_or_raise's message.
TEST_F(LoraNodes, UnknownLoraName) {
  const json prompt = lora_prompt({{"nope.safetensors", 1.0, 1.0}});
  const Validation v = validate_prompt(prompt, env_.paths());
  EXPECT_FALSE(v.ok);
  ASSERT_TRUE(v.node_errors.contains("10")) << v.node_errors.dump(1);
  EXPECT_EQ(v.node_errors["10"]["errors"][0]["type"], "value_not_in_list");

  const ExecutionResult r = run_unvalidated(prompt);
  ASSERT_EQ(r.status, ExecutionResult::Status::Error);
  EXPECT_EQ(r.error["node_id"], "10");
  EXPECT_EQ(r.error["node_type"], "LoraLoader");
  EXPECT_NE(r.error["exception_message"].get<std::string>().find(
                "Model in folder 'loras' with filename 'nope.safetensors' not found."),
            std::string::npos)
      << r.error.dump(1);

  const ExecutionResult m = run_unvalidated(lora_prompt({{"gone.safetensors", 0.5, std::nullopt}}));
  ASSERT_EQ(m.status, ExecutionResult::Status::Error);
  EXPECT_NE(m.error["exception_message"].get<std::string>().find(
                "Model in folder 'loras' with filename 'gone.safetensors' not found."),
            std::string::npos)
      << m.error.dump(1);
}

// A file whose keys patch nothing in this model loads (ComfyUI logs "lora key not
// loaded") and the run is the unpatched one.
TEST_F(LoraNodes, KeysThatPatchNothingRunUnpatched) {
  expect_golden(lora_prompt({{"nothing.safetensors", 1.0, 1.0}}), "base");
  expect_golden(lora_prompt({{"nothing.safetensors", 0.7, std::nullopt}}), "base");
}

// The tiny SDXL checkpoint of sdxl_pipeline.py (f16 with some fp8 e4m3 tensors) as
// `name`; with `upcast` its fp8 tensors are stored as f32 (the same values exactly).
void write_sdxl(const fs::path& dir, const std::string& name, bool upcast) {
  const std::string path = (dir / name).string();
  pipeline::test::write_family_checkpoint("sdxl.safetensors", path);
  if (!upcast) return;
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> meta;
  {
    const SafetensorsFile f = SafetensorsFile::open(path);
    for (const TensorInfo& t : f.tensors()) {
      Tensor v = f.tensor(t.name);
      if (v.dtype() == DType::F8E4M3) v = ops::cast(v, DType::F32);
      tensors.emplace_back(t.name, v);
    }
    meta = f.metadata();
  }
  write_safetensors(path, tensors, meta);
}

// Our SD 1.5 MODEL "4" with the CLIP of checkpoint `clip_ckpt` ("20") through LoraLoader
// "10" (a1 at 1.0 / 1.0; none when !lora); that checkpoint's model samples.
json mixed_prompt(const std::string& clip_ckpt, bool lora) {
  json p = lora_prompt({});
  p["20"] = {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", clip_ckpt}}}};
  json clip = link("20", 1);
  if (lora) {
    p["10"] = {{"class_type", "LoraLoader"},
               {"inputs",
                {{"model", link("4", 0)},
                 {"clip", clip},
                 {"lora_name", "pipe_a1.safetensors"},
                 {"strength_model", 1.0},
                 {"strength_clip", 1.0}}}};
    clip = link("10", 1);
  }
  p["6"]["inputs"]["clip"] = clip;
  p["7"]["inputs"]["clip"] = clip;
  p["3"]["inputs"]["model"] = link("20", 0);
  p["8"]["inputs"]["vae"] = link("20", 2);
  return p;
}

// The LoRA file is matched to the MODEL's and the CLIP's tensors; a CLIP from another
// checkpoint (the tiny SDXL's CLIP-L, which a1's "lora_te_" keys also name) must get the
// same patches whether or not the file was opened before with another CLIP.
TEST_F(LoraNodes, ClipFromAnotherCheckpointIsPatchedAlike) {
  write_sdxl(env_.checkpoints(), "sdxl32.safetensors", /*upcast=*/true);
  ASSERT_EQ(run(mixed_prompt("sdxl32.safetensors", false)).status,
            ExecutionResult::Status::Success);
  const Tensor unpatched = latent_;
  ASSERT_EQ(run(mixed_prompt("sdxl32.safetensors", true)).status, ExecutionResult::Status::Success);
  const Tensor fresh = latent_;
  EXPECT_GT(max_abs_diff(fresh, unpatched), 1e-2);  // a1 patches the SDXL CLIP-L

  // A new executor: the file first on the SD 1.5 checkpoint's own CLIP, then the mixed graph.
  executor_ = std::make_unique<Executor>(env_.paths(), -1, uint64_t{1} << 32);
  ASSERT_EQ(run(lora_prompt({{"pipe_a1.safetensors", 1.0, 1.0}})).status,
            ExecutionResult::Status::Success);
  ASSERT_EQ(run(mixed_prompt("sdxl32.safetensors", true)).status, ExecutionResult::Status::Success);
  EXPECT_EQ(max_abs_diff(latent_, fresh), 0.0);
}

// ComfyUI patches checkpoints stored in fp8 (it upcasts, merges, casts back). Here the
// weights are computed in f32 either way, so the fp8 file and its exact f32 copy must give
// the same run.
TEST_F(LoraNodes, Fp8CheckpointTakesLoras) {
  write_sdxl(env_.checkpoints(), "sdxl_fp8.safetensors", /*upcast=*/false);
  write_sdxl(env_.checkpoints(), "sdxl32.safetensors", /*upcast=*/true);
  const ExecutionResult r = run(mixed_prompt("sdxl_fp8.safetensors", true));
  ASSERT_EQ(r.status, ExecutionResult::Status::Success) << r.error.dump(1);
  const Tensor fp8 = latent_;
  ASSERT_EQ(run(mixed_prompt("sdxl32.safetensors", true)).status, ExecutionResult::Status::Success);
  EXPECT_EQ(max_abs_diff(fp8, latent_), 0.0);
}

// One node of `class_name` run on its own, as the executor would run it.
std::vector<Value> run_node(const std::string& class_name, const NodeInputs& in,
                            const FolderPaths& paths, pipeline::ModelCache& models) {
  const NodeDecl* decl = NodeRegistry::instance().find(class_name);
  EXPECT_NE(decl, nullptr) << class_name;
  const json prompt = json::object(), extra = nullptr;
  NodeContext ctx{.paths = paths, .models = models, .prompt = prompt, .extra_pnginfo = extra};
  return decl->run(in, ctx).outputs;
}

// A chain of LoraLoaders merges only the stack that is used: each loader hands on its
// stack unmerged (the base's networks stand in for configuration), nodes that only
// change settings keep it so, and the first node that runs the MODEL / CLIP merges the
// whole stack once, into the model cache under (base, stack), keeping its own settings.
// (That the merged result is right: StacksSwitchSetsAndLeaveTheBaseAsIs, the same chain.)
TEST_F(LoraNodes, ChainsMergeOnlyTheirLastStack) {
  const FolderPaths& paths = env_.paths();
  pipeline::ModelCache models(uint64_t{1} << 32);
  NodeInputs ck;
  ck.set("ckpt_name", Value::literal("COMBO", "golden.safetensors"));
  const std::vector<Value> base = run_node("CheckpointLoaderSimple", ck, paths, models);
  const auto lora = [&](const Value& model, const Value& clip, const Lora& l) {
    NodeInputs in;
    in.set("model", model);
    in.set("clip", clip);
    in.set("lora_name", Value::literal("COMBO", l.name));
    in.set("strength_model", Value::literal("FLOAT", l.model));
    in.set("strength_clip", Value::literal("FLOAT", *l.clip));
    return run_node("LoraLoader", in, paths, models);
  };
  const size_t loaded = models.size();
  const std::vector<Value> one = lora(base[0], base[1], kStack[0]);
  const std::vector<Value> two = lora(one[0], one[1], kStack[1]);
  EXPECT_EQ(models.size(), loaded + 2);  // the two LoRA files, nothing merged
  const auto& m0 = base[0].as<pipeline::ModelHandle>();
  const auto& m2 = two[0].as<pipeline::ModelHandle>();
  const auto& c2 = two[1].as<pipeline::ClipHandle>();
  ASSERT_TRUE(m2.deferred && c2.deferred);
  EXPECT_EQ(m2.unet, m0.unet);
  ASSERT_EQ(m2.loras.size(), 2u);
  EXPECT_FLOAT_EQ(m2.loras[0].strength, 0.8f);
  EXPECT_FLOAT_EQ(m2.loras[1].strength, 1.0f);
  EXPECT_FLOAT_EQ(c2.loras[0].strength, 0.6f);

  // ModelSamplingDiscrete and CLIPSetLastLayer between the loaders merge nothing either.
  NodeInputs ms;
  ms.set("model", one[0]);
  ms.set("sampling", Value::literal("COMBO", "v_prediction"));
  ms.set("zsnr", Value::literal("BOOLEAN", false));
  const std::vector<Value> sampled = run_node("ModelSamplingDiscrete", ms, paths, models);
  NodeInputs sl;
  sl.set("clip", one[1]);
  sl.set("stop_at_clip_layer", Value::literal("INT", -2));
  const std::vector<Value> skipped = run_node("CLIPSetLastLayer", sl, paths, models);
  const std::vector<Value> two_v = lora(sampled[0], skipped[0], kStack[1]);
  EXPECT_EQ(models.size(), loaded + 2);

  // First use: the whole stack is merged once per network, and the second chain (same
  // base, same stack) finds it in the cache with its own settings kept.
  NodeInputs use;
  use.set("model", two[0]);
  use.set("clip", two[1]);
  use.set("model_v", two_v[0]);
  use.set("clip_2", two_v[1]);
  const pipeline::ModelHandle m = use.model("model");
  const pipeline::ClipHandle c = use.clip("clip");
  EXPECT_EQ(models.size(), loaded + 4);
  EXPECT_FALSE(m.deferred || c.deferred);
  EXPECT_NE(m.unet, m0.unet);
  EXPECT_NE(c.encoder, base[1].as<pipeline::ClipHandle>().encoder);
  EXPECT_GT(m.lora_bytes, 0u);
  EXPECT_EQ(use.model("model").unet, m.unet);  // made once
  const pipeline::ModelHandle mv = use.model("model_v");
  const pipeline::ClipHandle cs = use.clip("clip_2");
  EXPECT_EQ(models.size(), loaded + 4);
  EXPECT_EQ(mv.unet, m.unet);
  EXPECT_EQ(cs.encoder, c.encoder);
  EXPECT_EQ(mv.sampling.prediction, sampling::Prediction::V);
  EXPECT_EQ(m.sampling.prediction, sampling::Prediction::Eps);
  EXPECT_EQ(cs.clip_skip, 2);
  EXPECT_EQ(c.clip_skip, 1);
}

TEST_F(LoraNodes, ObjectInfoAsComfy) {
  const json all = object_info(env_.paths());
  const json names = json{"nothing.safetensors", "pipe_a1.safetensors", "pipe_b.safetensors",
                          "sub/pipe_a2.safetensors"};
  const json& l = all.at("LoraLoader");
  EXPECT_EQ(l["display_name"], "Load LoRA");
  EXPECT_EQ(l["category"], "loaders");
  EXPECT_EQ(l["python_module"], "nodes");
  EXPECT_EQ(
      l["input_order"],
      (json{{"required", {"model", "clip", "lora_name", "strength_model", "strength_clip"}}}));
  const json& req = l["input"]["required"];
  EXPECT_EQ(req["model"][0], "MODEL");
  EXPECT_EQ(req["clip"][0], "CLIP");
  EXPECT_EQ(req["lora_name"][0], names);
  for (const char* s : {"strength_model", "strength_clip"}) {
    EXPECT_EQ(req[s][0], "FLOAT");
    EXPECT_EQ(req[s][1]["default"], 1.0);
    EXPECT_EQ(req[s][1]["min"], -100.0);
    EXPECT_EQ(req[s][1]["max"], 100.0);
    EXPECT_EQ(req[s][1]["step"], 0.01);
  }
  EXPECT_EQ(l["output"], (json{"MODEL", "CLIP"}));
  EXPECT_EQ(l["output_name"], (json{"MODEL", "CLIP"}));

  const json& m = all.at("LoraLoaderModelOnly");
  EXPECT_EQ(m["display_name"], "LoraLoaderModelOnly");
  EXPECT_EQ(m["category"], "loaders");
  EXPECT_EQ(m["input_order"], (json{{"required", {"model", "lora_name", "strength_model"}}}));
  EXPECT_EQ(m["input"]["required"]["model"][0], "MODEL");
  EXPECT_EQ(m["input"]["required"]["lora_name"][0], names);
  EXPECT_EQ(m["input"]["required"]["strength_model"][1]["min"], -100.0);
  EXPECT_EQ(m["output"], (json{"MODEL"}));
}

}  // namespace
}  // namespace darkroom::workflow
