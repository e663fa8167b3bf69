// Shared by the workflow engine tests: a throw-away ComfyUI base directory, a single-file
// checkpoint assembled from the tiny SD 1.5 fixtures (data/models/sd15_tiny/), and
// ComfyUI's default API-format workflow (nodes 3-9) pointing at it.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "models/weights.h"
#include "pipeline/demo_weights.h"
#include "workflow/folder_paths.h"

namespace darkroom::workflow::test {

using json = nlohmann::json;
namespace fs = std::filesystem;

// A fresh ComfyUI base directory under /tmp, removed afterwards.
class TempBase {
 public:
  TempBase() {
    std::string tmpl = (fs::temp_directory_path() / "darkroom-wf-XXXXXX").string();
    char* dir = mkdtemp(tmpl.data());
    EXPECT_NE(dir, nullptr);
    root_ = dir;
    paths_ = FolderPaths::under(root_.string());
  }
  ~TempBase() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  TempBase(const TempBase&) = delete;
  TempBase& operator=(const TempBase&) = delete;

  const FolderPaths& paths() const { return paths_; }
  fs::path checkpoints() const { return fs::path(paths_.model_folders.at("checkpoints").front()); }
  fs::path root() const { return root_; }

 private:
  fs::path root_;
  FolderPaths paths_;
};

inline std::string tiny_fixture(const std::string& file) {
  return std::string(DARKROOM_TEST_DATA) + "/models/sd15_tiny/" + file;
}

// CLIP's vocabulary size and the tiny UNet's context width (see test_sd15_pipeline.cpp).
constexpr int64_t kTinyClipWidth = 32;
constexpr int64_t kClipVocab = 49408;

// The tiny CLIP's tensors under "text_model." names (one layer, 2 heads, seeded weights).
inline std::vector<std::pair<std::string, Shape>> tiny_clip_shapes() {
  const int64_t c = kTinyClipWidth;
  return {{"embeddings.token_embedding.weight", {kClipVocab, c}},
          {"embeddings.position_embedding.weight", {77, c}},
          {"encoder.layers.0.layer_norm1.weight", {c}},
          {"encoder.layers.0.layer_norm1.bias", {c}},
          {"encoder.layers.0.layer_norm2.weight", {c}},
          {"encoder.layers.0.layer_norm2.bias", {c}},
          {"encoder.layers.0.self_attn.q_proj.weight", {c, c}},
          {"encoder.layers.0.self_attn.q_proj.bias", {c}},
          {"encoder.layers.0.self_attn.k_proj.weight", {c, c}},
          {"encoder.layers.0.self_attn.k_proj.bias", {c}},
          {"encoder.layers.0.self_attn.v_proj.weight", {c, c}},
          {"encoder.layers.0.self_attn.v_proj.bias", {c}},
          {"encoder.layers.0.self_attn.out_proj.weight", {c, c}},
          {"encoder.layers.0.self_attn.out_proj.bias", {c}},
          {"encoder.layers.0.mlp.fc1.weight", {2 * c, c}},
          {"encoder.layers.0.mlp.fc1.bias", {2 * c}},
          {"encoder.layers.0.mlp.fc2.weight", {c, 2 * c}},
          {"encoder.layers.0.mlp.fc2.bias", {c}},
          {"final_layer_norm.weight", {c}},
          {"final_layer_norm.bias", {c}}};
}

// The fixtures' UNet and VAE plus the seeded tiny CLIP as one ldm-layout .safetensors,
// with the metadata that says what their shapes cannot (GroupNorm groups, heads).
inline void write_tiny_checkpoint(const std::string& path) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  auto add_file = [&](const std::string& file, const std::string& prefix) {
    auto f = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(tiny_fixture(file)));
    const Weights w = Weights::from_file(f, prefix, kCpu, DType::F32);
    for (const std::string& name : w.available())
      tensors.emplace_back(name, w.get(std::string_view(name).substr(prefix.size())));
  };
  add_file("unet.safetensors", "model.diffusion_model.");
  add_file("clip_vae.safetensors", "first_stage_model.");
  for (const auto& [name, shape] : tiny_clip_shapes())
    tensors.emplace_back("cond_stage_model.transformer.text_model." + name,
                         pipeline::demo_tensor(name, shape, 11, DType::F32));
  write_safetensors(path, tensors,
                    {{"darkroom.family", "sd15"},
                     {"darkroom.unet.groups", "4"},
                     {"darkroom.unet.num_heads", "4"},
                     {"darkroom.vae.groups", "8"},
                     {"darkroom.clip.heads", "2"}});
}

// What a KSampler node is given besides its links.
struct SamplerParams {
  uint64_t seed = 42;
  int steps = 2;
  double cfg = 5.0;
  std::string sampler = "euler";
  std::string scheduler = "normal";
  double denoise = 1.0;
};

// The default graph's settings: its KSampler's, and the rest.
struct DefaultParams : SamplerParams {
  std::string ckpt = "tiny.safetensors";
  std::string positive = "a (red:1.3) cat on a [mat]";
  std::string negative = "blurry, low quality";
  int width = 128;  // EmptyLatentImage pixels: the latent is width / 8
  int height = 128;
  int batch = 1;
};

// A link input: [node_id, slot].
inline json link(const std::string& id, int slot) {
  return json::array({id, slot});
}

// A KSampler node in API format (ComfyUI's input names).
inline json ksampler_node(const SamplerParams& p, json model, json positive, json negative,
                          json latent_image) {
  return {{"class_type", "KSampler"},
          {"inputs",
           {{"seed", p.seed},
            {"steps", p.steps},
            {"cfg", p.cfg},
            {"sampler_name", p.sampler},
            {"scheduler", p.scheduler},
            {"denoise", p.denoise},
            {"model", std::move(model)},
            {"positive", std::move(positive)},
            {"negative", std::move(negative)},
            {"latent_image", std::move(latent_image)}}}};
}

// A LoraLoader node in API format.
inline json lora_loader_node(json model, json clip, const std::string& lora_name,
                             double strength_model, double strength_clip) {
  return {{"class_type", "LoraLoader"},
          {"inputs",
           {{"model", std::move(model)},
            {"clip", std::move(clip)},
            {"lora_name", lora_name},
            {"strength_model", strength_model},
            {"strength_clip", strength_clip}}}};
}

// ComfyUI's default graph in API format (the ids of its default workflow).
inline json default_prompt(const DefaultParams& p = {}) {
  return json{
      {"3", ksampler_node(p, link("4", 0), link("6", 0), link("7", 0), link("5", 0))},
      {"4", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", p.ckpt}}}}},
      {"5",
       {{"class_type", "EmptyLatentImage"},
        {"inputs", {{"width", p.width}, {"height", p.height}, {"batch_size", p.batch}}}}},
      {"6",
       {{"class_type", "CLIPTextEncode"},
        {"inputs", {{"text", p.positive}, {"clip", link("4", 1)}}}}},
      {"7",
       {{"class_type", "CLIPTextEncode"},
        {"inputs", {{"text", p.negative}, {"clip", link("4", 1)}}}}},
      {"8",
       {{"class_type", "VAEDecode"},
        {"inputs", {{"samples", link("3", 0)}, {"vae", link("4", 2)}}}}},
      {"9",
       {{"class_type", "SaveImage"},
        {"inputs", {{"filename_prefix", "ComfyUI"}, {"images", link("8", 0)}}}}}};
}

}  // namespace darkroom::workflow::test
