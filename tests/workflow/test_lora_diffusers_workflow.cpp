// A LoRA on a diffusers folder through the real executor (suite LoraDiffusersWorkflow):
// DiffusersLoader (the tiny SDXL folder, pipeline/diffusers_folder_fixture.h) → LoraLoader (UNet,
// CLIP-L and bigG modules in kohya and PEFT names) → CLIPTextEncode ×2 → KSampler (euler, 4
// steps) → capture, against the same graph on CheckpointLoaderSimple with the equivalent single
// file (sdxl.safetensors: the same stored values in ldm / OpenCLIP names,
// tools/fixtures/sdxl_diffusers_folders.py). The LoRA reaches the same tensors on both and is
// merged by the same code in f32 (the folder's q/k/v stacked into the single file's fused rows
// and split back; every value the same), and the networks compute alike on equal weights
// (LoraDiffusersFolder: folder vs single file towers 0), so the latents must be equal; the
// tolerance 1e-5 only leaves room for a summation order. The single-file merge itself is checked
// against diffusers / PEFT elsewhere (LoraNodes: SD 1.x UNet + CLIP vs diffusers fuse_lora;
// LoraDiffusersFolder and LoraRefinerTe: bigG vs PEFT). The LoRA here is written by the test
// (seeded values): what is compared is the two loaders, not the LoRA arithmetic.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "capture_node.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/lora.h"
#include "pipeline/diffusers_folder_fixture.h"
#include "pipeline/family_fixtures.h"
#include "pipeline/latent.h"
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
namespace fs = std::filesystem;

using darkroom::test::max_abs_diff;

// Module → (up shape, down shape); kohya names get alpha 2 (rank 2: scale 1), PEFT none.
struct Module {
  std::string name;
  Shape up, down;
  bool peft = false;
};
const std::vector<Module> kModules = {
    {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", {16, 2}, {2, 80}},
    {"lora_unet_input_blocks_1_0_in_layers_2", {8, 2, 1, 1}, {2, 8, 3, 3}},  // LoCon
    {"unet.up_blocks.0.attentions.2.proj_out", {24, 2}, {2, 24}, true},
    {"lora_te1_text_model_encoder_layers_0_self_attn_q_proj", {32, 2}, {2, 32}},
    {"lora_te2_text_model_encoder_layers_0_self_attn_v_proj", {48, 2}, {2, 48}},
    {"text_encoder_2.text_model.encoder.layers.1.mlp.fc1", {96, 2}, {2, 48}, true},
};

void write_lora(const fs::path& path) {
  sampling::TorchGenerator gen(2026);
  std::vector<std::pair<std::string, Tensor>> t;
  for (const Module& m : kModules) {
    const Tensor up = gen.randn(m.up), down = gen.randn(m.down);
    auto scaled = [](const Tensor& x, float s) {
      std::vector<float> v = x.to_floats();
      for (float& f : v) f *= s;
      return Tensor::from_floats(v, x.shape());
    };
    if (m.peft) {
      t.emplace_back(m.name + ".lora_B.weight", scaled(up, 0.3f));
      t.emplace_back(m.name + ".lora_A.weight", scaled(down, 0.3f));
    } else {
      t.emplace_back(m.name + ".lora_up.weight", scaled(up, 0.3f));
      t.emplace_back(m.name + ".lora_down.weight", scaled(down, 0.3f));
      const float alpha[] = {2};
      t.emplace_back(m.name + ".alpha", Tensor::from_floats(alpha, {}));
    }
  }
  write_safetensors(path.string(), t, {});
}

json graph(const json& loader, bool lora) {
  auto encode = [](const std::string& text, const json& clip) {
    return json{{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", text}, {"clip", clip}}}};
  };
  const json model = lora ? link("10", 0) : link("4", 0);
  const json clip = lora ? link("10", 1) : link("4", 1);
  json g = {
      {"4", loader},
      {"5",
       {{"class_type", "EmptyLatentImage"},
        {"inputs", {{"width", 128}, {"height", 128}, {"batch_size", 1}}}}},
      {"6", encode("a photo of a (red:1.3) cat", clip)},
      {"7", encode("blurry", clip)},
      {"3", test::ksampler_node({.seed = 42, .steps = 4, .cfg = 5.0}, model, link("6", 0),
                                link("7", 0), link("5", 0))},
      {"99", {{"class_type", "DarkroomTestCapture"}, {"inputs", {{"latent", link("3", 0)}}}}}};
  if (lora)
    g["10"] = test::lora_loader_node(link("4", 0), link("4", 1), "mixed.safetensors", 0.8, 1.2);
  return g;
}

TEST(LoraDiffusersWorkflow, FolderMatchesTheSingleFile) {
  test::TempBase env;
  const fs::path diffusers = env.paths().model_folders.at("diffusers").front();
  pipeline::test::write_sdxl_diffusers_folder(diffusers / "tiny" / "sdxl");
  fs::create_directories(env.checkpoints());
  pipeline::test::write_family_checkpoint("sdxl.safetensors",
                                          (env.checkpoints() / "sdxl.safetensors").string());
  const fs::path loras = env.paths().model_folders.at("loras").front();
  fs::create_directories(loras);
  write_lora(loras / "mixed.safetensors");
  // Every module reaches a tensor of the single file (6 patches, nothing left).
  const LoraFile file = LoraFile::open(
      (loras / "mixed.safetensors").string(),
      base_shapes(SafetensorsFile::open((env.checkpoints() / "sdxl.safetensors").string())));
  EXPECT_EQ(file.patches().size(), kModules.size());
  EXPECT_TRUE(file.unmatched().empty()) << file.unmatched().front();

  Executor executor(env.paths(), -1, uint64_t{1} << 32);
  auto run = [&](const json& prompt) {
    captured().clear();
    test::run_prompt_ok(executor, env.paths(), prompt);
    return captured().at("99.latent").as<pipeline::Latent>().samples;
  };
  const json folder = {{"class_type", "DiffusersLoader"},
                       {"inputs", {{"model_path", "tiny/sdxl"}}}};
  const json single = {{"class_type", "CheckpointLoaderSimple"},
                       {"inputs", {{"ckpt_name", "sdxl.safetensors"}}}};
  const Tensor z_folder = run(graph(folder, true));
  const Tensor z_single = run(graph(single, true));
  const Tensor z_plain = run(graph(folder, false));
  const double same = max_abs_diff(z_folder, z_single);
  const double moved = max_abs_diff(z_folder, z_plain);
  std::cout << "[ lora folder ] max |z folder - z single file| " << same << "; the LoRA moves z by "
            << moved << "\n";
  EXPECT_LE(same, 1e-5);
  EXPECT_GT(moved, 1e-2);
}

}  // namespace
}  // namespace darkroom::workflow
