// The PNG metadata graphs: parsed back with nlohmann::json and checked node by node
// against ComfyUI's default text-to-image graph.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "pipeline/comfy_workflow.h"

namespace darkroom::pipeline {
namespace {

using nlohmann::json;

GenerateParams params() {
  GenerateParams p;
  p.prompt = "a \"quoted\" cat, (best:1.2)";
  p.negative = "blurry";
  p.steps = 12;
  p.cfg = 6.5f;
  p.sampler = "dpmpp_2m";
  p.scheduler = "karras";
  p.seed = 1234567890123ULL;
  p.width = 640;
  p.height = 384;
  p.batch = 3;
  return p;
}

TEST(ComfyWorkflow, ApiPromptHasTheDefaultGraph) {
  const json g = json::parse(comfy_api_prompt(params(), {"model.safetensors", "pre"}));
  std::map<std::string, std::string> types;
  for (const auto& [id, node] : g.items()) types[id] = node.at("class_type");
  EXPECT_EQ(types, (std::map<std::string, std::string>{{"3", "KSampler"},
                                                       {"4", "CheckpointLoaderSimple"},
                                                       {"5", "EmptyLatentImage"},
                                                       {"6", "CLIPTextEncode"},
                                                       {"7", "CLIPTextEncode"},
                                                       {"8", "VAEDecode"},
                                                       {"9", "SaveImage"}}));
  const json& k = g["3"]["inputs"];
  EXPECT_EQ(k["seed"].get<uint64_t>(), 1234567890123ULL);
  EXPECT_EQ(k["steps"], 12);
  EXPECT_DOUBLE_EQ(k["cfg"].get<double>(), 6.5);
  EXPECT_EQ(k["sampler_name"], "dpmpp_2m");
  EXPECT_EQ(k["scheduler"], "karras");
  EXPECT_DOUBLE_EQ(k["denoise"].get<double>(), 1.0);
  EXPECT_EQ(k["model"], json::array({"4", 0}));
  EXPECT_EQ(k["positive"], json::array({"6", 0}));
  EXPECT_EQ(k["negative"], json::array({"7", 0}));
  EXPECT_EQ(k["latent_image"], json::array({"5", 0}));
  EXPECT_EQ(g["4"]["inputs"]["ckpt_name"], "model.safetensors");
  EXPECT_EQ(g["5"]["inputs"], json({{"width", 640}, {"height", 384}, {"batch_size", 3}}));
  EXPECT_EQ(g["6"]["inputs"]["text"], "a \"quoted\" cat, (best:1.2)");
  EXPECT_EQ(g["6"]["inputs"]["clip"], json::array({"4", 1}));
  EXPECT_EQ(g["7"]["inputs"]["text"], "blurry");
  EXPECT_EQ(g["8"]["inputs"]["samples"], json::array({"3", 0}));
  EXPECT_EQ(g["8"]["inputs"]["vae"], json::array({"4", 2}));
  EXPECT_EQ(g["9"]["inputs"]["filename_prefix"], "pre");
  EXPECT_EQ(g["9"]["inputs"]["images"], json::array({"8", 0}));
}

TEST(ComfyWorkflow, ClipSkipAddsClipSetLastLayer) {
  GenerateParams p = params();
  p.clip_skip = 2;
  const json g = json::parse(comfy_api_prompt(p, {"m.safetensors"}));
  EXPECT_EQ(g["10"]["class_type"], "CLIPSetLastLayer");
  EXPECT_EQ(g["10"]["inputs"]["stop_at_clip_layer"], -2);
  EXPECT_EQ(g["6"]["inputs"]["clip"], json::array({"10", 0}));
}

// Every link's ends name existing nodes whose input / output slots list that link, and
// every input and output refers to a link that exists: what LiteGraph needs to load it.
void expect_consistent_links(const json& w) {
  std::map<int, json> nodes;
  for (const json& n : w.at("nodes")) nodes[n.at("id").get<int>()] = n;
  std::set<int> link_ids;
  for (const json& l : w.at("links")) {
    const int id = l[0], from = l[1], from_slot = l[2], to = l[3], to_slot = l[4];
    link_ids.insert(id);
    ASSERT_TRUE(nodes.count(from) && nodes.count(to)) << l.dump();
    const json& out = nodes[from]["outputs"][from_slot];
    const json& in = nodes[to]["inputs"][to_slot];
    EXPECT_EQ(in["link"], id) << l.dump();
    EXPECT_EQ(out["type"], l[5]) << l.dump();
    EXPECT_EQ(in["type"], l[5]) << l.dump();
    bool listed = false;
    for (const json& x : out["links"]) listed |= x == id;
    EXPECT_TRUE(listed) << l.dump();
  }
  for (const auto& [id, n] : nodes)
    for (const json& in : n["inputs"]) EXPECT_TRUE(link_ids.count(in["link"].get<int>()));
  EXPECT_EQ(w["last_link_id"].get<int>(), *link_ids.rbegin());
  EXPECT_EQ(w["last_node_id"].get<int>(), nodes.rbegin()->first);
}

TEST(ComfyWorkflow, UiWorkflowLinksAreConsistentAndWidgetsCarryTheRun) {
  for (int clip_skip : {1, 2}) {
    GenerateParams p = params();
    p.clip_skip = clip_skip;
    const json w = json::parse(comfy_ui_workflow(p, {"model.safetensors", "pre"}));
    expect_consistent_links(w);
    std::map<std::string, json> widgets;
    for (const json& n : w["nodes"])
      if (n["type"] != "CLIPTextEncode") widgets[n["type"]] = n["widgets_values"];
    EXPECT_EQ(widgets["KSampler"],
              json::array({1234567890123ULL, "fixed", 12, 6.5, "dpmpp_2m", "karras", 1.0}));
    EXPECT_EQ(widgets["EmptyLatentImage"], json::array({640, 384, 3}));
    EXPECT_EQ(widgets["CheckpointLoaderSimple"], json::array({"model.safetensors"}));
    EXPECT_EQ(widgets["SaveImage"], json::array({"pre"}));
  }
}

}  // namespace
}  // namespace darkroom::pipeline
