// LoRA module names → base tensors, on the key lists of real SD 1.5 and SDXL checkpoints
// (data/reference/*.tsv). The expected targets are facts of the two UNet layouts (see
// models/unet_diffusers_names.h) and of the CLIP / OpenCLIP namings, written out by hand.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "io/safetensors_writer.h"
#include "models/lora.h"
#include "models/lora_keys.h"
#include "test_util.h"

namespace darkroom {
namespace {

// "name<TAB>[d0, d1, ...]" per line; '#' lines are comments.
std::map<std::string, Shape> reference_shapes(const std::string& file) {
  std::ifstream in(std::string(DARKROOM_TEST_DATA) + "/reference/" + file);
  EXPECT_TRUE(in) << file;
  std::map<std::string, Shape> shapes;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    std::string dims = line.substr(tab + 1);
    for (char& ch : dims)
      if (ch == '[' || ch == ']' || ch == ',') ch = ' ';
    std::istringstream ds(dims);
    std::vector<int64_t> v;
    for (int64_t d; ds >> d;) v.push_back(d);
    shapes.emplace(line.substr(0, tab), Shape(v));
  }
  return shapes;
}

void expect_target(const std::map<std::string, LoraTarget>& map, const std::string& module,
                   const std::string& target, int64_t begin = 0, int64_t end = 0) {
  auto it = map.find(module);
  ASSERT_NE(it, map.end()) << module;
  EXPECT_EQ(it->second.name, target) << module;
  EXPECT_EQ(it->second.row_begin, begin) << module;
  EXPECT_EQ(it->second.row_end, end) << module;
}

const std::string kU = "model.diffusion_model.";

TEST(LoraKeys, Sd15) {
  const auto base = reference_shapes("sd15-ldm-tensors.tsv");
  const auto map = lora_key_map(base);
  // Every UNet weight is reachable under its diffusers name too.
  size_t weights = 0, diffusers = 0;
  for (const auto& [name, shape] : base)
    weights += name.rfind(kU, 0) == 0 && name.ends_with(".weight");
  for (const auto& [module, t] : map)
    diffusers += module.rfind("unet.", 0) == 0 && module.find(".processor.") == std::string::npos;
  EXPECT_EQ(diffusers, weights);
  EXPECT_GT(weights, 300u);

  expect_target(map, "lora_unet_input_blocks_4_1_proj_in", kU + "input_blocks.4.1.proj_in.weight");
  expect_target(map, "lora_unet_down_blocks_1_attentions_0_proj_in",
                kU + "input_blocks.4.1.proj_in.weight");
  expect_target(map, "unet.down_blocks.2.downsamplers.0.conv", kU + "input_blocks.9.0.op.weight");
  expect_target(map, "unet.up_blocks.0.upsamplers.0.conv", kU + "output_blocks.2.1.conv.weight");
  expect_target(map, "unet.up_blocks.1.upsamplers.0.conv", kU + "output_blocks.5.2.conv.weight");
  expect_target(map, "unet.up_blocks.2.resnets.0.conv_shortcut",
                kU + "output_blocks.6.0.skip_connection.weight");
  expect_target(map, "lora_unet_mid_block_resnets_1_time_emb_proj",
                kU + "middle_block.2.emb_layers.1.weight");
  expect_target(map, "unet.mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj",
                kU + "middle_block.1.transformer_blocks.0.ff.net.0.proj.weight");
  expect_target(map, "unet.time_embedding.linear_2", kU + "time_embed.2.weight");
  expect_target(map, "lora_unet_conv_in", kU + "input_blocks.0.0.weight");
  expect_target(map, "unet.down_blocks.0.attentions.1.transformer_blocks.0.attn1.processor.to_out",
                kU + "input_blocks.2.1.transformer_blocks.0.attn1.to_out.0.weight");
  const std::string clip = "cond_stage_model.transformer.text_model.encoder.layers.";
  expect_target(map, "lora_te_text_model_encoder_layers_11_mlp_fc1", clip + "11.mlp.fc1.weight");
  expect_target(map, "text_encoder.text_model.encoder.layers.0.self_attn.q_proj",
                clip + "0.self_attn.q_proj.weight");
}

TEST(LoraKeys, Sdxl) {
  const auto map = lora_key_map(reference_shapes("sdxl-sgm-tensors.tsv"));
  expect_target(map, "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k",
                kU + "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight");
  expect_target(map, "lora_unet_down_blocks_2_attentions_1_transformer_blocks_9_ff_net_2",
                kU + "input_blocks.8.1.transformer_blocks.9.ff.net.2.weight");
  expect_target(map, "unet.up_blocks.0.upsamplers.0.conv", kU + "output_blocks.2.2.conv.weight");
  expect_target(map, "unet.up_blocks.2.resnets.2.conv2",
                kU + "output_blocks.8.0.out_layers.3.weight");
  expect_target(map, "unet.add_embedding.linear_1", kU + "label_emb.0.0.weight");
  expect_target(
      map, "lora_te1_text_model_encoder_layers_3_self_attn_v_proj",
      "conditioner.embedders.0.transformer.text_model.encoder.layers.3.self_attn.v_proj.weight");
  const std::string g = "conditioner.embedders.1.model.transformer.resblocks.";
  expect_target(map, "lora_te2_text_model_encoder_layers_31_self_attn_q_proj",
                g + "31.attn.in_proj_weight", 0, 1280);
  expect_target(map, "lora_te2_text_model_encoder_layers_31_self_attn_k_proj",
                g + "31.attn.in_proj_weight", 1280, 2560);
  expect_target(map, "text_encoder_2.text_model.encoder.layers.0.self_attn.v_proj",
                g + "0.attn.in_proj_weight", 2560, 3840);
  expect_target(map, "lora_te2_text_model_encoder_layers_5_self_attn_out_proj",
                g + "5.attn.out_proj.weight");
  expect_target(map, "text_encoder_2.text_model.encoder.layers.0.mlp.fc1", g + "0.mlp.c_fc.weight");
  expect_target(map, "lora_te2_text_model_encoder_layers_0_mlp_fc2", g + "0.mlp.c_proj.weight");
}

// A bigG v_proj LoRA patches rows [2C, 3C) of the fused in_proj_weight and nothing else.
TEST(LoraKeys, FusedQkvRowsAreMergedInPlace) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string base_path = (dir / "darkroom_lora_qkv_base.safetensors").string();
  const std::string lora_path = (dir / "darkroom_lora_qkv.safetensors").string();
  const std::string w = "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight";
  std::vector<float> base(12);  // [6, 2]: C = 2
  for (int i = 0; i < 12; ++i) base[static_cast<size_t>(i)] = static_cast<float>(i);
  const float up[] = {1, 2}, down[] = {3, 4}, alpha[] = {2};  // rank 1: scale alpha/1 = 2
  write_safetensors(base_path, {{w, Tensor::from_floats(base, {6, 2})}});
  const std::string m = "lora_te2_text_model_encoder_layers_0_self_attn_v_proj";
  write_safetensors(lora_path, {{m + ".lora_up.weight", Tensor::from_floats(up, {2, 1})},
                                {m + ".lora_down.weight", Tensor::from_floats(down, {1, 2})},
                                {m + ".alpha", Tensor::from_floats(alpha, {})}});
  const SafetensorsFile file = SafetensorsFile::open(base_path);
  const LoraFile lora = LoraFile::open(lora_path, base_shapes(file));
  ASSERT_EQ(lora.patches().size(), 1u);
  const auto merged = merged_weights(file, {{&lora, 0.5f}}, DType::F32);
  // ΔW = 0.5 · 2 · [1, 2]ᵀ [3, 4] = [[3, 4], [6, 8]] on rows 4, 5.
  const std::vector<float> want = {0, 1, 2, 3, 4, 5, 6, 7, 8 + 3, 9 + 4, 10 + 6, 11 + 8};
  EXPECT_EQ(merged.at(w).to_floats(), want);
  std::filesystem::remove(base_path);
  std::filesystem::remove(lora_path);
}

