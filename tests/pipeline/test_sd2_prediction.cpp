// SD 2.x v-prediction detection (sd2_is_v_prediction) on files in SD 2.x's real names and
// shapes (suite Sd2Prediction). A complete SD 2.x checkpoint is ~1.7 GB in f16, so each file
// holds only the tensors family detection and the rule read, at their real shapes (SD 1.5's
// names of data/reference/sd15-ldm-tensors.tsv, context 1024, ViT-H 1024 wide):
//
//   model.diffusion_model.input_blocks.0.0.weight                          [320, 4, 3, 3]
//   model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight [320, 1024]
//   model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias     [320]
//   cond_stage_model.model.ln_final.weight                                 [1024]
//   first_stage_model.decoder.conv_in.weight                               [512, 4, 3, 3]
//
// The expectation is ComfyUI's SD20.model_type (comfy/supported_models.py): in_channels 4 and
// torch.std(norm1.bias, unbiased=False) > 0.09 → V_PREDICTION, else EPS. The biases are ±s
// alternating (mean 0, population std exactly s).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors_writer.h"
#include "models/weights.h"
#include "pipeline/checkpoint.h"
#include "pipeline/checkpoint_loader.h"
#include "test_util.h"

namespace darkroom::pipeline {
namespace {

constexpr const char* kBias = "output_blocks.11.1.transformer_blocks.0.norm1.bias";

struct Sd2Shaped {
  float bias_std = 0.12f;
  int64_t in_channels = 4;  // 9: SD 2.x inpainting
  std::map<std::string, std::string> metadata;
};

std::string write(const Sd2Shaped& s, const std::string& tag) {
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("darkroom_sd2pred_" + std::to_string(::getpid()) + "_" + tag + ".safetensors"))
          .string();
  std::vector<float> bias(320);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = i % 2 == 0 ? s.bias_std : -s.bias_std;
  const std::string u = "model.diffusion_model.";
  std::vector<std::pair<std::string, Tensor>> t;
  t.emplace_back(u + "input_blocks.0.0.weight",
                 Tensor::zeros({320, s.in_channels, 3, 3}, DType::F16));
  t.emplace_back(u + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                 Tensor::zeros({320, 1024}, DType::F16));
  t.emplace_back(u + kBias, Tensor::from_floats(bias, {320}));
  t.emplace_back("cond_stage_model.model.ln_final.weight", Tensor::zeros({1024}, DType::F16));
  t.emplace_back("first_stage_model.decoder.conv_in.weight",
                 Tensor::zeros({512, 4, 3, 3}, DType::F16));
  write_safetensors(path, t, s.metadata);
  return path;
}

// (family, v-prediction) of the file, as load_checkpoint decides them.
std::pair<ModelFamily, bool> judge(const Sd2Shaped& s, const std::string& tag) {
  // Removed however the judging ends (the refused files throw).
  struct Removed {
    std::string path;
    ~Removed() { std::filesystem::remove(path); }
  } file_path{write(s, tag)};
  const CheckpointFile file = CheckpointFile::open(file_path.path);
  return {detect_family(file),
          sd2_is_v_prediction(file, file.weights("model.diffusion_model.", kCpu, DType::F32))};
}

TEST(Sd2Prediction, NormBiasStdDecidesAsComfyUI) {
  Sd2Shaped v;
  v.bias_std = 0.12f;
  EXPECT_EQ(judge(v, "v"), std::make_pair(ModelFamily::Sd2, true));
  Sd2Shaped eps;
  eps.bias_std = 0.05f;
  EXPECT_EQ(judge(eps, "eps"), std::make_pair(ModelFamily::Sd2, false));
  // The population std: 0.0899 is below 0.09 (the sample std, ×sqrt(320/319), would be
  // 0.09004, above).
  Sd2Shaped near;
  near.bias_std = 0.0899f;
  EXPECT_FALSE(judge(near, "near").second);
  near.bias_std = 0.0901f;
  EXPECT_TRUE(judge(near, "above").second);
}

TEST(Sd2Prediction, InpaintingUNetsAreNeverV) {
  Sd2Shaped inpaint;
  inpaint.bias_std = 0.12f;
  inpaint.in_channels = 9;
  EXPECT_EQ(judge(inpaint, "inpaint"), std::make_pair(ModelFamily::Sd2, false));
}

TEST(Sd2Prediction, MetadataWins) {
  Sd2Shaped v_by_std;
  v_by_std.bias_std = 0.12f;
  v_by_std.metadata["darkroom.prediction"] = "eps";
  EXPECT_FALSE(judge(v_by_std, "meta_eps").second);
  Sd2Shaped eps_by_std;
  eps_by_std.bias_std = 0.05f;
  eps_by_std.metadata["darkroom.prediction"] = "v";
  EXPECT_TRUE(judge(eps_by_std, "meta_v").second);
  Sd2Shaped bad;
  bad.metadata["darkroom.prediction"] = "x0";
  darkroom::test::expect_error([&] { judge(bad, "meta_bad"); }, "[checkpoint]");
}

}  // namespace
}  // namespace darkroom::pipeline
