// /object_info (suite WorkflowObjectInfo) in the shape of ComfyUI's server.py node_info,
// with values transcribed from ComfyUI's nodes.py INPUT_TYPES (KSampler, EmptyLatentImage,
// CheckpointLoaderSimple, CLIPSetLastLayer, ConditioningSetArea).
#include <gtest/gtest.h>

#include "workflow/executor.h"
#include "workflow/workflow_env.h"

namespace darkroom::workflow {
namespace {

class WorkflowObjectInfo : public ::testing::Test {
 protected:
  test::TempBase env_;
};

TEST_F(WorkflowObjectInfo, KSamplerAsInNodesPy) {
  const json all = object_info(env_.paths());
  ASSERT_TRUE(all.contains("KSampler"));
  const json& k = all["KSampler"];
  const json& req = k["input"]["required"];
  EXPECT_EQ(req["model"][0], "MODEL");
  EXPECT_EQ(req["seed"][0], "INT");
  EXPECT_EQ(req["seed"][1]["default"], 0);
  EXPECT_EQ(req["seed"][1]["min"], 0);
  EXPECT_EQ(req["seed"][1]["max"], 0xffffffffffffffffull);
  EXPECT_EQ(req["seed"][1]["control_after_generate"], true);
  EXPECT_EQ(req["steps"][1]["default"], 20);
  EXPECT_EQ(req["steps"][1]["min"], 1);
  EXPECT_EQ(req["steps"][1]["max"], 10000);
  EXPECT_EQ(req["cfg"][0], "FLOAT");
  EXPECT_EQ(req["cfg"][1]["default"], 8.0);
  EXPECT_EQ(req["cfg"][1]["min"], 0.0);
  EXPECT_EQ(req["cfg"][1]["max"], 100.0);
  EXPECT_EQ(req["cfg"][1]["step"], 0.1);
  EXPECT_EQ(req["cfg"][1]["round"], 0.01);
  EXPECT_EQ(req["denoise"][1], (json{{"default", 1.0},
                                     {"min", 0.0},
                                     {"max", 1.0},
                                     {"step", 0.01},
                                     {"tooltip", req["denoise"][1]["tooltip"]}}));
  // COMBO inputs are [[values...], {options}], in comfy.samplers' order.
  ASSERT_TRUE(req["sampler_name"][0].is_array());
  EXPECT_EQ(req["sampler_name"][0][0], "euler");
  EXPECT_NE(std::find(req["sampler_name"][0].begin(), req["sampler_name"][0].end(), "dpmpp_2m"),
            req["sampler_name"][0].end());
  for (const char* s : {"simple", "normal", "karras", "exponential", "sgm_uniform"})
    EXPECT_NE(std::find(req["scheduler"][0].begin(), req["scheduler"][0].end(), s),
              req["scheduler"][0].end())
        << s;
  EXPECT_EQ(req["positive"][0], "CONDITIONING");
  EXPECT_EQ(req["latent_image"][0], "LATENT");
  EXPECT_EQ(k["input_order"], (json{{"required",
                                     {"model", "seed", "steps", "cfg", "sampler_name", "scheduler",
                                      "positive", "negative", "latent_image", "denoise"}}}));
  EXPECT_FALSE(k["input"].contains("optional"));
  EXPECT_EQ(k["output"], json::array({"LATENT"}));
  EXPECT_EQ(k["output_is_list"], json::array({false}));
  EXPECT_EQ(k["output_name"], json::array({"LATENT"}));
  EXPECT_EQ(k["output_tooltips"], json::array({"The denoised latent."}));
  EXPECT_EQ(k["name"], "KSampler");
  EXPECT_EQ(k["display_name"], "KSampler");
  EXPECT_EQ(k["category"], "sampling");
  EXPECT_EQ(k["python_module"], "nodes");
  EXPECT_EQ(k["output_node"], false);
  EXPECT_EQ(k["description"],
            "Uses the provided model, positive and negative conditioning to denoise the latent "
            "image.");

  const json& adv = all["KSamplerAdvanced"];
  EXPECT_EQ(adv["display_name"], "KSampler (Advanced)");
  EXPECT_EQ(adv["input"]["required"]["add_noise"][0], json::array({"enable", "disable"}));
  EXPECT_EQ(adv["input"]["required"]["end_at_step"][1],
            (json{{"default", 10000}, {"min", 0}, {"max", 10000}}));
  EXPECT_EQ(adv["input"]["required"]["return_with_leftover_noise"],
            json::array({json::array({"disable", "enable"})}));
}

TEST_F(WorkflowObjectInfo, LatentAndConditioningNodes) {
  const json all = object_info(env_.paths());
  const json& e = all["EmptyLatentImage"]["input"]["required"];
  EXPECT_EQ(e["width"][1]["default"], 512);
  EXPECT_EQ(e["width"][1]["min"], 16);
  EXPECT_EQ(e["width"][1]["max"], 16384);
  EXPECT_EQ(e["width"][1]["step"], 8);
  EXPECT_EQ(e["batch_size"][1]["max"], 4096);
  EXPECT_EQ(all["EmptyLatentImage"]["display_name"], "Empty Latent Image");
  EXPECT_EQ(all["EmptyLatentImage"]["category"], "latent");

  EXPECT_EQ(all["CLIPSetLastLayer"]["input"]["required"]["stop_at_clip_layer"],
            json::array({"INT", {{"default", -1}, {"min", -24}, {"max", -1}, {"step", 1}}}));
  EXPECT_EQ(all["ConditioningSetArea"]["input"]["required"]["width"],
            json::array({"INT", {{"default", 64}, {"min", 64}, {"max", 16384}, {"step", 8}}}));
  EXPECT_EQ(all["ConditioningCombine"]["input"]["required"]["conditioning_1"],
            json::array({"CONDITIONING"}));
  EXPECT_EQ(all["CLIPTextEncode"]["input"]["required"]["text"][1]["multiline"], true);
  EXPECT_EQ(all["CLIPTextEncode"]["display_name"], "CLIP Text Encode (Prompt)");
  EXPECT_EQ(all["ModelSamplingDiscrete"]["python_module"], "comfy_extras.nodes_model_advanced");
  EXPECT_EQ(all["ModelSamplingDiscrete"]["input"]["required"]["zsnr"],
            json::array({"BOOLEAN", {{"default", false}}}));
}

TEST_F(WorkflowObjectInfo, CheckpointListComesFromTheFolder) {
  std::ofstream(env_.checkpoints() / "b.safetensors") << "x";
  std::ofstream(env_.checkpoints() / "a.ckpt") << "x";
  std::ofstream(env_.checkpoints() / "notes.txt") << "x";
  const json one = object_info("CheckpointLoaderSimple", env_.paths());
  ASSERT_EQ(one.size(), 1u);
  const json& c = one["CheckpointLoaderSimple"];
  EXPECT_EQ(c["input"]["required"]["ckpt_name"][0], json::array({"a.ckpt", "b.safetensors"}));
  EXPECT_EQ(c["input"]["required"]["ckpt_name"][1]["tooltip"],
            "The name of the checkpoint (model) to load.");
  EXPECT_EQ(c["output"], json::array({"MODEL", "CLIP", "VAE"}));
  EXPECT_EQ(c["output_name"], json::array({"MODEL", "CLIP", "VAE"}));
  EXPECT_EQ(c["display_name"], "Load Checkpoint");
  EXPECT_EQ(c["category"], "loaders");
  EXPECT_EQ(object_info("NoSuchNode", env_.paths()), json::object());
}

TEST_F(WorkflowObjectInfo, EveryNodeHasTheFrontendsKeys) {
  const json all = object_info(env_.paths());
  for (auto it = all.begin(); it != all.end(); ++it) {
    const json& n = it.value();
    for (const char* key :
         {"input", "input_order", "output", "output_is_list", "output_name", "name", "display_name",
          "description", "python_module", "category", "output_node"})
      EXPECT_TRUE(n.contains(key)) << it.key() << " lacks " << key;
    EXPECT_EQ(n["name"], it.key());
    EXPECT_TRUE(n["input"].contains("required")) << it.key();
    EXPECT_EQ(n["output"].size(), n["output_name"].size()) << it.key();
    EXPECT_EQ(n["output"].size(), n["output_is_list"].size()) << it.key();
    for (auto g = n["input"].begin(); g != n["input"].end(); ++g) {
      EXPECT_EQ(n["input_order"][g.key()].size(), g.value().size()) << it.key() << " " << g.key();
      for (auto in = g.value().begin(); in != g.value().end(); ++in) {
        if (g.key() == "hidden") {
          EXPECT_TRUE(in.value().is_string()) << it.key() << "." << in.key();
        } else {
          EXPECT_TRUE(in.value().is_array() && !in.value().empty() && in.value().size() <= 2)
              << it.key() << "." << in.key();
        }
      }
    }
  }
}

}  // namespace
}  // namespace darkroom::workflow