// Older diffusers spellings ("processor.to_q_lora.up.weight", ".lora.up.weight") reach
// the same tensors. up = 1, down = 0.5, rank 4, no alpha: ΔW = 4 · 0.5 = 2 everywhere.
TEST(LoraKeys, OlderDiffusersSpellings) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "darkroom_lora_old.safetensors").string();
  const std::string a =
      "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out";
  const std::string b = "down_blocks.0.attentions.1.proj_in";
  const std::vector<float> ones(32, 1.0f), halves(32, 0.5f);
  write_safetensors(path, {{a + "_lora.up.weight", Tensor::from_floats(ones, {8, 4})},
                           {a + "_lora.down.weight", Tensor::from_floats(halves, {4, 8})},
                           {b + ".lora.up.weight", Tensor::from_floats(ones, {8, 4, 1, 1})},
                           {b + ".lora.down.weight", Tensor::from_floats(halves, {4, 8, 1, 1})}});
  const auto base = base_shapes(SafetensorsFile::open(std::string(DARKROOM_TEST_DATA) +
                                                      "/models/sd15_tiny/unet.safetensors"));
  const LoraFile lora = LoraFile::open(path, base);
  std::filesystem::remove(path);
  ASSERT_EQ(lora.patches().size(), 2u);
  EXPECT_TRUE(lora.unmatched().empty());
  std::set<std::string> targets;
  for (const LoraPatch& p : lora.patches()) {
    targets.insert(p.target.name);
    EXPECT_EQ(lora_delta(p, 1.0f).to_floats(), std::vector<float>(64, 2.0f)) << p.module;
    EXPECT_EQ(lora_delta(p, 1.0f).shape(), base.at(p.target.name));
  }
  EXPECT_EQ(targets, (std::set<std::string>{
                         kU + "input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.weight",
                         kU + "input_blocks.2.1.proj_in.weight"}));
}

}  // namespace
}  // namespace darkroom
